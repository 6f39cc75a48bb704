//! One LISTEN connection per node, shared by every namespace's adapter and the cluster bus.
//!
//! socketioxide-postgres' own sqlx driver opens a `PgListener` per namespace, each holding
//! a pool connection for good: with `/restaurants/<id>` mounted per restaurant that drains
//! the pool. Its stream also ends for good the first time a reconnect fails (the database
//! restarting). This driver keeps one listener for the node, routes notifications by
//! channel, and re-establishes the connection (and every LISTEN) until it is back,
//! reporting the outage in logs and metrics.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use socketioxide_postgres::drivers::Driver;
use socketioxide_postgres::drivers::sqlx::SqlxDriver;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgNotification};
use tokio::sync::{mpsc, oneshot};

use crate::realtime::cluster::LinkHealth;
use crate::realtime::pg_notify::Notifier;

/// Buffer of each subscriber's notification queue.
const SUBSCRIBER_BUFFER: usize = 1024;

/// Handle to the node's LISTEN connection (cheap to clone).
#[derive(Clone)]
pub struct PgLink {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    queries: SqlxDriver,
    notifier: Notifier,
}

impl std::fmt::Debug for PgLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgLink { .. }")
    }
}

struct Shared {
    routes: Mutex<HashMap<String, mpsc::Sender<PgNotification>>>,
    health: LinkHealth,
    /// Attachment tables already created by this node.
    tables: Mutex<HashSet<String>>,
}

enum Command {
    Listen(Vec<String>, oneshot::Sender<Result<(), sqlx::Error>>),
    Unlisten(Vec<String>),
}

impl PgLink {
    /// Opens the listener on a connection of `pool` and starts routing notifications.
    pub async fn start(pool: PgPool, health: LinkHealth) -> Result<Self, sqlx::Error> {
        // The pool closing (shutdown) ends the listener: `try_recv` answers `PoolClosed`.
        let listener = PgListener::connect_with(&pool).await?;
        health.connected();
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            health,
            tables: Mutex::new(HashSet::new()),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(listener, rx, shared.clone(), pool.clone()));
        Ok(PgLink {
            commands,
            shared,
            notifier: Notifier::start(pool.clone()),
            queries: SqlxDriver::new(pool),
        })
    }

    /// Whether the LISTEN connection is up.
    pub fn is_up(&self) -> bool {
        self.shared.health.is_up()
    }

    /// Listens to `channels`; their notifications arrive on the returned queue.
    pub async fn subscribe(
        &self,
        channels: &[&str],
    ) -> Result<mpsc::Receiver<PgNotification>, sqlx::Error> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        {
            let mut routes = self.routes();
            for channel in channels {
                routes.insert((*channel).to_owned(), tx.clone());
            }
            self.shared.health.set_channels(routes.len());
        }
        let (reply, done) = oneshot::channel();
        let owned = channels.iter().map(|c| (*c).to_owned()).collect();
        self.commands
            .send(Command::Listen(owned, reply))
            .map_err(|_| sqlx::Error::PoolClosed)?;
        done.await.map_err(|_| sqlx::Error::PoolClosed)??;
        Ok(rx)
    }

    /// Stops listening to `channels`.
    pub fn unsubscribe(&self, channels: &[&str]) {
        let mut routes = self.routes();
        for channel in channels {
            routes.remove(*channel);
        }
        self.shared.health.set_channels(routes.len());
        drop(routes);
        let owned = channels.iter().map(|c| (*c).to_owned()).collect();
        let _ = self.commands.send(Command::Unlisten(owned));
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<PgNotification>>> {
        self.shared
            .routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The listener's task: serves LISTEN/UNLISTEN requests, routes notifications, and
/// reconnects whenever the connection goes away. Ends when every handle is dropped or
/// the pool closes.
async fn run(
    mut listener: PgListener,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
    pool: PgPool,
) {
    loop {
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                None => return,
                Some(Command::Listen(channels, reply)) => {
                    let result = listener.listen_all(channels.iter().map(String::as_str)).await;
                    if let Err(e) = &result {
                        shared.health.lost(e);
                    }
                    let _ = reply.send(result);
                }
                Some(Command::Unlisten(channels)) => {
                    for channel in &channels {
                        if let Err(e) = listener.unlisten(channel).await {
                            tracing::debug!(channel, error = %e, "unlisten failed");
                        }
                    }
                }
            },
            next = listener.try_recv() => match next {
                Ok(Some(notification)) => {
                    let route = shared
                        .routes
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .get(notification.channel())
                        .cloned();
                    if let Some(tx) = route {
                        // Never wait on one subscriber: the loop serves every channel.
                        match tx.try_send(notification) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(n)) => {
                                shared.health.dropped(n.channel());
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => {
                                tracing::debug!("notification for a closed subscriber");
                            }
                        }
                    }
                }
                Ok(None) => {
                    shared.health.lost(&"connection closed");
                    if !reconnect(&mut listener, &shared.health, &pool).await {
                        return;
                    }
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    shared.health.lost(&e);
                    if !reconnect(&mut listener, &shared.health, &pool).await {
                        return;
                    }
                }
            },
        }
    }
}

/// Re-opens the listener's connection (which re-issues every LISTEN), backing off up to
/// 2 s between tries. False when the pool closed meanwhile.
async fn reconnect(listener: &mut PgListener, health: &LinkHealth, pool: &PgPool) -> bool {
    let mut delay = Duration::from_millis(50);
    loop {
        if pool.is_closed() {
            return false;
        }
        // Using the listener reconnects it and re-issues every LISTEN; this statement's
        // own channel carries nothing.
        match sqlx::query("LISTEN switchboard_link")
            .execute(&mut *listener)
            .await
        {
            Ok(_) => {
                health.connected();
                return true;
            }
            Err(e) => {
                tracing::debug!(error = %e, "LISTEN connection not back yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

impl Driver for PgLink {
    type Error = sqlx::Error;
    type Notification = PgNotification;
    type NotificationStream = BoxStream<'static, PgNotification>;

    /// The adapter creates its attachment table on every namespace it mounts, each time
    /// in a transaction under a global advisory lock: once per node is enough.
    async fn init(&self, table: &str) -> Result<(), Self::Error> {
        let done = |tables: &Mutex<HashSet<String>>| {
            tables
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .contains(table)
        };
        if done(&self.shared.tables) {
            return Ok(());
        }
        self.queries.init(table).await?;
        self.shared
            .tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(table.to_owned());
        Ok(())
    }

    async fn listen(&self, channels: &[&str]) -> Result<Self::NotificationStream, Self::Error> {
        let rx = self.subscribe(channels).await?;
        Ok(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|n| (n, rx)) },
        )
        .boxed())
    }

    /// Coalesced with the node's other notifications (`pg_notify.rs`).
    async fn notify(&self, channel: &str, message: &str) -> Result<(), Self::Error> {
        self.notifier.notify(channel, message).await
    }

    async fn push_attachment(&self, table: &str, attachment: &[u8]) -> Result<i64, Self::Error> {
        self.queries.push_attachment(table, attachment).await
    }

    async fn get_attachment(&self, table: &str, id: i64) -> Result<Vec<u8>, Self::Error> {
        self.queries.get_attachment(table, id).await
    }

    async fn cleanup_attachments(
        &self,
        table: &str,
        interval: Duration,
    ) -> Result<(), Self::Error> {
        self.queries.cleanup_attachments(table, interval).await
    }

    async fn close(&self, channels: &[&str]) -> Result<(), Self::Error> {
        self.unsubscribe(channels);
        Ok(())
    }
}
