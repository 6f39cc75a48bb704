//! `message:send` commits: concurrent sends share one transaction.
//!
//! Each send still gets its answer only once its row is committed (an ack means the row
//! is durable), but sends that arrive while earlier ones are being written wait for the
//! next transaction together instead of queueing one by one for a pool connection. A
//! transaction of `k` sends is four statements instead of `4k`: BEGIN, one lock of the
//! member rows of every conversation involved (which also lists the members, so the
//! sender's membership is checked under the lock, not before it), one INSERT of every
//! message with the counter updates, and COMMIT. When idle, a send is written at once,
//! alone. Each member concerned gets one `unread:count` per transaction, read after the
//! commit and pushed before the acks.
//!
//! If a shared transaction fails before it is committed, each of its sends is tried
//! again alone, so one bad send cannot fail the others. Nothing after COMMIT can send a
//! batch back there: what follows the commit (looking up the first message of a
//! repeated `clientId`) fails per send. And a retry is idempotent on the send's id: if
//! the shared COMMIT did land although the client library reported an error (the
//! connection dropped while the answer was on its way), the retry finds the stored row
//! and answers with it instead of storing it twice or answering an error.

use crate::domain::user::UserId;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::messages::{MessageRow, first_with_client_id, stored, stored_by_id};
use crate::domain::chat::Message;

/// Transactions writing sends at the same time (each holds one pool connection). More
/// made S3 slower: smaller batches, more transactions contending for the same rows.
const WRITERS: usize = 2;
/// Most sends in one transaction.
const MAX_BATCH: usize = 128;

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Conversation (the send is refused unless the sender is a member).
    pub conversation_id: Uuid,
    /// Sender.
    pub sender_id: UserId,
    /// Trimmed content.
    pub content: String,
    /// Attachment URLs.
    pub attachments: Vec<String>,
    /// The client's idempotency key.
    pub client_id: Option<String>,
    /// Kind (`text` by default).
    pub message_type: String,
    /// The sender's display name (the token's `name` claim).
    pub sender_name: Option<String>,
}

/// What a send did.
#[derive(Debug)]
pub struct Sent {
    /// The stored message (or, for a repeated `clientId`, the first one).
    pub message: Message,
    /// True when this send stored it.
    pub created: bool,
    /// Members whose unread counts this send should push: each member concerned by the
    /// transaction appears in exactly one of its sends (empty when not created).
    pub readers: Vec<UserId>,
    /// Every member of the conversation when it was stored, the sender included (empty
    /// when not created): who the message is delivered to.
    pub members: Vec<UserId>,
}

/// Why a send was not stored.
#[derive(Debug)]
pub enum SendError {
    /// The sender is not a member of the conversation, or there is no such conversation.
    NotMember,
    /// The database failed.
    Db(sqlx::Error),
}

impl From<sqlx::Error> for SendError {
    fn from(e: sqlx::Error) -> Self {
        SendError::Db(e)
    }
}

type Outcome = Result<Sent, SendError>;

struct Job {
    id: Uuid,
    new: NewMessage,
    reply: oneshot::Sender<Outcome>,
}

/// Queue of sends waiting for a transaction.
#[derive(Debug, Clone)]
pub struct SendQueue {
    tx: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job { .. }")
    }
}

impl SendQueue {
    /// Starts the writers on `pool`.
    pub fn start(pool: PgPool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(writer(pool.clone(), rx.clone()));
        }
        SendQueue { tx }
    }

    /// Stores a message; answers once it is committed.
    pub async fn send(&self, new: NewMessage) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            id: Uuid::now_v7(),
            new,
            reply,
        };
        self.tx.send(job).map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Takes whatever is queued (up to `MAX_BATCH`), writes it in one transaction, repeats.
