//! Engine.IO 4 / Socket.IO 5 text frames: exactly what the load generator writes and
//! reads, parsed without building a JSON tree on the hot path.
//!
//! A frame on the websocket transport is one engine.io packet: `0{..}` open, `2`/`3`
//! ping/pong, `4…` a socket.io packet. A socket.io packet is the type digit, the
//! namespace (`/chat,`; omitted for `/`), an optional ack id, then the JSON payload.
//! Binary attachments are never used by the benchmarked events, so they are not parsed.

/// Path and query of the websocket handshake (no polling, no upgrade).
pub const WS_PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// Path of the plain WebSocket handshake (envelope dialect), up to the token.
pub const PLAIN_WS_PATH: &str = "/ws?format=envelope&token=";

/// Marker placed in payloads in front of a send time (epoch microseconds), so the
/// receiver can compute the delivery latency without parsing JSON.
pub const TIME_MARKER: &str = "@T";

/// Namespace prefix of a socket.io packet: empty for the default namespace.
pub fn ns_prefix(ns: &str) -> String {
    if ns == "/" || ns.is_empty() {
        String::new()
    } else {
        format!("{ns},")
    }
}

/// `40/ns,{auth}`: socket.io CONNECT to a namespace with an auth payload.
pub fn connect_frame(ns: &str, auth_json: &str) -> String {
    format!("40{}{auth_json}", ns_prefix(ns))
}

/// `42/ns,<id>["event",payload]`: an event, with an ack id when one is given.
pub fn event_frame(ns: &str, ack: Option<u64>, event: &str, payload_json: &str) -> String {
    let id = ack.map(|a| a.to_string()).unwrap_or_default();
    format!("42{}{id}[\"{event}\",{payload_json}]", ns_prefix(ns))
}

/// One parsed frame. Borrowed slices point into the received text.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// engine.io `0{...}`.
    Open(&'a str),
    /// engine.io `1`: the server closes the transport.
    Close,
    /// engine.io `2`: the server pings; answer `3` at once.
    Ping,
    /// socket.io CONNECT acknowledged (`40/ns,{sid}`).
    Connected { ns: &'a str },
    /// socket.io DISCONNECT (`41/ns,`): the server removed the socket.
    Disconnected { ns: &'a str },
    /// socket.io EVENT (`42/ns,[name,...]`); `body` is the whole JSON array.
    Event {
        ns: &'a str,
        name: &'a str,
        body: &'a str,
    },
    /// socket.io ACK (`43/ns,<id>[...]`); `body` is the whole JSON array.
    Ack { ns: &'a str, id: u64, body: &'a str },
    /// socket.io CONNECT_ERROR (`44/ns,{message}`).
    ConnectError { ns: &'a str, body: &'a str },
    /// Anything else (pong, noop, binary events, …).
    Other,
}

/// Parses one text frame.
pub fn parse(frame: &str) -> Packet<'_> {
    let bytes = frame.as_bytes();
    match bytes.first() {
        Some(b'0') => Packet::Open(&frame[1..]),
        Some(b'1') => Packet::Close,
        Some(b'2') => Packet::Ping,
        Some(b'4') => parse_socketio(&frame[1..]),
        _ => Packet::Other,
    }
}

fn parse_socketio(s: &str) -> Packet<'_> {
    let Some(kind) = s.as_bytes().first().copied() else {
        return Packet::Other;
    };
    let mut rest = &s[1..];
    let ns = if rest.starts_with('/') {
        match rest.find(',') {
            Some(comma) => {
                let ns = &rest[..comma];
                rest = &rest[comma + 1..];
                ns
            }
            None => {
                let ns = rest;
                rest = "";
                ns
            }
        }
    } else {
        "/"
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..digits].parse::<u64>().ok();
    let body = &rest[digits..];
    match kind {
        b'0' => Packet::Connected { ns },
        b'1' => Packet::Disconnected { ns },
        b'2' => match event_name(body) {
            Some(name) => Packet::Event { ns, name, body },
            None => Packet::Other,
        },
        b'3' => match id {
            Some(id) => Packet::Ack { ns, id, body },
            None => Packet::Other,
        },
        b'4' => Packet::ConnectError { ns, body },
        _ => Packet::Other,
    }
}

