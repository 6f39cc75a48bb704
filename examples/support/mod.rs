//! What the latency examples share: the database they fill, a server started in-process
//! on 127.0.0.1:0, tokens signed with its secret, and one table row per measured kind.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

/// The HS256 secret the in-process server verifies with.
const SECRET: &str = "bench-secret-bench-secret-bench-secret";

/// A pool on `DATABASE_URL`, migrated.
pub async fn database() -> sqlx::PgPool {
    let url =
        std::env::var("DATABASE_URL").expect("set DATABASE_URL to a database the example may fill");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(&url)
        .await
        .unwrap();
    switchboard::store::migrate(&pool).await.unwrap();
    pool
}

/// A token for `claims`, signed as the server expects.
pub fn sign(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// Switchboard serving on 127.0.0.1:0 inside this process, with rate limits out of the
/// way and `extra` settings.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts it over `pool`.
    pub async fn start(pool: &sqlx::PgPool, extra: &[(&'static str, &str)]) -> Self {
        let mut vars: HashMap<&str, String> = HashMap::from([
            ("JWT_SECRET", SECRET.to_owned()),
            ("RATE_LIMIT_PER_SEC", "100000".to_owned()),
            ("RATE_LIMIT_BURST", "100000".to_owned()),
        ]);
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let config = switchboard::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let pool = pool.clone();
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            switchboard::serve(listener, config, pool, stopped)
                .await
                .unwrap();
        });
        Server { base, stop, task }
    }

    /// Drains and stops it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The table's header: `| <what> | p50 | p99 | max |`.
pub fn header(what: &str) {
    println!("\n| {what} | p50 | p99 | max |\n| --- | --- | --- | --- |");
}

/// Prints the row of `name` from its timed calls.
pub fn row(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |p: f64| {
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times[i.min(times.len() - 1)].as_secs_f64() * 1e3
    };
    println!(
        "| {name} | {:.2} ms | {:.2} ms | {:.2} ms |",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
