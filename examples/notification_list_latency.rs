//! Benchmark figure for `notification:list` with 100,000 notifications for one user
//! (plus broadcasts), measured end to end over a real websocket against a real server.
//!
//!     DATABASE_URL=postgres://…/some_db cargo run --release --example notification_list_latency
//!
//! Fills the database (once; reruns reuse the rows and put their read state back),
//! starts Switchboard in-process on 127.0.0.1:0, then times first pages, deep pages
//! (`before` near the oldest) and unread-only pages, and prints p50/p99/max per kind
//! plus the query plan of a page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Instant;

use serde_json::{Value, json};

const USER: i64 = 4242;
const ROWS: i64 = 100_000;
const BROADCASTS: i64 = 200;
const SAMPLES: usize = 300;

#[tokio::main]
async fn main() {
    let pool = support::database().await;

    let have: i64 = sqlx::query_scalar("select count(*) from notifications where user_id = $1")
        .bind(USER.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    if have < ROWS {
        let started = Instant::now();
        // Every 3rd is read, like a real inbox; uuid v7-like order follows seq.
        sqlx::query(
            "insert into notifications (id, user_id, type, title, content, is_read, created_at)
             select gen_random_uuid(), $1, 'message', 'title ' || g, 'body ' || g, g % 3 = 0,
                    now() - make_interval(secs => $2 - g)
             from generate_series(1, $2) g",
        )
        .bind(USER.to_string())
        .bind(ROWS - have)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into notifications (id, user_id, type, title, content)
             select gen_random_uuid(), null, 'system', 'broadcast ' || g, 'all users' from generate_series(1, $1) g",
        )
        .bind(BROADCASTS)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("analyze notifications")
            .execute(&pool)
            .await
            .unwrap();
        println!("filled {} rows in {:?}", ROWS - have, started.elapsed());
    } else {
        // The last step marks everything read: a rerun puts the inbox back as filled
        // (every 3rd personal row read, no broadcast receipts) so it measures the same thing.
        sqlx::query(
            "update notifications set is_read = split_part(title, ' ', 2)::bigint % 3 = 0
             where user_id = $1",
        )
        .bind(USER.to_string())
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("delete from notification_receipts where user_id = $1")
            .bind(USER.to_string())
            .execute(&pool)
            .await
            .unwrap();
    }

    let server = support::Server::start(&pool, &[]).await;
    let token = support::sign(
        &json!({ "sub": USER, "roles": ["user"], "exp": chrono::Utc::now().timestamp() + 3600 }),
    );
    let mut client =
        sio::Client::connect(&server.base, "/notifications", json!({ "token": token })).await;
    let count = client.recv("notification:count").await;
    println!("unread count at connect: {count}");

    // A cursor deep in the history: the 99,000th newest.
    let deep: String = sqlx::query_scalar("select id::text from notifications where user_id = $1 order by seq desc offset 99000 limit 1")
        .bind(USER.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    let kinds: [(&str, Value); 3] = [
        ("first page (50)", json!({})),
        ("deep page (before #99000, 50)", json!({ "before": deep })),
        ("unread only (50)", json!({ "unreadOnly": true })),
    ];
    support::header("page");
    for (name, payload) in kinds {
        for _ in 0..20 {
            client.emit_ack("notification:list", payload.clone()).await;
        }
        let mut times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let t = Instant::now();
            let ack = client.emit_ack("notification:list", payload.clone()).await;
            times.push(t.elapsed());
            assert_eq!(ack["ok"], true, "{ack}");
            assert_eq!(ack["data"].as_array().unwrap().len(), 50);
        }
        support::row(name, times);
    }
    let first = Instant::now();
    let marked = client.emit_ack("notification:read_all", json!({})).await;
    println!(
        "\nread_all marking {}: {:.1} ms",
        marked["data"]["count"],
        first.elapsed().as_secs_f64() * 1e3
    );
    let count_started = Instant::now();
    for _ in 0..50 {
        client.emit_ack("notification:read_all", json!({})).await;
    }
    println!(
        "read_all with nothing left to mark (+ count): {:.2} ms each",
        count_started.elapsed().as_secs_f64() * 1e3 / 50.0
    );

    server.stop().await;
}

/// A socket.io v5 client attached to one namespace over one websocket, just enough for
/// this measurement: connect with an auth payload, wait for an event, emit and wait for
/// the ack. It is sequential (no reader task): it answers engine.io pings while it waits
/// and keeps events that arrive during an ack wait for `recv`. The tests' client
/// (`tests/it/support/sio.rs`) does much more and belongs to the test binary.
mod sio {
    use std::collections::VecDeque;
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use serde_json::Value;
    use tokio::net::TcpStream;
    use tokio::time::{Instant, timeout_at};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    /// Bound of every wait: a broken run fails, it never hangs.
    const WAIT: Duration = Duration::from_secs(5);

