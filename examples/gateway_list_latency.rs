//! Benchmark figures for the entity gateway's lists with 100,000 reservations and
//! 100,000 tables in one restaurant (plus 20 restaurants of 1,000 reservations each),
//! measured end to end over a real WebSocket against a real server.
//!
//!     DATABASE_URL=postgres://…/some_db cargo run --release --example gateway_list_latency
//!
//! Fills the database (once; reruns reuse the rows), starts Switchboard in-process on
//! 127.0.0.1:0, then times `list_reservations` and `list_tables` pages (first, deep,
//! with and without `search`) for a host stand (a staff token of the restaurant) and a
//! backend (a service token, every restaurant), and prints p50/p99/max per kind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

const RESTAURANT: Uuid = Uuid::from_u128(0x0193_a5c2_6f1e_7c3a_9b1d_2f4e_5a6b_7c8d);
const ROWS: i64 = 100_000;
const OTHER_RESTAURANTS: i64 = 20;
const OTHER_ROWS: i64 = 1_000;
const SAMPLES: usize = 300;
const LIMIT: i64 = 20;

/// Fills the restaurant: four sections, 26 × 40 guest names (`Yara Mensah`), a table
/// for every third reservation, one every 15 minutes from 2030 on.
async fn fill(pool: &sqlx::PgPool) {
    let have: i64 =
        sqlx::query_scalar("select count(*) from reservations where restaurant_id = $1")
            .bind(RESTAURANT)
            .fetch_one(pool)
            .await
            .unwrap();
    if have >= ROWS {
        return;
    }
    let started = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    for sql in [
        "insert into restaurants (id, name, section) values ($1, 'Bench Bistro', 'main')",
        "insert into restaurant_tables (restaurant_id, id, section, name, seats)
         select $1, 'table-' || g, (array['main-hall','patio','bar','terrace'])[1 + g % 4],
                (array['Window','Booth','Corner','Garden','Bar','Terrace','Alcove','Fireside'])[1 + g % 8]
                    || ' ' || g,
                2 + g % 6
         from generate_series(1, $2::int) g",
        "insert into reservations
            (id, restaurant_id, section, table_id, guest_name, party_size, starts_at)
         select gen_random_uuid(), $1, (array['main-hall','patio','bar','terrace'])[1 + g % 4],
                case when g % 3 = 0 then 'table-' || g end,
                (array['Ana','Bob','Chen','Dara','Elif','Femi','Gita','Hugo','Ines','Jon','Kemi',
                       'Lars','Mona','Nils','Omar','Priya','Quinn','Rosa','Sven','Tariq','Uma',
                       'Vera','Wes','Xin','Yara','Zoe'])[1 + g % 26]
                || ' ' ||
                (array['Smith','Okafor','Nguyen','Garcia','Müller','Kowalski','Tanaka','Rossi',
                       'Haddad','Johansson','Silva','Dubois','Novak','Kim','Patel','Murphy',
                       'Ivanova','Costa','Yilmaz','Andersen','Fischer','Moreau','Santos','Lopez',
                       'Cohen','Mensah','Sato','Bianchi','Nowak','Olsen','Reyes','Walsh','Ahmed',
                       'Baker','Clarke','Dahl','Evans','Ferrari','Gomez','Horvat'])[1 + (g / 26) % 40],
                1 + g % 8, timestamptz '2030-01-01' + make_interval(mins => g * 15)
         from generate_series(1, $2::int) g",
    ] {
        let query = sqlx::query(sql).bind(RESTAURANT);
        let query = if sql.contains("$2") { query.bind(ROWS) } else { query };
        query.execute(&mut *tx).await.unwrap();
    }
    sqlx::query(
        "with r as (
            insert into restaurants (id, name, section)
            select gen_random_uuid(), 'Other ' || g, 'main' from generate_series(1, $1::int) g
            returning id
         )
         insert into reservations (id, restaurant_id, section, guest_name, party_size, starts_at)
         select gen_random_uuid(), r.id, 'main-hall', 'Other guest ' || g, 2,
                timestamptz '2030-01-01' + make_interval(mins => g * 15)
         from r, generate_series(1, $2::int) g",
    )
    .bind(OTHER_RESTAURANTS)
    .bind(OTHER_ROWS)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // As autovacuum would soon: statistics, and a visibility map for index-only counts.
    for sql in [
        "vacuum analyze restaurants",
        "vacuum analyze restaurant_tables",
        "vacuum analyze reservations",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    println!(
        "filled {ROWS} reservations and {ROWS} tables in {:?}",
        started.elapsed()
    );
}

