//! S3: `message:send` persisted and broadcast. Rooms of 20 members on `/chat`, every
//! member joined to its conversation and sending; each message is checked for
//! membership, inserted, acked and delivered as `message:created` to the 19 others
//! (plus their `unread:count`). Open-loop steps of increasing rate; each step starts
//! from an empty `messages` table so the unread-count work is the same at each step for
//! both servers. Next to it, `pgbench` runs Switchboard's INSERT statement on the same
//! database with as many connections as the servers' pools.

use std::path::PathBuf;

use serde_json::json;

use super::{Ctx, Outcome, Step, measure_step, plain_client};
use crate::db;
use crate::rest;
use crate::token;
use crate::util::Result;
use crate::worker::{LoadTemplate, SetupEmit};

const NS: &str = "/chat";
const FIRST_USER: i64 = 300_000;
const ROOM: usize = 20;
/// The p99 ack bound of the target; the headline rate is the highest step within it.
pub const SLO_MS: f64 = 25.0;
/// The ramp stops past this p99.
const GIVE_UP_MS: f64 = 500.0;
/// Reference rate at which both servers' latencies are compared at equal load.
pub const REF_RATE: f64 = 200.0;

/// Runs S3.
pub async fn run(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let s = ctx.settings;
    let rooms = s.pick(20, 50);
    let step_ms = s.pick(2500, 5000);
    let rates: &[f64] = &[
        100.0, 200.0, 400.0, 700.0, 1000.0, 1400.0, 2000.0, 2800.0, 4000.0, 5600.0,
    ];
    let mut out = Outcome::default();
    let base = ctx.base();
    let mut conversations = Vec::with_capacity(rooms);
    let mut clients = Vec::with_capacity(rooms * ROOM);
    for r in 0..rooms {
        let members: Vec<i64> = (0..ROOM)
            .map(|k| FIRST_USER + (r * ROOM + k) as i64)
            .collect();
        let owner = token::sign(&s.env.secret, members[0], &["user".to_owned()], &[])?;
        let id =
            rest::create_group(&ctx.http, &base, &owner, &format!("bench {r}"), &members).await?;
        for &user in &members {
            let mut c = plain_client(user);
            c.setup = vec![SetupEmit {
                event: "conversation:join".to_owned(),
                payload: json!({ "conversationId": id }),
            }];
            c.load = Some(LoadTemplate {
                event: "message:send".to_owned(),
                payload: format!(
                    "{{\"conversationId\":\"{id}\",\"content\":\"bench message @T{{T}}\"}}"
                ),
            });
            clients.push(c);
        }
        conversations.push((id, members));
    }
    let (mut workers, connected) = ctx
        .open_clients(NS, clients, &["message:created"], 100)
        .await?;
    if connected.failed > 0 {
        out.note(format!(
            "{} clients failed: {:?}",
            connected.failed, connected.errors
        ));
    }
    let fanout = Some((ROOM - 1) as u64);
    let warm = measure_step(ctx, &mut workers, 100.0, 2000, fanout).await?;
    out.note(format!("warm-up: {}", warm.describe()));

    let mut within_slo: Option<Step> = None;
    let mut max: Option<Step> = None;
    let mut reference: Option<Step> = None;
    for rate in s.ramp(rates) {
        clear_messages(&s.env.db_url).await?;
        let step = measure_step(ctx, &mut workers, rate, step_ms, fanout).await?;
        out.note(step.describe());
        if rate == REF_RATE {
            reference = Some(step);
        }
        if !step.complete || step.ack.p99_ms > GIVE_UP_MS {
            break;
        }
        max = Some(step);
        if step.ack.p99_ms <= SLO_MS {
            within_slo = Some(step);
        }
    }
    workers.close().await?;
    if let Some(b) = within_slo {
        out.set("s3.slo_rate", b.achieved);
        out.set("s3.slo_p99_ack_ms", b.ack.p99_ms);
        out.set("s3.slo_p99_delivery_ms", b.delivery.p99_ms);
    }
    if let Some(b) = max {
        out.set("s3.max_rate", b.achieved);
        out.set("s3.max_p99_ack_ms", b.ack.p99_ms);
        out.set("s3.msgs_per_cpu_s", b.acked as f64 / b.cpu_s.max(1e-3));
    }
    if let Some(r) = reference {
        out.set("s3.ref_p99_ack_ms", r.ack.p99_ms);
        out.set("s3.ref_p99_delivery_ms", r.delivery.p99_ms);
    }
    out.set("s3.rss_mib", ctx.usage()?.hwm_kib as f64 / 1024.0);

    if !s.pgbench {
        return Ok(out);
    }
    // The same INSERT through pgbench, with the server idle and its clients gone.
    clear_messages(&s.env.db_url).await?;
    let per_conversation = db::psql(
        &s.env.db_url,
        "select to_regclass('public.messages_conversation_sender_client_id_key') is not null",
    )
    .await?
        == "t";
    let scripts = write_pgbench_scripts(&s.env.logs, &conversations, per_conversation)?;
    let paths: Vec<&std::path::Path> = scripts.iter().map(PathBuf::as_path).collect();
    match db::pgbench(&s.env.db_url, &paths, s.env.pool_size, 2, s.pick(5, 10)).await {
        Ok(tps) => {
            out.set("s3.pgbench_tps", tps);
            out.note(format!(
                "pgbench, Switchboard's INSERT statement, {} connections: {tps:.0} tps",
                s.env.pool_size
            ));
        }
        Err(e) => out.note(format!("pgbench failed: {e}")),
    }
    clear_messages(&s.env.db_url).await?;
    Ok(out)
}

