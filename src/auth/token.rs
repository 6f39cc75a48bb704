//! Where a token is found: socket.io `auth.token`, the `Authorization` header, `?token=`.

use axum::http::HeaderMap;
use axum::http::request::Parts;

/// Strips an optional `Bearer ` prefix (any case) and surrounding space.
fn strip_bearer(raw: &str) -> Option<&str> {
    let raw = raw.trim();
    let token = match raw.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => raw[7..].trim(),
        _ => raw,
    };
    (!token.is_empty()).then_some(token)
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_from_headers(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(strip_bearer)
}

/// The handshake's token, first found wins: `auth.token`, then the header, then `?token=`.
pub fn token_from_handshake<'a>(
    auth: Option<&'a serde_json::Value>,
    parts: &'a Parts,
) -> Option<String> {
    if let Some(token) = auth
        .and_then(|a| a.get("token"))
        .and_then(|t| t.as_str())
        .and_then(strip_bearer)
    {
        return Some(token.to_owned());
    }
    if let Some(token) = bearer_from_headers(&parts.headers) {
        return Some(token.to_owned());
    }
    token_from_query(parts.uri.query())
}

/// The `?token=` of a request's query string (percent-decoded, `Bearer ` stripped).
pub fn token_from_query(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key != "token" {
            return None;
        }
        let decoded = percent_decode(value);
        strip_bearer(&decoded).map(str::to_owned)
    })
}

/// Minimal `application/x-www-form-urlencoded` value decoding (JWTs are URL-safe, but a
/// `Bearer%20` prefix or `+` may appear).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, auth_header: Option<&str>) -> Parts {
        let mut b = axum::http::Request::builder().uri(uri);
        if let Some(h) = auth_header {
            b = b.header("authorization", h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn auth_token_wins_over_header_and_query() {
        let p = parts("/socket.io/?token=q", Some("Bearer h"));
        let auth = serde_json::json!({ "token": "Bearer a" });
        assert_eq!(token_from_handshake(Some(&auth), &p).as_deref(), Some("a"));
        assert_eq!(token_from_handshake(None, &p).as_deref(), Some("h"));
        let p = parts("/socket.io/?EIO=4&token=Bearer%20q", None);
        assert_eq!(token_from_handshake(None, &p).as_deref(), Some("q"));
        let p = parts("/socket.io/?EIO=4", None);
        assert_eq!(
            token_from_handshake(Some(&serde_json::json!({"token": ""})), &p),
            None
        );
    }

    #[test]
    fn percent_decoding_tolerates_truncated_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz"), "a%zz");
        assert_eq!(percent_decode("a%20b+c"), "a b c");
    }
}
