//! RFC 6455 framing for the plain WebSocket routes, without I/O: [`Frame`] is a server
//! frame ready for the socket, [`Decoder`] turns the bytes a client sent into messages.
//!
//! Why our own: tungstenite keeps a read buffer, a write buffer and its message state in
//! every connection, behind a lock shared by the split halves (0.9 KiB of the 4.55 KiB an
//! idle connection cost, heaptrack), and frames each message once per connection. Server
//! frames are unmasked, so one [`Frame`] per event serves every subscriber; and a
//! [`Decoder`] with nothing pending holds no allocation.
//!
//! Client frames must be masked (else 1002), carry no RSV bits (no extension is
//! negotiated; 1002), use a known opcode (1002); control frames are at most 125 bytes
//! and not fragmented (1002) and may come between the fragments of a message; a text
//! message must be UTF-8 (1007, checked once it is whole, so a character split across
//! fragments is fine); a message over the limit is refused from its frame's header
//! (1009), before its payload is buffered.

use bytes::Bytes;

#[cfg(test)]
mod tests;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The largest payload of a control frame.
const MAX_CONTROL: usize = 125;

/// A server frame, header and payload, ready to write (unmasked: the same bytes go to
/// every recipient). Cloning shares the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_text() {
            Some(text) => f.debug_tuple("Frame::Text").field(&text).finish(),
            None => f.debug_tuple("Frame").field(&self.0).finish(),
        }
    }
}

impl Frame {
    /// A text message (one final frame).
    pub fn text(text: impl AsRef<str>) -> Self {
        Frame(encode(TEXT, text.as_ref().as_bytes()))
    }

    /// A close frame with `code` and `reason` (cut to fit a control frame).
    pub fn close(code: u16, reason: &str) -> Self {
        let mut end = reason.len().min(MAX_CONTROL - 2);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = Vec::with_capacity(2 + end);
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        Frame(encode(CLOSE, &payload))
    }

    /// A close frame without a status (the answer to a client's close that had none).
    pub fn close_empty() -> Self {
        Frame(encode(CLOSE, &[]))
    }

    /// A ping (the server's heartbeat).
    pub fn ping() -> Self {
        Frame(Bytes::from_static(&[0x80 | PING, 0]))
    }

    /// The answer to a client's ping: the same payload.
    pub fn pong(payload: &[u8]) -> Self {
        Frame(encode(PONG, &payload[..payload.len().min(MAX_CONTROL)]))
    }

    /// The frame's bytes on the wire.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The text of a text frame.
    pub fn as_text(&self) -> Option<&str> {
        let bytes = &self.0[..];
        let (&first, rest) = bytes.split_first()?;
        if first != 0x80 | TEXT {
            return None;
        }
        let skip = match rest.first()? {
            126 => 3,
            127 => 9,
            _ => 1,
        };
        std::str::from_utf8(rest.get(skip..)?).ok()
    }
}

/// One final unmasked frame.
fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = Vec::with_capacity(10 + len);
    out.push(0x80 | opcode);
    if len < 126 {
        // Below 126: fits the seven bits.
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// A whole message, or a control frame, from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message (its content is not used).
    Binary,
    /// A ping, with its payload to answer.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// A close frame, with its status code if it had one.
    Close(Option<u16>),
}

/// Why the client's bytes were refused: the close code the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A frame the protocol forbids (1002).
    Protocol,
    /// A text message or close reason that is not UTF-8 (1007).
    InvalidUtf8,
    /// A message over the size limit (1009).
    TooBig,
}

/// A message whose first frames have arrived.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: Vec<u8>,
}

/// Client bytes in, [`Event`]s out. Holds an allocation only while a frame or a
/// fragmented message is incomplete.
#[derive(Debug)]
pub struct Decoder {
    max: usize,
    /// Bytes not yet parsed, from `pos`.
    buf: Vec<u8>,
    pos: usize,
    message: Option<Partial>,
}