/// Empties `messages` and rewinds read cursors, between steps.
pub async fn clear_messages(url: &str) -> Result<()> {
    db::psql(
        url,
        "truncate messages; update conversation_members set last_read_seq = 0",
    )
    .await?;
    Ok(())
}

/// One pgbench script per (conversation, sender) pair, up to pgbench's 128 scripts,
/// each the single-row form of a send: insert one message and move the sender's cursor,
/// one transaction each (the ceiling the issue compares against; the server itself now
/// writes concurrent sends together, see `store/chat_send.rs`). The id is time-ordered
/// like the server's UUIDv7 (millisecond prefix, random rest).
fn write_pgbench_scripts(
    dir: &std::path::Path,
    conversations: &[(String, Vec<i64>)],
    client_id_per_conversation: bool,
) -> Result<Vec<PathBuf>> {
    // Migration 0004 scoped `clientId` to a conversation; follow the schema in use.
    let conflict = if client_id_per_conversation {
        "(conversation_id, sender_id, client_id)"
    } else {
        "(sender_id, client_id)"
    };
    let mut paths = Vec::new();
    let pairs = conversations.len() * ROOM;
    for i in 0..pairs.min(100) {
        let (conversation, members) = &conversations[i % conversations.len()];
        let sender = members[(i / conversations.len()) % members.len()];
        let sql = format!(
            "with ins as ( \
               insert into messages (id, conversation_id, sender_id, content, attachments, client_id) \
               values ((lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') || substr(md5(random()::text), 1, 20))::uuid, '{conversation}', {sender}, 'bench message @T0', '{{}}', null) \
               on conflict {conflict} where client_id is not null do nothing \
               returning * \
             ), cursor as ( \
               update conversation_members set last_read_seq = greatest(last_read_seq, (select seq from ins)) \
               where conversation_id = '{conversation}' and user_id = {sender} and exists (select 1 from ins) \
             ) \
             select id, seq, conversation_id, sender_id, content, attachments, client_id, created_at, updated_at, \
                    array[]::bigint[] as seen_by \
             from ins;\n"
        );
        let path = dir.join(format!("pgbench-insert-{i}.sql"));
        std::fs::write(&path, sql)?;
        paths.push(path);
    }
    Ok(paths)
}
