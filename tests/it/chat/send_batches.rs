//! Sends that share a transaction (contract §4's `message:send`; the batching is
//! `store/chat_send.rs`'s): a send the database refuses fails alone, refused sends store
//! nothing, and a committed batch is never written again.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// A send that PostgreSQL could not store (U+0000 in its text) is refused as bad input
/// and changes nothing, while sends beside it go through.
#[sqlx::test]
async fn nul_characters_are_refused_and_do_not_fail_other_sends(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let alice = joined(&server, 1, &conv).await;
    let sends = ["fine", "bad \u{0}", "also fine"].map(|content| {
        alice.emit_ack(
            "message:send",
            json!({ "conversationId": conv, "content": content }),
        )
    });
    let [first, bad, last]: [Value; 3] = futures_util::future::join_all(sends)
        .await
        .try_into()
        .unwrap();
    assert_ok(&first);
    assert_ok(&last);
    assert_error(&bad, "BAD_REQUEST");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("NUL"),
        "{bad}"
    );
    let bad_key = alice
        .emit_ack(
            "message:send",
            json!({ "conversationId": conv, "content": "x", "clientId": "k\u{0}" }),
        )
        .await;
    assert_error(&bad_key, "BAD_REQUEST");
    // Any field: an attachment URL too, in flight with a good send.
    let sends = [
        json!({ "conversationId": conv, "content": "x", "attachments": ["https://a/\u{0}"] }),
        json!({ "conversationId": conv, "content": "third fine" }),
    ]
    .map(|payload| alice.emit_ack("message:send", payload));
    let [bad_url, fine]: [Value; 2] = futures_util::future::join_all(sends)
        .await
        .try_into()
        .unwrap();
    assert_error(&bad_url, "BAD_REQUEST");
    assert_eq!(
        bad_url["error"]["message"],
        "attachments[0]: must not contain NUL characters"
    );
    assert_ok(&fine);
    assert_eq!(count_messages(&pool).await, 3);
}

/// Membership is checked where sends are written, under the member-row locks: sends of
/// outsiders and to unknown conversations, in flight together with members' sends (so
/// in the same shared transactions), are refused with the right code and store nothing,
/// while every member's send is stored once.
#[sqlx::test]
async fn refused_sends_in_shared_transactions_change_nothing(pool: PgPool) {
    // Under the default burst of the per-socket rate limit.
    const EACH: usize = 10;
    let (server, conv, alice, bob) = pair(pool.clone()).await;
    let outsider = server.client("/chat", 3).await;
    let stranger = server.client("/chat", 4).await;
    let unknown = Uuid::new_v4().to_string();
    async fn send(c: &SioClient, target: &str, i: usize) -> Value {
        c.emit_ack(
            "message:send",
            json!({ "conversationId": target, "content": format!("m{i}") }),
        )
        .await
    }
    let (member_acks, outsider_acks, unknown_acks) = tokio::join!(
        futures_util::future::join_all((0..EACH).map(|i| send(&alice, &conv, i))),
        futures_util::future::join_all((0..EACH).map(|i| send(&outsider, &conv, i))),
        futures_util::future::join_all((0..EACH).map(|i| send(&stranger, &unknown, i))),
    );
    for ack in &member_acks {
        assert_ok(ack);
    }
    for ack in &outsider_acks {
        assert_error(ack, "FORBIDDEN");
    }
    for ack in &unknown_acks {
        assert_error(ack, "NOT_FOUND");
    }
    assert_eq!(count_messages(&pool).await, EACH as i64);
    for _ in 0..EACH {
        assert_eq!(bob.recv("message:created").await["sender_id"], json!(1));
    }
    bob.expect_none("message:created", QUIET).await;
    // The outsider's refused sends left no counter behind: bob's unread is alice's sends.
    let fresh = server.client("/chat", 2).await;
    assert_eq!(fresh.recv("unread:count").await["total"], json!(EACH));

    // A member removed is refused from then on.
    alice.ok("members:remove", member(&conv, 2)).await;
    assert_error(&send(&bob, &conv, 99).await, "FORBIDDEN");
    assert_eq!(count_messages(&pool).await, EACH as i64);
}

