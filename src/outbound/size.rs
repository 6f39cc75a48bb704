//! What a reply costs the budget: its serialized size, estimated without serializing.

/// About how many bytes `value` serializes to (strings by length, without escapes):
/// cheap enough for every reply, close enough for a budget in megabytes.
pub fn json_size(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

/// A lower bound of the bytes `value` takes in MessagePack (`PARSER=msgpack`): every
/// value in its shortest encoding. A JSON-sized charge would exceed what MessagePack
/// writes by a few bytes per field, and the backlog (charged minus written) would creep
/// up on a busy connection until a healthy client were closed as a slow one.
pub fn msgpack_size(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 1,
        Value::String(s) => s.len() + 1,
        Value::Array(items) => 1 + items.iter().map(msgpack_size).sum::<usize>(),
        Value::Object(map) => {
            1 + map
                .iter()
                .map(|(k, v)| k.len() + 1 + msgpack_size(v))
                .sum::<usize>()
        }
    }
}

/// About how many bytes `value` takes in the server's packet encoding.
pub fn encoded_size(parser: crate::config::ParserKind, value: &serde_json::Value) -> usize {
    match parser {
        crate::config::ParserKind::Json => json_size(value),
        crate::config::ParserKind::Msgpack => msgpack_size(value),
    }
}