async fn writer(pool: PgPool, rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => jobs.push(job),
                None => return,
            }
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let batch: Vec<(Uuid, &NewMessage)> = jobs.iter().map(|j| (j.id, &j.new)).collect();
        match write(&pool, &batch).await {
            Ok(mut results) => {
                for job in jobs {
                    let _ = job.reply.send(take(&mut results, job.id));
                }
            }
            Err(e) if jobs.len() == 1 => {
                if let Some(job) = jobs.into_iter().next() {
                    let _ = job.reply.send(Err(e.into()));
                }
            }
            Err(e) => {
                tracing::debug!(sends = jobs.len(), error = %e, "shared send transaction failed; retrying each alone");
                for job in jobs {
                    let result = match write(&pool, &[(job.id, &job.new)]).await {
                        Ok(mut r) => take(&mut r, job.id),
                        Err(e) => Err(e.into()),
                    };
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

/// The outcome of job `id` out of a transaction's results.
fn take(results: &mut HashMap<Uuid, Outcome>, id: Uuid) -> Outcome {
    results
        .remove(&id)
        .unwrap_or(Err(SendError::Db(sqlx::Error::RowNotFound)))
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    conversation_id: Uuid,
    user_id: UserId,
}

/// Writes `batch` in one transaction; the outcome of each send by its job id.
async fn write(
    pool: &PgPool,
    batch: &[(Uuid, &NewMessage)],
) -> Result<HashMap<Uuid, Outcome>, sqlx::Error> {
    let conversations: Vec<Uuid> = batch
        .iter()
        .map(|(_, m)| m.conversation_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    // Every member row is updated on each send, so the table is mostly dead row versions
    // between vacuums; a sequential scan (the generic plan's choice for `= any($1)` on a
    // table the statistics call small) reads all of them. Index scans touch only the
    // conversations at hand. The statements below take arrays whose length the planner
    // cannot know, so PostgreSQL judged a fresh plan better each time: planning the
    // INSERT's CTEs was 40% of its CPU per send. The one generic plan (with index scans)
    // serves every batch size. Both settings go with BEGIN: one round trip.
    let mut tx = pool
        .begin_with(
            "begin; set local enable_seqscan = off; set local plan_cache_mode = force_generic_plan",
        )
        .await?;
    // Member rows of every conversation, in one order (conversation, then user) so that
    // concurrent transactions cannot deadlock; while held, no other send, delete or
    // member change of these conversations is in flight, which keeps counters exact.
    // The rows locked are the members: membership is checked here, under the lock.
    let members: Vec<MemberRow> = sqlx::query_as(
        "select conversation_id, user_id from conversation_members where conversation_id = any($1)
         order by conversation_id, user_id for update",
    )
    .bind(&conversations)
    .fetch_all(&mut *tx)
    .await?;
    let mut by_conversation: HashMap<Uuid, Vec<UserId>> = HashMap::new();
    for m in members {
        by_conversation
            .entry(m.conversation_id)
            .or_default()
            .push(m.user_id);
    }
    let is_member = |m: &NewMessage| {
        by_conversation
            .get(&m.conversation_id)
            .is_some_and(|users| users.contains(&m.sender_id))
    };

    let mut results = HashMap::with_capacity(batch.len());
    let mut ids = Vec::with_capacity(batch.len());
    let mut conversation_ids = Vec::with_capacity(batch.len());
    let mut senders = Vec::with_capacity(batch.len());
    let mut contents = Vec::with_capacity(batch.len());
    let mut attachments = Vec::with_capacity(batch.len());
    let mut client_ids = Vec::with_capacity(batch.len());
    let mut message_types = Vec::with_capacity(batch.len());
    let mut sender_names = Vec::with_capacity(batch.len());
    for (id, m) in batch {
        if !is_member(m) {
            results.insert(*id, Err(SendError::NotMember));
            continue;
        }
        ids.push(*id);
        conversation_ids.push(m.conversation_id);
        senders.push(&m.sender_id);
        contents.push(m.content.as_str());
        attachments.push(
            serde_json::to_string(&m.attachments).map_err(|e| sqlx::Error::Encode(e.into()))?,
        );
        client_ids.push(m.client_id.as_deref());
        message_types.push(m.message_type.as_str());
        sender_names.push(m.sender_name.as_deref());
    }
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(results);
    }

    // Every message in arrival order (so `seq` follows it), then each member's cursor
    // and counter: a member with sends in the batch moves its cursor to its last one and
    // has unread only what others sent after it; any other member gains what others sent.
    let inserted: Vec<MessageRow> = sqlx::query_as(
        "with input as (
            select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                                 $7::text[], $8::text[])
                with ordinality as t(id, conversation_id, sender_id, content, attachments, client_id,
                                     message_type, sender_name, ord)
         ), ins as (
            insert into messages (id, conversation_id, sender_id, content, attachments, client_id,
                                  message_type, sender_name)
            select id, conversation_id, sender_id, content,
                   array(select jsonb_array_elements_text(attachments::jsonb)), client_id,
                   message_type, sender_name
            from input
            -- A retry of a send whose shared COMMIT landed after all stores nothing again.
            where not exists (select 1 from messages m where m.id = input.id)
            order by ord
            on conflict (conversation_id, sender_id, client_id) where client_id is not null do nothing
            returning *
         ), own as (
            select cm.conversation_id, cm.user_id,
                   (select max(i.seq) from ins i
                    where i.conversation_id = cm.conversation_id and i.sender_id = cm.user_id) as last_own
            from conversation_members cm
            where cm.conversation_id in (select conversation_id from ins)
         ), counters as (
            update conversation_members cm set
                last_read_seq = greatest(cm.last_read_seq, coalesce(o.last_own, cm.last_read_seq)),
                unread_count = (case when o.last_own is null then cm.unread_count else 0 end)
                    + (select count(*) from ins i
                       where i.conversation_id = cm.conversation_id and i.sender_id <> cm.user_id
                         and i.seq > coalesce(o.last_own, 0))::int
            from own o
            where cm.conversation_id = o.conversation_id and cm.user_id = o.user_id
         )
         select id, seq, conversation_id, sender_id, content, attachments, client_id, created_at, updated_at,
                message_type, sender_name, array[]::text[] as seen_by
         from ins",
    )
    .bind(&ids)
    .bind(&conversation_ids)
    .bind(&senders)
    .bind(&contents)
    .bind(&attachments)
    .bind(&client_ids)
    .bind(&message_types)
    .bind(&sender_names)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    let mut created: HashMap<Uuid, MessageRow> = inserted.into_iter().map(|r| (r.id, r)).collect();
    // One count per reader per transaction: the last send that concerns a reader pushes
    // it (read after the commit, it covers every send of the batch).
    let mut readers_by_job: HashMap<Uuid, Vec<UserId>> = HashMap::new();
    let mut assigned: BTreeSet<&UserId> = BTreeSet::new();
    for (id, m) in batch.iter().rev() {
        if !created.contains_key(id) {
            continue;
        }
        for u in by_conversation
            .get(&m.conversation_id)
            .into_iter()
            .flatten()
        {
            if *u != m.sender_id && assigned.insert(u) {
                readers_by_job.entry(*id).or_default().push(u.clone());
            }
        }
    }
    // Committed: from here on an error belongs to one send and never fails the batch
    // (which would send committed messages back to be written again).
    for (id, m) in batch {
        if results.contains_key(id) {
            continue; // refused above
        }
        let outcome = match created.remove(id) {
            Some(row) => Ok(Sent {
                message: stored(row).message,
                created: true,
                readers: readers_by_job.remove(id).unwrap_or_default(),
                members: by_conversation
                    .get(&m.conversation_id)
                    .cloned()
                    .unwrap_or_default(),
            }),
            None => not_inserted(pool, *id, m, &by_conversation).await,
        };
        results.insert(*id, outcome);
    }
    Ok(results)
}

/// A send the INSERT skipped: a repeated `clientId` (answered with the first message,
/// no broadcast), or this very send stored by an earlier attempt whose COMMIT landed
/// unreported (answered as created: it was never acked nor broadcast).
async fn not_inserted(
    pool: &PgPool,
    id: Uuid,
    m: &NewMessage,
    members: &HashMap<Uuid, Vec<UserId>>,
) -> Outcome {
    if let Some(row) = stored_by_id(pool, id).await? {
        let readers = members
            .get(&m.conversation_id)
            .into_iter()
            .flatten()
            .filter(|u| **u != m.sender_id)
            .cloned()
            .collect();
        return Ok(Sent {
            message: stored(row).message,
            created: true,
            readers,
            members: members.get(&m.conversation_id).cloned().unwrap_or_default(),
        });
    }
    Ok(Sent {
        message: first_with_client_id(pool, m).await?,
        created: false,
        readers: Vec::new(),
        members: Vec::new(),
    })
}
