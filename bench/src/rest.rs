//! The REST calls scenarios make: setup (conversations, restaurants) and the load of
//! S4 (orders), S5 (broadcasts) and S7 (publishes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::util::{Latency, Result, new_histogram};

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

/// What an open-loop run of POSTs did.
pub struct Posted {
    /// Answered with a 2xx status.
    pub ok: u64,
    /// Answered otherwise, or not at all.
    pub failed: u64,
    /// Request round trips.
    pub http: Latency,
    /// The first failure, for the notes.
    pub first_error: Option<String>,
}

/// POSTs `total` requests at `rate` per second, open loop (at most 256 in flight),
/// with `token`; `request(n)` gives the n-th URL and body and is called at its send
/// time (so a `@T` send time in the body is that of the request). Waits up to 30 s for
/// the last answers.
pub async fn open_loop(
    http: &reqwest::Client,
    token: &str,
    rate: f64,
    total: u64,
    mut request: impl FnMut(u64) -> (String, Value),
) -> Posted {
    let gate = Arc::new(Semaphore::new(256));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(Mutex::new(new_histogram()));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        let at = started + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let (url, body) = request(n);
        let (http, token) = (http.clone(), token.to_owned());
        let (ok, failed, hist, first_error) = (
            ok.clone(),
            failed.clone(),
            hist.clone(),
            first_error.clone(),
        );
        tasks.spawn(async move {
            let t0 = Instant::now();
            let result = post(&http, &url, &token, &body).await;
            let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
            if let Ok(mut h) = hist.lock() {
                let _ = h.record(us.max(1));
            }
            match result {
                Ok((status, _)) if status.is_success() => {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                other => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut e) = first_error.lock()
                        && e.is_none()
                    {
                        *e = Some(match other {
                            Ok((status, body)) => format!("{status} {body}"),
                            Err(err) => err.to_string(),
                        });
                    }
                }
            }
            drop(permit);
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::timeout_at(deadline, tasks.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    tasks.abort_all();
    let http = hist.lock().map(|h| Latency::of(&h)).unwrap_or_default();
    let first_error = first_error.lock().ok().and_then(|e| e.clone());
    Posted {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        http,
        first_error,
    }
}
