//! The codec against hand-built client frames.

use super::*;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// A masked client frame.
fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

fn events(max: usize, bytes: &[u8]) -> Result<Vec<Event>, Violation> {
    let mut decoder = Decoder::new(max);
    decoder.feed(bytes);
    let mut out = Vec::new();
    while let Some(event) = decoder.next()? {
        out.push(event);
    }
    Ok(out)
}

#[test]
fn a_fragmented_text_with_a_ping_between_is_one_message() {
    let mut bytes = client(false, TEXT, b"hel");
    bytes.extend(client(true, PING, b"p"));
    bytes.extend(client(false, CONTINUATION, b"lo "));
    bytes.extend(client(true, CONTINUATION, "wörld".as_bytes()));
    assert_eq!(
        events(1024, &bytes),
        Ok(vec![
            Event::Ping(b"p".to_vec()),
            Event::Text("hello wörld".into())
        ])
    );
}

#[test]
fn bytes_arriving_one_at_a_time_make_the_same_events_and_leave_nothing_held() {
    let mut bytes = client(true, TEXT, &[b'a'; 300]);
    bytes.extend(client(true, BINARY, b"\x00\x01"));
    bytes.extend(client(true, PONG, b""));
    let mut decoder = Decoder::new(1024);
    let mut out = Vec::new();
    for byte in &bytes {
        decoder.feed(&[*byte]);
        while let Some(event) = decoder.next().unwrap_or(None) {
            out.push(event);
        }
    }
    assert_eq!(
        out,
        vec![Event::Text("a".repeat(300)), Event::Binary, Event::Pong]
    );
    assert!(decoder.is_idle());
    assert_eq!(decoder.buf.capacity(), 0, "an idle decoder holds no buffer");
}

#[test]
fn a_character_split_across_fragments_is_valid_but_invalid_utf8_is_1007() {
    let euro = "€".as_bytes();
    let mut ok = client(false, TEXT, &euro[..1]);
    ok.extend(client(true, CONTINUATION, &euro[1..]));
    assert_eq!(events(64, &ok), Ok(vec![Event::Text("€".into())]));
    let mut bad = client(false, TEXT, &euro[..1]);
    bad.extend(client(true, CONTINUATION, &euro[..2]));
    assert_eq!(events(64, &bad), Err(Violation::InvalidUtf8));
    assert_eq!(
        events(64, &client(true, TEXT, b"\xFF")),
        Err(Violation::InvalidUtf8)
    );
}

#[test]
fn unmasked_frames_rsv_bits_and_unknown_opcodes_are_protocol_errors() {
    let mut unmasked = client(true, TEXT, b"hi");
    unmasked[1] &= 0x7F;
    assert_eq!(events(64, &unmasked), Err(Violation::Protocol));
    let mut rsv = client(true, TEXT, b"hi");
    rsv[0] |= 0x40;
    assert_eq!(events(64, &rsv), Err(Violation::Protocol));
    assert_eq!(
        events(64, &client(true, 0x3, b"")),
        Err(Violation::Protocol)
    );
    assert_eq!(
        events(64, &client(true, 0xB, b"")),
        Err(Violation::Protocol)
    );
}

#[test]
fn fragmentation_rules_are_enforced() {
    // A continuation with nothing to continue.
    assert_eq!(
        events(64, &client(true, CONTINUATION, b"x")),
        Err(Violation::Protocol)
    );
    // A new message before the previous one finished.
    let mut two = client(false, TEXT, b"a");
    two.extend(client(true, TEXT, b"b"));
    assert_eq!(events(64, &two), Err(Violation::Protocol));
    // A fragmented control frame, and one over 125 bytes.
    assert_eq!(
        events(64, &client(false, PING, b"")),
        Err(Violation::Protocol)
    );
    assert_eq!(
        events(1024, &client(true, PING, &[0; 126])),
        Err(Violation::Protocol)
    );
    assert_eq!(
        events(1024, &client(true, PING, &[7; 125])),
        Ok(vec![Event::Ping(vec![7; 125])])
    );
}