impl Decoder {
    /// A decoder refusing messages over `max` bytes.
    pub fn new(max: usize) -> Self {
        Decoder {
            max,
            buf: Vec::new(),
            pos: 0,
            message: None,
        }
    }

    /// Adds bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Nothing is pending: no partial frame, no partial message (tests).
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.pos == self.buf.len() && self.message.is_none()
    }

    /// The next event, `Ok(None)` when more bytes are needed.
    pub fn next(&mut self) -> Result<Option<Event>, Violation> {
        loop {
            let Some(event) = self.frame()? else {
                if self.pos == self.buf.len() {
                    // Everything parsed: an idle connection keeps no read buffer.
                    self.buf = Vec::new();
                    self.pos = 0;
                }
                return Ok(None);
            };
            if let Some(event) = event {
                return Ok(Some(event));
            }
        }
    }

    /// Parses one frame: `None` when it is incomplete, `Some(None)` for a fragment that
    /// does not finish a message.
    fn frame(&mut self) -> Result<Option<Option<Event>>, Violation> {
        let data = &self.buf[self.pos..];
        let [b0, b1, ..] = *data else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        if b0 & 0x70 != 0 || b1 & 0x80 == 0 {
            // RSV bits without an extension, or an unmasked client frame.
            return Err(Violation::Protocol);
        }
        let control = opcode & 0x8 != 0;
        if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
            return Err(Violation::Protocol);
        }
        let (len, mut header) = match b1 & 0x7F {
            126 => match data.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(None),
            },
            127 => match data.get(2..10).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                Some(bytes) => (u64::from_be_bytes(bytes), 10),
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        if control {
            if !fin || len > MAX_CONTROL as u64 {
                return Err(Violation::Protocol);
            }
        } else {
            match (opcode, &self.message) {
                (CONTINUATION, None) => return Err(Violation::Protocol),
                (TEXT | BINARY, Some(_)) => return Err(Violation::Protocol),
                _ => {}
            }
            let so_far = self.message.as_ref().map_or(0, |m| m.data.len()) as u64;
            if len.saturating_add(so_far) > self.max as u64 {
                return Err(Violation::TooBig);
            }
        }
        // Bounded by `max` (or 125) just above.
        let len = usize::try_from(len).map_err(|_| Violation::TooBig)?;
        let Some(mask) = data.get(header..header + 4) else {
            return Ok(None);
        };
        let mask = [mask[0], mask[1], mask[2], mask[3]];
        header += 4;
        let Some(masked) = data.get(header..header + len) else {
            return Ok(None);
        };
        let payload: Vec<u8> = masked
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        self.pos += header + len;
        let event = match opcode {
            CLOSE => Some(close_event(&payload)?),
            PING => Some(Event::Ping(payload)),
            PONG => Some(Event::Pong),
            _ => {
                let message = self.message.get_or_insert_with(|| Partial {
                    text: opcode == TEXT,
                    data: Vec::new(),
                });
                if message.data.is_empty() {
                    message.data = payload;
                } else {
                    message.data.extend_from_slice(&payload);
                }
                if !fin {
                    return Ok(Some(None));
                }
                let Partial { text, data } = self.message.take().ok_or(Violation::Protocol)?;
                Some(if text {
                    Event::Text(String::from_utf8(data).map_err(|_| Violation::InvalidUtf8)?)
                } else {
                    Event::Binary
                })
            }
        };
        Ok(Some(event))
    }
}

/// A client's close frame: no payload, or a valid code and a UTF-8 reason.
fn close_event(payload: &[u8]) -> Result<Event, Violation> {
    match payload {
        [] => Ok(Event::Close(None)),
        [_] => Err(Violation::Protocol),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                return Err(Violation::Protocol);
            }
            std::str::from_utf8(reason).map_err(|_| Violation::InvalidUtf8)?;
            Ok(Event::Close(Some(code)))
        }
    }
}