/// A shared send transaction that fails is not the end of the sends in it: each is
/// written again alone, so only the send the database refuses fails. A trigger stands
/// in for the fault: it delays sends marked `slow` (so that both writers are busy and
/// the next sends queue up into one batch) and raises on the one marked `boom`.
#[sqlx::test]
async fn one_failing_send_does_not_fail_the_others_in_its_transaction(pool: PgPool) {
    sqlx::raw_sql(
        "create function test_fault() returns trigger language plpgsql as $$
         begin
           if new.content = 'slow' then perform pg_sleep(0.4); end if;
           if new.content = 'boom' then raise exception 'injected fault'; end if;
           return new;
         end $$;
         create trigger test_fault before insert on messages
           for each row execute function test_fault();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let server = TestServer::start(pool.clone()).await;
    let conv = create_conversation(&server, 1, "group", &[2, 3]).await;
    let alice = joined(&server, 1, &conv).await;
    let bob = joined(&server, 2, &conv).await;
    let carol = joined(&server, 3, &conv).await;
    async fn send(c: &SioClient, conversation: &str, content: String) -> Value {
        c.emit_ack(
            "message:send",
            json!({ "conversationId": conversation, "content": content }),
        )
        .await
    }
    // Two slow sends occupy both writers; what follows queues into one batch.
    let slow = futures_util::future::join(
        send(&alice, &conv, "slow".into()),
        send(&bob, &conv, "slow".into()),
    );
    let rest = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let good = (0..8).map(|i| {
            let c = if i % 2 == 0 { &alice } else { &bob };
            send(c, &conv, format!("good {i}"))
        });
        futures_util::future::join(
            futures_util::future::join_all(good),
            send(&carol, &conv, "boom".into()),
        )
        .await
    };
    let ((slow_a, slow_b), (good, boom)) = futures_util::future::join(slow, rest).await;
    assert_ok(&slow_a);
    assert_ok(&slow_b);
    for ack in &good {
        assert_ok(ack);
    }
    assert_error(&boom, "INTERNAL");
    assert_eq!(count_messages(&pool).await, 10);
    let contents = good_contents(&pool).await;
    assert_eq!(
        contents.len(),
        8,
        "each good send stored once: {contents:?}"
    );
}

/// Once a shared send transaction is committed, an error after it (here: reading back
/// the first message of a repeated `clientId`, which a row-level security policy makes
/// fail) fails that send alone. The batch is never written again: every other send in it is
/// acked ok and stored once (a rerun would have answered them INTERNAL).
#[sqlx::test]
async fn an_error_after_commit_fails_one_send_and_never_reruns_the_batch(pool: PgPool) {
    // Sends marked `hold` wait for an advisory lock the test holds: with both writers
    // held, every send that follows queues up and goes into one transaction.
    sqlx::raw_sql(
        "create function test_hold() returns trigger language plpgsql as $$
         begin
           if new.content = 'hold' then perform pg_advisory_xact_lock_shared(4242); end if;
           return new;
         end $$;
         create trigger test_hold before insert on messages
           for each row execute function test_hold();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (server, conv, alice, bob) = pair(pool.clone()).await;
    async fn send(c: &SioClient, conversation: &str, content: &str, key: Option<&str>) -> Value {
        c.emit_ack(
            "message:send",
            json!({ "conversationId": conversation, "content": content, "clientId": key }),
        )
        .await
    }
    assert_ok(&send(&alice, &conv, "first", Some("dup")).await);
    // Reading the first message back now fails (its reader raises), while writing and
    // returning new rows still works: the fault can only strike after the COMMIT.
    sqlx::raw_sql(
        "create function test_readable(content text) returns boolean language plpgsql as $$
         begin
           if content = 'first' then raise exception 'injected read fault'; end if;
           return true;
         end $$;
         alter table messages enable row level security;
         alter table messages force row level security;
         create policy test_read on messages for select using (test_readable(content));
         create policy test_write on messages for insert with check (true);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("select pg_advisory_lock(4242)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let waiting = |n: i64| {
        let pool = pool.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let now: i64 = sqlx::query_scalar(
                    "select count(*) from pg_locks where locktype = 'advisory' and not granted",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                if now >= n {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "{now} writers held");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Each held send in a conversation of its own: sends of one conversation also wait
    // for each other's member-row locks, which would hold the second writer elsewhere.
    let hold_a = create_conversation(&server, 1, "group", &[2]).await;
    let hold_b = create_conversation(&server, 1, "group", &[2]).await;
    let conv = &conv;
    let held = async {
        let first = send(&alice, &hold_a, "hold", None);
        let second = async {
            waiting(1).await;
            send(&bob, &hold_b, "hold", None).await
        };
        futures_util::future::join(first, second).await
    };
    let batch = async {
        waiting(2).await;
        let good = (0..6).map(|i| {
            let c = if i % 2 == 0 { &alice } else { &bob };
            let content = format!("good {i}");
            async move { send(c, conv, &content, None).await }
        });
        let all = futures_util::future::join(
            futures_util::future::join_all(good),
            send(&alice, conv, "again", Some("dup")),
        );
        let release = async {
            // Every send of the batch is queued behind the two held writers.
            tokio::time::sleep(Duration::from_millis(300)).await;
            sqlx::query("select pg_advisory_unlock(4242)")
                .execute(&mut *holder)
                .await
                .unwrap();
        };
        futures_util::future::join(all, release).await.0
    };
    let ((held_a, held_b), (good, repeat)) = futures_util::future::join(held, batch).await;
    assert_ok(&held_a);
    assert_ok(&held_b);
    for ack in &good {
        assert_ok(ack);
    }
    assert_error(&repeat, "INTERNAL");
    sqlx::raw_sql(
        "alter table messages no force row level security;
         drop policy test_read on messages; drop policy test_write on messages",
    )
    .execute(&pool)
    .await
    .unwrap();
    let contents = good_contents(&pool).await;
    assert_eq!(
        contents.len(),
        6,
        "each good send stored once: {contents:?}"
    );
    assert_eq!(count_messages(&pool).await, 9);
}

/// The stored contents of the `good …` messages.
async fn good_contents(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("select content from messages where content like 'good %'")
        .fetch_all(pool)
        .await
        .unwrap()
}
