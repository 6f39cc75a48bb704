//! The REST calls scenarios make: setup (conversations, restaurants) and the load of
//! S4 (orders) and S5 (broadcasts).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::Result;

/// A JSON POST with a bearer token; returns the status and the body (JSON or null).
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> Result<(StatusCode, Value)> {
    let r = http.post(url).bearer_auth(token).json(body).send().await?;
    let status = r.status();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// `POST /api/conversations` as `token`'s user; returns the conversation id.
pub async fn create_group(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    participants: &[i64],
) -> Result<String> {
    let (status, body) = post(
        http,
        &format!("{base}/api/conversations"),
        token,
        &json!({ "type": "group", "name": name, "participants": participants }),
    )
    .await?;
    if status != StatusCode::CREATED {
        return Err(format!("create conversation: {status} {body}").into());
    }
    body["_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("create conversation: no _id in {body}").into())
}