    /// One connection, one namespace.
    pub struct Client {
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        ns: String,
        next_ack: u64,
        events: VecDeque<(String, Value)>,
    }

    /// A socket.io packet of this namespace, as far as the client cares.
    enum Packet {
        /// `42/ns,["name", arg, …]`: the name and the first argument.
        Event(String, Value),
        /// `43/ns,<id>[arg, …]`: the ack id and the first argument.
        Ack(u64, Value),
        /// Anything else (another namespace, a CONNECT, a DISCONNECT).
        Other,
    }

    impl Client {
        /// Opens `ws://…/socket.io/?EIO=4&transport=websocket` on `base`
        /// (`http://127.0.0.1:PORT`), reads the engine.io OPEN, sends CONNECT for `ns`
        /// with `auth` and waits for the server's CONNECT.
        pub async fn connect(base: &str, ns: &str, auth: Value) -> Client {
            let url = format!(
                "{}/socket.io/?EIO=4&transport=websocket",
                base.replacen("http", "ws", 1)
            );
            let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            let mut client = Client {
                ws,
                ns: ns.to_owned(),
                next_ack: 1,
                events: VecDeque::new(),
            };
            let open = client.next_frame().await;
            assert!(
                open.starts_with('0'),
                "engine.io OPEN expected, got {open:?}"
            );
            client.send(format!("40{ns},{auth}")).await;
            loop {
                let frame = client.next_frame().await;
                if let Some(answer) = frame.strip_prefix(&format!("40{ns},")) {
                    let answer: Value = serde_json::from_str(answer).unwrap();
                    assert!(answer["sid"].is_string(), "CONNECT without sid: {frame}");
                    return client;
                }
                assert!(
                    !frame.starts_with(&format!("44{ns},")),
                    "connect refused: {frame}"
                );
                if let Packet::Event(name, arg) = client.parse(&frame) {
                    client.events.push_back((name, arg));
                }
            }
        }

        /// The first argument of the next `event` (events of other names stay kept).
        pub async fn recv(&mut self, event: &str) -> Value {
            if let Some(at) = self.events.iter().position(|(name, _)| name == event) {
                return self.events.remove(at).unwrap().1;
            }
            loop {
                let frame = self.next_frame().await;
                match self.parse(&frame) {
                    Packet::Event(name, arg) if name == event => return arg,
                    Packet::Event(name, arg) => self.events.push_back((name, arg)),
                    Packet::Ack(..) | Packet::Other => {}
                }
            }
        }

        /// Emits `["event", data]` with an ack id; the ack's first argument.
        pub async fn emit_ack(&mut self, event: &str, data: Value) -> Value {
            let id = self.next_ack;
            self.next_ack += 1;
            let packet = Value::Array(vec![Value::from(event), data]);
            self.send(format!("42{},{id}{packet}", self.ns)).await;
            loop {
                let frame = self.next_frame().await;
                match self.parse(&frame) {
                    Packet::Ack(acked, arg) if acked == id => return arg,
                    Packet::Event(name, arg) => self.events.push_back((name, arg)),
                    Packet::Ack(..) | Packet::Other => {}
                }
            }
        }

        async fn send(&mut self, frame: String) {
            self.ws.send(Message::text(frame)).await.unwrap();
        }

        /// The next engine.io text frame that is not a ping (pings are answered).
        async fn next_frame(&mut self) -> String {
            let deadline = Instant::now() + WAIT;
            loop {
                let message = timeout_at(deadline, self.ws.next())
                    .await
                    .unwrap_or_else(|_| panic!("nothing from the server within {WAIT:?}"))
                    .expect("the server closed the connection")
                    .unwrap();
                match message {
                    Message::Text(text) if text.as_str() == "2" => self.send("3".to_owned()).await,
                    Message::Text(text) => return text.as_str().to_owned(),
                    Message::Close(frame) => panic!("the server closed the connection: {frame:?}"),
                    _ => {}
                }
            }
        }

        fn parse(&self, frame: &str) -> Packet {
            let Some(rest) = frame
                .strip_prefix('4')
                .and_then(|rest| rest.split_at_checked(1))
            else {
                return Packet::Other;
            };
            let (kind, rest) = rest;
            let Some(rest) = rest.strip_prefix(&format!("{},", self.ns)) else {
                return Packet::Other;
            };
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let id = rest[..digits].parse::<u64>().ok();
            let Ok(Value::Array(args)) = serde_json::from_str::<Value>(&rest[digits..]) else {
                return Packet::Other;
            };
            let mut args = args.into_iter();
            match (kind, id) {
                ("2", _) => match args.next() {
                    Some(Value::String(name)) => {
                        Packet::Event(name, args.next().unwrap_or_default())
                    }
                    _ => Packet::Other,
                },
                ("3", Some(id)) => Packet::Ack(id, args.next().unwrap_or_default()),
                _ => Packet::Other,
            }
        }
    }
}
