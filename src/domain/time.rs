//! Timestamps on the wire: RFC 3339 UTC with milliseconds (`2026-11-21T22:39:20.123Z`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// Formats a timestamp the way every payload carries it.
pub fn rfc3339_ms(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `serialize_with` for a timestamp field.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_ms(t))
}

/// `serialize_with` for an optional timestamp field (`null` when absent).
pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339_ms(t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_utc_with_milliseconds_and_z() {
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 22, 39, 20).unwrap()
            + chrono::Duration::microseconds(123_456);
        assert_eq!(rfc3339_ms(&t), "2026-11-21T22:39:20.123Z");
    }
}
