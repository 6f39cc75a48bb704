//! Gateway snapshots under load (contract §7.4's change events, §7.1's slow consumer):
//! screens reading through a storm of table updates end with the database's state.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;

/// What a floor-plan screen read during a storm: every snapshot in order, then the
/// list it asked for once the writers were done, or the close code if it was closed.
async fn read_through_storm(
    mut gw: Gw,
    mut writers_done: tokio::sync::watch::Receiver<bool>,
) -> Result<(Vec<Value>, Value), u16> {
    let mut snapshots = Vec::new();
    let mut asked = false;
    loop {
        tokio::select! {
            changed = writers_done.changed(), if !asked => {
                changed.unwrap();
                // Queued after every snapshot of the storm: the writers' PATCHes were
                // answered, and each announced its change before answering.
                gw.send_json(json!({ "action": "list_tables", "payload": { "limit": 100 }, "request_id": "final" }))
                    .await;
                asked = true;
            }
            frame = gw.frame_within(Duration::from_secs(20)) => match frame {
                Some(Message::Text(text)) => {
                    let m: Value = serde_json::from_str(text.as_str()).unwrap();
                    if m["metadata"]["request_id"] == "final" {
                        assert_eq!(m["event"], "tables.list", "{m}");
                        return Ok((snapshots, m["data"].clone()));
                    }
                    assert_eq!(m["event"], "tables.snapshot", "{m}");
                    assert_eq!(m["data"]["op"], "updated", "{m}");
                    snapshots.push(m["data"]["item"].clone());
                }
                Some(Message::Close(frame)) => return Err(frame.map_or(1005, |f| u16::from(f.code))),
                other => panic!("expected a message within 20 s, got {other:?}"),
            },
        }
    }
}

/// 1,000 PATCHes of 100 tables from 10 concurrent writers, as fast as the server takes
/// them, while 50 screens read: every screen gets every change, each table's in the
/// order it was made, ending with the table as it is in the database, and none is
/// closed as a slow consumer. Each writer owns its tables: two concurrent PATCHes of
/// one table may be announced in the other order than they committed (see the report
/// of issue #14), which is not what this test is about.
#[sqlx::test]
async fn a_storm_of_table_updates_leaves_every_screen_with_the_final_state(pool: PgPool) {
    const TABLES: usize = 100;
    const WRITERS: usize = 10;
    const UPDATES_PER_WRITER: usize = 100;
    const SCREENS: usize = 50;
    const STATUSES: [&str; 4] = ["occupied", "cleaning", "reserved", "available"];
    let server = TestServer::start_with(
        pool,
        &[
            ("REST_RATE_LIMIT_PER_SEC", "100000"),
            ("REST_RATE_LIMIT_BURST", "100000"),
        ],
    )
    .await;
    let r = restaurant(&server, "Storm Diner", "main").await;
    for i in 0..TABLES {
        table(
            &server,
            r,
            &format!("t{i:03}"),
            &format!("Table {i}"),
            "main-hall",
        )
        .await;
    }

    // Half host stands of the restaurant on its section, half backends on every section.
    let (done, writers_done) = tokio::sync::watch::channel(false);
    let mut screens = Vec::new();
    for i in 0..SCREENS {
        let gw = if i % 2 == 0 {
            let staff = member(100 + i as i64, &["staff"], &[r]);
            Gw::connect(&server, "tables", "main-hall", &staff).await
        } else {
            Gw::connect(&server, "tables", "all", &service()).await
        };
        screens.push(tokio::spawn(read_through_storm(gw, writers_done.clone())));
    }

    let started = std::time::Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (http, base, bearer) = (server.http(), server.base.clone(), service());
        writers.push(tokio::spawn(async move {
            let mine: Vec<String> = (w..TABLES)
                .step_by(WRITERS)
                .map(|i| format!("t{i:03}"))
                .collect();
            let mut last = std::collections::HashMap::new();
            for k in 0..UPDATES_PER_WRITER {
                let id = &mine[k % mine.len()];
                let res = http
                    .patch(format!("{base}/api/restaurants/{r}/tables/{id}"))
                    .bearer_auth(&bearer)
                    .json(&json!({ "seats": k + 1, "status": STATUSES[k % STATUSES.len()] }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                last.insert(id.clone(), res.json::<Value>().await.unwrap());
            }
            last
        }));
    }
    let mut last_written = std::collections::HashMap::new();
    for writer in writers {
        last_written.extend(writer.await.unwrap());
    }
    let storm = started.elapsed();
    done.send(true).unwrap();

    let in_db: Vec<(String, i32, String)> = sqlx::query_as(
        "select id, seats, status from restaurant_tables where restaurant_id = $1 order by id",
    )
    .bind(r)
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert_eq!(in_db.len(), TABLES);
    for (id, seats, status) in &in_db {
        assert_eq!(last_written[id]["seats"], *seats, "{id}");
        assert_eq!(last_written[id]["status"], status.as_str(), "{id}");
    }
    for (n, screen) in screens.into_iter().enumerate() {
        let (snapshots, list) = match screen.await.unwrap() {
            Ok(read) => read,
            Err(code) => panic!("screen {n} was closed with {code} during the storm"),
        };
        assert_eq!(snapshots.len(), WRITERS * UPDATES_PER_WRITER, "screen {n}");
        let mut seen: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
        for item in snapshots {
            let id = item["id"].as_str().unwrap().to_owned();
            if let Some(before) = seen.get(&id) {
                // Each writer raises a table's seats with every PATCH of it.
                assert!(
                    before["seats"].as_i64() < item["seats"].as_i64(),
                    "screen {n}: {id} went back from {before} to {item}"
                );
            }
            seen.insert(id, item);
        }
        let listed = list["items"].as_array().unwrap();
        assert_eq!(
            (listed.len(), list["total"].as_i64()),
            (TABLES, Some(TABLES as i64)),
            "screen {n}"
        );
        for item in listed {
            let id = item["id"].as_str().unwrap();
            assert_eq!(
                &seen[id], item,
                "screen {n}: the last snapshot of {id} is not the table as it is"
            );
            assert_eq!(&last_written[id], item, "screen {n}: {id}");
        }
    }
    assert_eq!(
        metric(
            &server,
            "switchboard_ws_closes_total{reason=\"slow_consumer\"} "
        )
        .await,
        0.0
    );
    eprintln!(
        "{} PATCHes in {storm:?} with {SCREENS} screens reading",
        WRITERS * UPDATES_PER_WRITER
    );
}