#[test]
fn lengths_at_the_encoding_boundaries() {
    for len in [0, 125, 126, 127, 65535, 65536, 70000] {
        let payload = vec![b'x'; len];
        assert_eq!(
            events(1 << 20, &client(true, TEXT, &payload)),
            Ok(vec![Event::Text(
                String::from_utf8(payload.clone()).unwrap_or_default()
            )]),
            "client frame of {len} bytes"
        );
        let frame = Frame::text(String::from_utf8(payload).unwrap_or_default());
        assert_eq!(
            frame.as_text().map(str::len),
            Some(len),
            "server frame of {len}"
        );
        let header = frame.clone().into_bytes().len() - len;
        let expected = match len {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        };
        assert_eq!(header, expected, "server header for {len}");
    }
}

#[test]
fn a_message_over_the_limit_is_refused_from_its_header() {
    // Only the header of a 1 MiB frame: refused without its payload.
    let frame = client(true, TEXT, &vec![b'x'; 1 << 20]);
    let mut decoder = Decoder::new(1000);
    decoder.feed(&frame[..14]);
    assert_eq!(decoder.next(), Err(Violation::TooBig));
    // Exactly the limit passes; the limit over two fragments does not.
    assert_eq!(
        events(1000, &client(true, TEXT, &[b'y'; 1000])).map(|e| e.len()),
        Ok(1)
    );
    let mut split = client(false, TEXT, &[b'y'; 600]);
    split.extend(client(true, CONTINUATION, &[b'y'; 401]));
    assert_eq!(events(1000, &split), Err(Violation::TooBig));
    // A 64-bit length with the top bit set.
    let mut huge = vec![0x81, 0x80 | 127];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    huge.extend_from_slice(&MASK);
    assert_eq!(events(1000, &huge), Err(Violation::TooBig));
}

#[test]
fn close_frames_carry_valid_codes_only() {
    assert_eq!(
        events(64, &client(true, CLOSE, b"")),
        Ok(vec![Event::Close(None)])
    );
    let mut normal = 1000u16.to_be_bytes().to_vec();
    normal.extend_from_slice(b"bye");
    assert_eq!(
        events(64, &client(true, CLOSE, &normal)),
        Ok(vec![Event::Close(Some(1000))])
    );
    assert_eq!(
        events(64, &client(true, CLOSE, &4001u16.to_be_bytes())),
        Ok(vec![Event::Close(Some(4001))])
    );
    assert_eq!(
        events(64, &client(true, CLOSE, b"\x03")),
        Err(Violation::Protocol)
    );
    for code in [999u16, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_eq!(
            events(64, &client(true, CLOSE, &code.to_be_bytes())),
            Err(Violation::Protocol),
            "code {code}"
        );
    }
    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.push(0xFF);
    assert_eq!(
        events(64, &client(true, CLOSE, &bad_reason)),
        Err(Violation::InvalidUtf8)
    );
}

#[test]
fn server_frames_are_unmasked_and_close_reasons_fit_a_control_frame() {
    assert_eq!(&Frame::ping().into_bytes()[..], &[0x89, 0]);
    assert_eq!(&Frame::pong(b"ab").into_bytes()[..], &[0x8A, 2, b'a', b'b']);
    assert_eq!(&Frame::close_empty().into_bytes()[..], &[0x88, 0]);
    let close = Frame::close(1013, "slow").into_bytes();
    assert_eq!(&close[..], &[0x88, 6, 0x03, 0xF5, b's', b'l', b'o', b'w']);
    let long = Frame::close(1000, &"é".repeat(100)).into_bytes();
    assert!(long.len() - 2 <= 125 && std::str::from_utf8(&long[4..]).is_ok());
    assert_eq!(Frame::ping().as_text(), None);
}