/// A gateway connection that sends one command at a time.
struct Gw {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Gw {
    async fn connect(base: &str, path: &str) -> Gw {
        let url = format!("{}{path}", base.replacen("http", "ws", 1));
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut gw = Gw { stream, next_id: 0 };
        let hello = gw.next().await;
        assert_eq!(hello["event"], "system.connected", "{hello}");
        gw
    }

    async fn next(&mut self) -> Value {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// Sends `action` and returns its reply's `data` (which must be a list).
    async fn list(&mut self, action: &str, payload: &Value) -> Value {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let command = json!({ "action": action, "payload": payload, "request_id": id });
        self.stream
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        loop {
            let reply = self.next().await;
            if reply["metadata"]["request_id"] == id.as_str() {
                assert!(
                    reply["event"].as_str().unwrap().ends_with(".list"),
                    "{reply}"
                );
                return reply["data"].clone();
            }
        }
    }
}

/// One row of the table: what is asked, on which connection.
struct Kind {
    name: String,
    gw: usize,
    action: &'static str,
    payload: Value,
}

#[tokio::main]
async fn main() {
    let pool = support::database().await;
    fill(&pool).await;

    // Each connection sits idle while the others are measured.
    let server = support::Server::start(&pool, &[("WS_IDLE_TIMEOUT_SECS", "3600")]).await;
    let base = server.base.clone();

    let exp = chrono::Utc::now().timestamp() + 3600;
    let staff = support::sign(
        &json!({ "sub": 4242, "roles": ["staff"], "restaurants": [RESTAURANT], "exp": exp }),
    );
    let service =
        support::sign(&json!({ "sub": "host-stand-backend", "roles": ["service"], "exp": exp }));
    let mut gws = [
        Gw::connect(&base, &format!("/ws/reservations/all/{staff}")).await,
        Gw::connect(&base, &format!("/ws/reservations/main-hall/{staff}")).await,
        Gw::connect(&base, &format!("/ws/reservations/all/{service}")).await,
        Gw::connect(&base, &format!("/ws/tables/all/{staff}")).await,
    ];

    // Deep pages are the last full page of what they list (so its total is counted).
    let mut kinds = Vec::new();
    for (who, gw, action, search, rows) in [
        (
            "staff, all sections",
            0,
            "list_reservations",
            None,
            "reservations",
        ),
        (
            "staff, all sections",
            0,
            "list_reservations",
            Some("okafor"),
            "reservations",
        ),
        (
            "staff, all sections",
            0,
            "list_reservations",
            Some("yara mensah"),
            "reservations",
        ),
        (
            "staff, all sections",
            0,
            "list_reservations",
            Some("an"),
            "reservations",
        ),
        (
            "staff, section main-hall",
            1,
            "list_reservations",
            None,
            "reservations",
        ),
        (
            "staff, section main-hall",
            1,
            "list_reservations",
            Some("okafor"),
            "reservations",
        ),
        (
            "service, every restaurant",
            2,
            "list_reservations",
            None,
            "reservations",
        ),
        (
            "service, every restaurant",
            2,
            "list_reservations",
            Some("okafor"),
            "reservations",
        ),
        ("staff, all sections", 3, "list_tables", None, "tables"),
        (
            "staff, all sections",
            3,
            "list_tables",
            Some("garden 1"),
            "tables",
        ),
    ] {
        let mut payload = json!({ "limit": LIMIT });
        if let Some(search) = search {
            payload["search"] = json!(search);
        }
        let first = gws[gw].list(action, &payload).await;
        let total = first["total"].as_i64().unwrap();
        let searched = search.map_or(String::new(), |s| format!(", search `{s}`"));
        let matches = format!("{total} {rows}");
        kinds.push(Kind {
            name: format!("{action}: {who}{searched} ({matches}): page 1"),
            gw,
            action,
            payload: payload.clone(),
        });
        let deep = (total / LIMIT).max(1);
        if deep > 1 {
            payload["page"] = json!(deep);
            kinds.push(Kind {
                name: format!("{action}: {who}{searched} ({matches}): page {deep}"),
                gw,
                action,
                payload,
            });
        }
    }

    support::header(&format!("{LIMIT} items of"));
    for kind in &kinds {
        let gw = &mut gws[kind.gw];
        for _ in 0..20 {
            gw.list(kind.action, &kind.payload).await;
        }
        let mut times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let t = Instant::now();
            let data = gw.list(kind.action, &kind.payload).await;
            times.push(t.elapsed());
            assert_eq!(
                data["items"].as_array().unwrap().len() as i64,
                LIMIT,
                "{}",
                kind.name
            );
        }
        support::row(&kind.name, times);
    }

    server.stop().await;
}
