//! NOTIFY for the node, coalesced: every `pg_notify` of the adapters and the cluster bus
//! goes through one task that sends whatever is queued as one statement.
//!
//! PostgreSQL commits notifications one transaction at a time under a global lock, so a
//! NOTIFY per emit (a chat message to a room of 20 is 21 of them) made a delivery across
//! two nodes 6.7× slower at p99 than on one node (README "Latency across nodes"). Here the
//! first notify goes out at once, and what arrives while it is in flight goes out
//! together in the next statement: no added delay when idle, one commit per batch under
//! load. One task also keeps the node's notifications in the order they were asked for
//! (the pool used to send them concurrently).
//!
//! PostgreSQL delivers a (channel, payload) pair only once per transaction, so a batch
//! never holds the same pair twice: the repeat starts the next batch. A batch the
//! database refuses is retried one notification at a time, so one bad payload (over
//! 8000 bytes) fails alone.

use std::collections::HashSet;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

/// Notifications waiting at most (senders wait beyond it).
const QUEUE: usize = 8192;
/// Notifications per statement at most.
const MAX_BATCH: usize = 512;
/// Payload bytes per statement at most (each payload is under 8000).
const MAX_BATCH_BYTES: usize = 1 << 20;

struct Pending {
    channel: String,
    payload: String,
    done: oneshot::Sender<Result<(), sqlx::Error>>,
}

/// Handle to the node's NOTIFY task (cheap to clone).
#[derive(Clone, Debug)]
pub struct Notifier {
    queue: mpsc::Sender<Pending>,
}

impl Notifier {
    /// Starts the task on `pool`; it ends when every handle is dropped.
    pub fn start(pool: PgPool) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        Notifier { queue }
    }

    /// `pg_notify(channel, payload)`, answered once the statement that carried it
    /// committed.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Pending {
                channel: channel.to_owned(),
                payload: payload.to_owned(),
                done,
            })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn run(pool: PgPool, mut rx: mpsc::Receiver<Pending>) {
    let mut carry: Option<Pending> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.payload.len();
        let mut seen = HashSet::new();
        seen.insert((first.channel.clone(), first.payload.clone()));
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Ok(next) = rx.try_recv() else { break };
            if !seen.insert((next.channel.clone(), next.payload.clone())) {
                carry = Some(next);
                break;
            }
            bytes += next.payload.len();
            batch.push(next);
        }
        send(&pool, batch).await;
    }
}

async fn send(pool: &PgPool, batch: Vec<Pending>) {
    if batch.len() == 1 {
        for p in batch {
            let result = notify_one(pool, &p.channel, &p.payload).await;
            let _ = p.done.send(result);
        }
        return;
    }
    let (channels, payloads): (Vec<&str>, Vec<&str>) = batch
        .iter()
        .map(|p| (p.channel.as_str(), p.payload.as_str()))
        .unzip();
    // unnest yields the rows in array order, so the notifications go out in it.
    let result =
        sqlx::query("select pg_notify(c, p) from unnest($1::text[], $2::text[]) as t(c, p)")
            .bind(&channels)
            .bind(&payloads)
            .execute(pool)
            .await;
    match result {
        Ok(_) => {
            for p in batch {
                let _ = p.done.send(Ok(()));
            }
        }
        Err(e) if pool.is_closed() => {
            tracing::debug!(error = %e, "NOTIFY batch after the pool closed");
            for p in batch {
                let _ = p.done.send(Err(sqlx::Error::PoolClosed));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, size = batch.len(), "NOTIFY batch refused, sending one by one");
            for p in batch {
                let result = notify_one(pool, &p.channel, &p.payload).await;
                let _ = p.done.send(result);
            }
        }
    }
}

async fn notify_one(pool: &PgPool, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(pool)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::join_all;
    use sqlx::postgres::PgListener;
    use std::time::Duration;

    async fn received(listener: &mut PgListener, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        while got.len() < n {
            match tokio::time::timeout(Duration::from_secs(10), listener.recv()).await {
                Ok(Ok(notification)) => got.push(notification.payload().to_owned()),
                Ok(Err(e)) => panic!("listener: {e}"),
                Err(_) => panic!("{} of {n} notifications after 10 s: {got:?}", got.len()),
            }
        }
        got
    }

    /// A burst from many tasks arrives whole, repeats included (PostgreSQL would fold a
    /// repeated pair sent in one transaction), and each task's own notifications keep
    /// their order.
    #[sqlx::test(migrations = false)]
    async fn a_burst_arrives_whole_repeats_included_and_in_each_senders_order(pool: PgPool) {
        let mut listener = PgListener::connect_with(&pool).await.unwrap();
        listener.listen("burst").await.unwrap();
        let notifier = Notifier::start(pool.clone());
        let tasks = (0..20).map(|task| {
            let notifier = notifier.clone();
            async move {
                for i in 0..50 {
                    // Every task sends "same" ten times, and its own numbered ones.
                    let payload = if i % 5 == 0 {
                        "same".to_owned()
                    } else {
                        format!("{task}:{i}")
                    };
                    notifier.notify("burst", &payload).await.unwrap();
                }
            }
        });
        join_all(tasks).await;
        let got = received(&mut listener, 1000).await;
        assert_eq!(got.iter().filter(|p| *p == "same").count(), 200);
        for task in 0..20 {
            let own: Vec<usize> = got
                .iter()
                .filter_map(|p| p.strip_prefix(&format!("{task}:")))
                .map(|i| i.parse().unwrap())
                .collect();
            let expected: Vec<usize> = (0..50).filter(|i| i % 5 != 0).collect();
            assert_eq!(own, expected, "task {task}");
        }
    }

    /// A payload PostgreSQL refuses fails alone; the ones sent beside it arrive.
    #[sqlx::test(migrations = false)]
    async fn a_refused_payload_fails_alone(pool: PgPool) {
        let mut listener = PgListener::connect_with(&pool).await.unwrap();
        listener.listen("mixed").await.unwrap();
        let notifier = Notifier::start(pool.clone());
        let too_long = "x".repeat(9000);
        let sends = (0..30).map(|i| {
            let notifier = notifier.clone();
            let payload = if i == 7 {
                too_long.clone()
            } else {
                format!("ok {i}")
            };
            async move { (i, notifier.notify("mixed", &payload).await) }
        });
        let results = join_all(sends).await;
        for (i, result) in &results {
            assert_eq!(result.is_err(), *i == 7, "send {i}: {result:?}");
        }
        let mut got = received(&mut listener, 29).await;
        got.sort();
        let mut expected: Vec<String> = (0..30)
            .filter(|i| *i != 7)
            .map(|i| format!("ok {i}"))
            .collect();
        expected.sort();
        assert_eq!(got, expected);
    }
}