/// The event name of `["name", ...]` (names used here carry no escapes).
fn event_name(body: &str) -> Option<&str> {
    let inner = body.strip_prefix("[\"")?;
    let end = inner.find('"')?;
    Some(&inner[..end])
}

/// The `type` of a plain envelope (`{"type":"…",…}`): read from the front of the frame
/// when it starts there (both servers put it first; the names carry no escapes), else
/// from the parsed JSON.
pub fn plain_type(frame: &str) -> Option<std::borrow::Cow<'_, str>> {
    if let Some(rest) = frame.strip_prefix("{\"type\":\"")
        && let Some(end) = rest.find(['"', '\\'])
        && rest.as_bytes().get(end) == Some(&b'"')
    {
        return Some(std::borrow::Cow::Borrowed(&rest[..end]));
    }
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    value
        .get("type")?
        .as_str()
        .map(|t| std::borrow::Cow::Owned(t.to_owned()))
}

/// Whether an ack body reports success in either dialect (`ok` or `success`).
pub fn ack_is_success(body: &str) -> bool {
    body.contains("\"ok\":true") || body.contains("\"success\":true")
}

/// The first send time (epoch microseconds) embedded after [`TIME_MARKER`].
pub fn find_time_marker(text: &str) -> Option<u64> {
    let at = text.find(TIME_MARKER)? + TIME_MARKER.len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_for_default_and_named_namespaces() {
        assert_eq!(connect_frame("/", "{}"), "40{}");
        assert_eq!(connect_frame("/chat", "{}"), "40/chat,{}");
        assert_eq!(
            event_frame("/chat", Some(7), "message:send", "{\"a\":1}"),
            "42/chat,7[\"message:send\",{\"a\":1}]"
        );
        assert_eq!(event_frame("/", None, "x", "1"), "42[\"x\",1]");
    }

    #[test]
    fn parses_what_servers_send() {
        assert_eq!(parse("2"), Packet::Ping);
        assert_eq!(
            parse("40/chat,{\"sid\":\"a\"}"),
            Packet::Connected { ns: "/chat" }
        );
        assert_eq!(parse("40{\"sid\":\"a\"}"), Packet::Connected { ns: "/" });
        assert_eq!(
            parse("43/notifications,12[{\"ok\":true}]"),
            Packet::Ack {
                ns: "/notifications",
                id: 12,
                body: "[{\"ok\":true}]"
            }
        );
        assert_eq!(
            parse("4312[{\"success\":true}]"),
            Packet::Ack {
                ns: "/",
                id: 12,
                body: "[{\"success\":true}]"
            }
        );
        assert_eq!(
            parse("42/chat,[\"message:created\",{}]"),
            Packet::Event {
                ns: "/chat",
                name: "message:created",
                body: "[\"message:created\",{}]"
            }
        );
        assert_eq!(
            parse("44/chat,{\"message\":\"AUTH_INVALID\"}"),
            Packet::ConnectError {
                ns: "/chat",
                body: "{\"message\":\"AUTH_INVALID\"}"
            }
        );
        assert_eq!(parse("41/chat,"), Packet::Disconnected { ns: "/chat" });
    }

    #[test]
    fn reads_plain_envelope_types() {
        let frame = "{\"type\":\"bench\",\"payload\":{\"t\":\"@T5\"},\"timestamp\":\"x\"}";
        assert_eq!(plain_type(frame).as_deref(), Some("bench"));
        assert_eq!(
            plain_type("{\"payload\":{},\"type\":\"auth_success\"}").as_deref(),
            Some("auth_success")
        );
        assert_eq!(
            plain_type("{\"type\":\"a\\\"b\",\"payload\":{}}").as_deref(),
            Some("a\"b")
        );
        assert_eq!(plain_type("not json"), None);
        assert_eq!(plain_type("{\"payload\":{}}"), None);
    }

    #[test]
    fn finds_markers_and_success() {
        assert_eq!(find_time_marker("{\"content\":\"m @T12345\"}"), Some(12345));
        assert_eq!(find_time_marker("nothing"), None);
        assert!(ack_is_success("[{\"ok\":true,\"data\":{}}]"));
        assert!(!ack_is_success("[{\"ok\":false}]"));
    }
}
