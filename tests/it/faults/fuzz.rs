//! The fuzzer of `fuzzed_frames_payloads_and_bodies_leave_the_server_healthy`: a seeded
//! generator of hostile values (arbitrary JSON shapes, lengths up to the payload limit,
//! Unicode, NUL, deep nesting, out-of-range numbers) and the phases that throw them at a
//! running server: every event of every namespace, raw engine.io/socket.io frames (text
//! and binary), long-polling requests and every REST body. Each phase asserts what a
//! client's mistake may get back: a well-formed envelope that is not a server fault, a
//! 4xx, or a closed connection where the protocol allows it.
//!
//! Past 400 lines: the generator's value kinds and the frame, payload and body mutators
//! belong together: the seed replays them in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::sio::{self, ConnectOptions, SioClient};
use crate::support::{get_text, metrics_text};

/// The payload limit of the fuzzed server (`MAX_PAYLOAD_BYTES`, its default).
const FUZZ_PAYLOAD_LIMIT: usize = 1_000_000;
/// Cases per round and phase: events of each namespace, raw frames, polling, REST.
const EVENT_CASES_PER_NAMESPACE: usize = 500;
const RAW_CASES: usize = 250;
const POLLING_CASES: usize = 50;
const REST_CASES: usize = 300;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A version 4 UUID from this generator, so a seed replays the same ids.
    fn uuid(&mut self) -> Uuid {
        let bits = (u128::from(self.next()) << 64) | u128::from(self.next());
        uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid()
    }
}

/// Characters that break naive handling: NUL, controls, quotes, escapes, RTL marks,
/// combining marks, BOM, astral plane, the last code point, lone-surrogate look-alikes.
const SPECIALS: &[&str] = &[
    "\u{0}",
    "\u{1}",
    "\u{7f}",
    "\"",
    "\\",
    "\n",
    "\r\n",
    "\t",
    " ",
    "é",
    "日本語",
    "🦀",
    "\u{200F}",
    "\u{0301}",
    "\u{FEFF}",
    "\u{10FFFF}",
    "\u{2028}",
    "\\ud800",
    "%00",
    "'; drop table messages; --",
    "<script>",
    "${x}",
    "{{x}}",
    "../../etc/passwd",
];

/// Ids and values the fuzzer mixes into payloads so that some cases get past decoding.
pub struct FuzzCtx {
    pub conversation: String,
    pub message: String,
    pub notification: String,
    pub restaurant: String,
    pub order: String,
    /// An order for `DELETE /api/orders/:id`: its body is decoded only for an order
    /// that exists, and the first valid body deletes it.
    pub doomed_order: String,
    pub user_token: String,
    pub staff_token: String,
    pub service_token: String,
}

fn arb_string(rng: &mut Rng) -> String {
    match rng.below(100) {
        0..=29 => (0..rng.below(40))
            .map(|_| char::from(b' ' + rng.below(95) as u8))
            .collect(),
        30..=49 => (0..rng.below(12)).map(|_| *rng.pick(SPECIALS)).collect(),
        50..=57 => rng.pick(&["", " ", "   \t\n", "\u{3000}"]).to_string(),
        58..=65 => format!("a\u{0}b{}", "\u{0}".repeat(rng.below(3))),
        66..=75 => {
            let id = rng.uuid().to_string();
            rng.pick(&[
                id.to_uppercase(),
                format!("{{{id}}}"),
                format!("urn:uuid:{id}"),
                id.replace('-', ""),
                id[..30].to_owned(),
                "42".to_owned(),
                "-1".to_owned(),
                "99999999999999999999999".to_owned(),
                "1e400".to_owned(),
                "NaN".to_owned(),
            ])
            .clone()
        }
        76..=87 => {
            // Around the 4000-character content limit, counted in code points.
            let unit = *rng.pick(&["a", "é", "🦀", " "]);
            unit.repeat(3990 + rng.below(20))
        }
        88..=98 => "x".repeat(rng.below(60_000)),
        // Up to (and a little past) the payload limit.
        _ => "y".repeat(FUZZ_PAYLOAD_LIMIT - 4000 + rng.below(8000)),
    }
}

fn arb_number(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(i64::MIN),
        4 => json!(u64::MAX),
        5 => json!(9_007_199_254_740_993_i64),
        6 => json!(1.5),
        7 => json!(-0.0),
        8 => json!(1e308),
        9 => json!(-1e-300),
        10 => json!(rng.below(200)),
        _ => json!(rng.next() as i64),
    }
}

fn arb_value(rng: &mut Rng, ctx: &FuzzCtx, depth: usize) -> Value {
    let scalar_only = depth >= 4;
    match rng.below(if scalar_only { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => arb_number(rng),
        3 | 4 => json!(arb_string(rng)),
        5 => json!(rng.pick(&[
            ctx.conversation.as_str(),
            ctx.message.as_str(),
            ctx.notification.as_str(),
            ctx.restaurant.as_str(),
            ctx.order.as_str(),
        ])),
        6 => Value::Array(
            (0..rng.below(5))
                .map(|_| arb_value(rng, ctx, depth + 1))
                .collect(),
        ),
        7 => {
            let mut object = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                let key = if rng.chance(70) {
                    rng.pick(FIELDS).to_string()
                } else {
                    arb_string(rng).chars().take(64).collect()
                };
                object.insert(key, arb_value(rng, ctx, depth + 1));
            }
            Value::Object(object)
        }
        _ => nested(*rng.pick(&[10, 127, 129, 300])),
    }
}

/// `[[[…]]]`, `depth` arrays deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

/// Every field name any event or REST body reads.
const FIELDS: &[&str] = &[
    "conversationId",
    "content",
    "attachments",
    "clientId",
    "messageId",
    "before",
    "after",
    "limit",
    "isTyping",
    "userId",
    "unreadOnly",
    "notificationId",
    "action",
    "restaurantId",
    "batch",
    "station",
    "statuses",
    "orderId",
    "status",
    "tableNumber",
    "type",
    "name",
    "participants",
    "user_id",
    "title",
    "related_id",
    "id",
    "order_number",
    "table_number",
    "total",
    "items",
    "message",
    "severity",
    "reason",
    "quantity",
    "notes",
];

/// A value of the right kind for `field` (sometimes a wrong one of the right kind).
fn plausible(field: &str, rng: &mut Rng, ctx: &FuzzCtx) -> Value {
    match field {
        "conversationId" if rng.chance(80) => json!(ctx.conversation),
        "messageId" | "before" | "after" if rng.chance(80) => json!(ctx.message),
        "notificationId" | "related_id" if rng.chance(80) => json!(ctx.notification),
        "restaurantId" | "id" if rng.chance(80) => json!(ctx.restaurant),
        "orderId" if rng.chance(80) => json!(ctx.order),
        "conversationId" | "messageId" | "before" | "after" | "notificationId" | "restaurantId"
        | "orderId" | "id" => json!(rng.uuid().to_string()),
        "status" => json!(rng.pick(&[
            "new",
            "pending",
            "confirmed",
            "preparing",
            "ready",
            "completed",
            "cancelled",
            "NEW",
            "bogus"
        ])),
        "statuses" => Value::Array(
            (0..rng.below(6))
                .map(|_| plausible("status", rng, ctx))
                .collect(),
        ),
        "station" => json!(rng.pick(&["kitchen", "expo", "bar", "pos", "garage", ""])),
        "type" => json!(rng.pick(&[
            "private",
            "group",
            "message",
            "system",
            "group_invite",
            "dine_in",
            "takeout",
            "urgent",
            "info",
            "bogus"
        ])),
        "tableNumber" | "table_number" | "order_number" => rng
            .pick(&[json!("5"), json!(5), json!(" 7 "), json!(""), json!(-3)])
            .clone(),
        "limit" | "severity" | "quantity" | "total" => json!(rng.below(1200) as i64 - 100),
        "isTyping" | "batch" | "unreadOnly" => json!(rng.chance(50)),
        "userId" | "user_id" => json!(1 + rng.below(30)),
        "participants" => Value::Array((0..rng.below(5)).map(|_| json!(rng.below(30))).collect()),
        "attachments" => Value::Array(
            (0..rng.below(12))
                .map(|_| json!(format!("https://cdn.example/{}.png", rng.below(100))))
                .collect(),
        ),
        "items" => Value::Array(
            (0..rng.below(4))
                .map(|_| {
                    json!({
                        "name": arb_string(rng).chars().take(300).collect::<String>(),
                        "quantity": plausible("quantity", rng, ctx),
                        "station": plausible("station", rng, ctx),
                        "notes": arb_value(rng, ctx, 3),
                    })
                })
                .collect(),
        ),
        "action" => json!("ping"),
        _ => json!(arb_string(rng)),
    }
}

/// An object of `fields`, each left out, plausible or arbitrary.
fn object_of(fields: &[&str], rng: &mut Rng, ctx: &FuzzCtx) -> Value {
    let mut object = serde_json::Map::new();
    for field in fields {
        match rng.below(20) {
            0..=1 => {}
            2..=15 => {
                object.insert((*field).to_owned(), plausible(field, rng, ctx));
            }
            _ => {
                object.insert((*field).to_owned(), arb_value(rng, ctx, 1));
            }
        }
    }
    if rng.chance(10) {
        object.insert(
            arb_string(rng).chars().take(32).collect(),
            arb_value(rng, ctx, 1),
        );
    }
    Value::Object(object)
}

/// Which envelope a namespace answers with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dialect {
    Chat,
    Restaurant,
}

const CHAT_EVENTS: &[(&str, &[&str])] = &[
    ("conversation:join", &["conversationId"]),
    ("conversation:leave", &["conversationId"]),
    (
        "message:send",
        &["conversationId", "content", "attachments", "clientId"],
    ),
    ("message:edit", &["messageId", "content"]),
    ("message:delete", &["messageId"]),
    ("message:read", &["messageId"]),
    (
        "message:list",
        &["conversationId", "before", "after", "limit"],
    ),
    ("typing", &["conversationId", "isTyping"]),
    ("members:add", &["conversationId", "userId"]),
    ("members:remove", &["conversationId", "userId"]),
];
const NOTIFICATION_EVENTS: &[(&str, &[&str])] = &[
    ("notification:list", &["unreadOnly", "before", "limit"]),
    ("notification:get", &["notificationId"]),
    ("notification:read", &["notificationId"]),
    ("notification:read_all", &[]),
    ("notification:delete", &["notificationId"]),
    ("notification:ping", &["action"]),
];
const RESTAURANT_EVENTS: &[(&str, &[&str])] = &[
    ("join:restaurant", &["restaurantId", "batch"]),
    ("join:station", &["restaurantId", "station"]),
    ("orders:sync", &["restaurantId", "statuses"]),
    (
        "order:update_status",
        &["orderId", "status", "restaurantId"],
    ),
    ("table:complete", &["tableNumber", "restaurantId"]),
];

/// Checks one ack: a single argument, exactly the envelope of `dialect`, and never the
/// server-fault code (every fuzz case is a client's doing).
fn check_envelope(dialect: Dialect, args: &[Value]) -> Result<(), String> {
    let [ack] = args else {
        return Err(format!("ack with {} arguments", args.len()));
    };
    let object = ack.as_object().ok_or("ack is not an object")?;
    let (flag, codes, fault): (&str, &[&str], &str) = match dialect {
        Dialect::Chat => (
            "ok",
            &[
                "AUTH_INVALID",
                "FORBIDDEN",
                "NOT_FOUND",
                "BAD_REQUEST",
                "RATE_LIMITED",
                "INVALID_TRANSITION",
            ],
            "INTERNAL",
        ),
        Dialect::Restaurant => (
            "success",
            &[
                "AUTH_FAILED",
                "INVALID_RESTAURANT",
                "PERMISSION_DENIED",
                "INVALID_PAYLOAD",
                "RATE_LIMIT",
                "NOT_FOUND",
                "INVALID_TRANSITION",
            ],
            "INTERNAL_ERROR",
        ),
    };
    match object.get(flag) {
        Some(Value::Bool(true)) => {
            if object.keys().all(|k| k == flag || k == "data") {
                Ok(())
            } else {
                Err("ok envelope with extra keys".to_owned())
            }
        }
        Some(Value::Bool(false)) => {
            let error = object
                .get("error")
                .and_then(Value::as_object)
                .ok_or("error envelope without an error object")?;
            if object.keys().any(|k| k != flag && k != "error") {
                return Err("error envelope with extra keys".to_owned());
            }
            if error.keys().any(|k| k != "code" && k != "message") {
                return Err("error object with extra keys".to_owned());
            }
            let code = error.get("code").and_then(Value::as_str).unwrap_or("");
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            if code == fault {
                return Err(format!("server fault for a client's mistake: {message}"));
            }
            if !codes.contains(&code) || message.is_empty() {
                return Err(format!(
                    "unknown code or empty message: {code:?} {message:?}"
                ));
            }
            Ok(())
        }
        _ => Err(format!("no boolean `{flag}`")),
    }
}

fn dialect_of(ns: &str) -> Dialect {
    if ns == "/chat" || ns == "/notifications" {
        Dialect::Chat
    } else {
        Dialect::Restaurant
    }
}

/// A namespace's connection for the fuzzer, reopened when the server closed it.
async fn fuzz_connect(base: &str, ns: &str, ctx: &FuzzCtx) -> SioClient {
    let token = if dialect_of(ns) == Dialect::Chat {
        &ctx.user_token
    } else {
        &ctx.staff_token
    };
    SioClient::connect(
        base,
        ns,
        ConnectOptions::with_auth(json!({ "token": token })),
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {ns}: {e}"))
}

/// Shortened for failure messages.
fn short(text: &str) -> String {
    if text.len() <= 300 {
        text.to_owned()
    } else {
        let cut = (0..=300)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}… ({} bytes)", &text[..cut], text.len())
    }
}

/// Random events with random payloads on `ns`, each with an ack that must be a
/// well-formed envelope. Only a frame over the payload limit may close the connection.
/// Returns how often each answer came (`ok` or the error code), to show what the run
/// reached.
async fn fuzz_events(
    base: String,
    ns: String,
    seed: u64,
    ctx: Arc<FuzzCtx>,
) -> HashMap<String, usize> {
    let mut answers = HashMap::new();
    let mut rng = Rng::new(seed);
    let events = match ns.as_str() {
        "/chat" => CHAT_EVENTS,
        "/notifications" => NOTIFICATION_EVENTS,
        _ => RESTAURANT_EVENTS,
    };
    let dialect = dialect_of(&ns);
    let mut client = fuzz_connect(&base, &ns, &ctx).await;
    for case in 0..EVENT_CASES_PER_NAMESPACE {
        let (event, fields) = if rng.chance(90) {
            let (e, f) = rng.pick(events);
            ((*e).to_owned(), *f)
        } else {
            let name = rng
                .pick(&[
                    "",
                    "__proto__",
                    "constructor",
                    "message:send ",
                    "MESSAGE:SEND",
                    "x",
                ])
                .to_string();
            (
                if rng.chance(50) {
                    name
                } else {
                    arb_string(&mut rng)
                },
                &[][..],
            )
        };
        let payload = match rng.below(10) {
            0..=6 => object_of(fields, &mut rng, &ctx),
            7 if event == "join:restaurant" => {
                let forms = [
                    ctx.restaurant.clone(),
                    format!(" {} ", ctx.restaurant.to_uppercase()),
                    arb_string(&mut rng),
                ];
                json!(rng.pick(&forms))
            }
            _ => arb_value(&mut rng, &ctx, 0),
        };
        let args = match rng.below(20) {
            0 => vec![],
            1 => vec![payload, arb_value(&mut rng, &ctx, 2)],
            _ => vec![payload],
        };
        let size = serde_json::to_string(&args).unwrap().len() + event.len() + 64;
        // socketioxide reads the event name as a borrowed `&str`: a name JSON must
        // escape (quote, backslash, control characters) fails to parse and closes the
        // connection, as does a frame over the payload limit.
        let escaped_name = event.chars().any(|c| c == '"' || c == '\\' || c < ' ');
        let may_close = size >= FUZZ_PAYLOAD_LIMIT - 64 || escaped_name;
        let answer = client
            .emit_ack_timeout(&event, args.clone(), Duration::from_secs(15))
            .await;
        let what = || {
            format!(
                "seed {seed} case {case}: {ns} {event:?} {}",
                short(&Value::Array(args.clone()).to_string())
            )
        };
        match answer {
            Ok(ack) => {
                if let Err(e) = check_envelope(dialect, &ack) {
                    panic!(
                        "{}: bad ack {}: {e}",
                        what(),
                        short(&Value::Array(ack).to_string())
                    );
                }
                let answer = ack[0]["error"]["code"].as_str().unwrap_or("ok").to_owned();
                *answers.entry(answer).or_default() += 1;
            }
            Err(_) if may_close && client.wait_disconnected(Duration::from_secs(5)).await => {
                *answers.entry("connection closed".to_owned()).or_default() += 1;
                client = fuzz_connect(&base, &ns, &ctx).await;
            }
            Err(e) => panic!("{}: no ack: {e}", what()),
        }
    }
    client.close().await;
    answers
}

/// One raw case: websocket frames sent as they are.
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// Raw engine.io/socket.io frames for a client on `ns` (`nsp` is the packet prefix).
fn raw_frames(rng: &mut Rng, ctx: &FuzzCtx, ns: &str) -> Vec<Frame> {
    let nsp = if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    };
    let ack = |rng: &mut Rng| -> String {
        rng.pick(&[
            "",
            "7",
            "0",
            "99999999999999999999999",
            "18446744073709551615",
            "-1",
        ])
        .to_string()
    };
    let conv = &ctx.conversation;
    let text = |s: String| vec![Frame::Text(s)];
    match rng.below(14) {
        // engine.io packets of every type, and types that do not exist.
        0 => {
            let kind = *rng.pick(&[
                "0", "1", "2", "3", "5", "6", "7", "9", "a", "", " ", "\u{0}",
            ]);
            text(format!(
                "{kind}{}",
                arb_string(rng).chars().take(200).collect::<String>()
            ))
        }
        1 => text(
            rng.pick(&["", "2probe", "3probe", "5", "6", "4", "40", "4{}"])
                .to_string(),
        ),
        // socket.io packets of every type with arbitrary bodies.
        2 => {
            let body = if rng.chance(50) {
                arb_value(rng, ctx, 1).to_string()
            } else {
                arb_string(rng).chars().take(500).collect()
            };
            let kind = rng.below(10);
            text(format!("4{kind}{nsp}{}{body}", ack(rng)))
        }
        // Events whose name is not a string, or that carry nothing.
        3 => {
            let data = *rng.pick(&[
                "[5]",
                "[]",
                "{}",
                "[null]",
                "\"x\"",
                "[[\"a\"]]",
                "[{\"a\":1}]",
                "[true,1]",
                "",
                "[",
                "[\"x\"",
            ]);
            text(format!("42{nsp}{}{data}", ack(rng)))
        }
        // Lone surrogates and broken escapes inside JSON strings.
        4 => {
            let bad = *rng.pick(&[
                "\\ud800",
                "\\udc00x",
                "\\ud800\\u0041",
                "\\u00",
                "\\x41",
                "\\uDFFF\\uD800",
            ]);
            let event = *rng.pick(&[
                "message:send",
                "join:restaurant",
                "notification:get",
                "unknown",
            ]);
            if rng.chance(50) {
                text(format!(
                    "42{nsp}{}[\"{event}\",{{\"conversationId\":\"{conv}\",\"content\":\"{bad}\",\"restaurantId\":\"{bad}\"}}]",
                    ack(rng)
                ))
            } else {
                text(format!("42{nsp}{}[\"{bad}\",{{}}]", ack(rng)))
            }
        }
        // Numbers JSON allows but no integer or float type holds.
        5 => {
            let n = *rng.pick(&[
                "1e400",
                "-1e400",
                "123456789012345678901234567890",
                "-0",
                "0.5",
                "1E2",
                "18446744073709551616",
                "-9223372036854775809",
            ]);
            let event = *rng.pick(&[
                "message:list",
                "members:add",
                "notification:list",
                "table:complete",
            ]);
            text(format!(
                "42{nsp}{}[\"{event}\",{{\"conversationId\":\"{conv}\",\"limit\":{n},\"userId\":{n},\"tableNumber\":{n},\"restaurantId\":\"{}\"}}]",
                ack(rng),
                ctx.restaurant
            ))
        }
        // Deep nesting, as text (past serde_json's recursion limit too).
        6 => {
            let depth = *rng.pick(&[127, 128, 129, 1000, 100_000]);
            text(format!(
                "42{nsp}{}[\"message:send\",{}{}]",
                ack(rng),
                "[".repeat(depth),
                "]".repeat(depth)
            ))
        }
        // CONNECT to namespaces that do not exist, malformed restaurant paths, a second
        // CONNECT, DISCONNECT of a namespace never joined or of the client's own.
        7 => {
            let id = rng.uuid().to_string();
            let path = rng
                .pick(&[
                    "/nope".to_owned(),
                    format!("/restaurants/{}", id.to_uppercase()),
                    format!("/restaurants/{{{id}}}"),
                    format!("/restaurants/{}", "a".repeat(4000)),
                    "/restaurants/".to_owned(),
                    format!("/restaurants/{}/x", ctx.restaurant),
                    "/🦀".to_owned(),
                    ns.to_owned(),
                    "/x".repeat(500),
                ])
                .clone();
            let auth = rng
                .pick(&[
                    String::new(),
                    "{}".to_owned(),
                    json!({ "token": ctx.staff_token }).to_string(),
                    json!({ "token": "Bearer garbage" }).to_string(),
                    "[1]".to_owned(),
                    "\"token\"".to_owned(),
                ])
                .clone();
            let kind = *rng.pick(&["0", "0", "1"]);
            text(format!("4{kind}{path},{auth}"))
        }
        // Binary: attachments declared and not sent, too many, absurd counts, bytes
        // nobody announced, a binary ACK nobody asked for.
        8 => {
            let count = *rng.pick(&["0", "1", "2", "11", "1000000", "99999999999999999999"]);
            let mut frames = vec![Frame::Text(format!(
                "45{count}-{nsp}{}[\"message:send\",{{\"_placeholder\":true,\"num\":{}}}]",
                ack(rng),
                rng.pick(&["0", "1", "-1", "99999999999", "\"0\""])
            ))];
            for _ in 0..rng.below(3) {
                frames.push(Frame::Binary(
                    (0..rng.below(2000)).map(|_| rng.next() as u8).collect(),
                ));
            }
            frames
        }
        9 => vec![Frame::Binary(
            (0..rng.below(5000)).map(|_| rng.next() as u8).collect(),
        )],
        10 => text(format!(
            "46{}-{nsp}{}[{{\"_placeholder\":true,\"num\":0}}]",
            rng.below(3),
            ack(rng)
        )),
        // An ACK the server never asked for.
        11 => text(format!("43{nsp}{}[{}]", ack(rng), arb_value(rng, ctx, 2))),
        // Over the payload limit: the server closes the connection.
        12 if rng.chance(10) => text(format!(
            "42{nsp}[\"x\",\"{}\"]",
            "z".repeat(FUZZ_PAYLOAD_LIMIT + 10)
        )),
        // A well-formed event with an arbitrary payload and no ack.
        _ => {
            let (event, _) = rng
                .pick(&[CHAT_EVENTS, NOTIFICATION_EVENTS, RESTAURANT_EVENTS].concat())
                .to_owned();
            text(format!("42{nsp}[\"{event}\",{}]", arb_value(rng, ctx, 0)))
        }
    }
}

/// Whether a raw text frame is a socket.io DISCONNECT of `ns` (the client leaving it).
fn leaves_namespace(frame: &str, ns: &str) -> bool {
    let Some(rest) = frame.strip_prefix("41") else {
        return false;
    };
    if ns == "/" {
        !rest.starts_with('/')
    } else {
        rest.strip_prefix(ns)
            .is_some_and(|tail| tail.is_empty() || tail.starts_with(','))
    }
}

/// Raw frames, each on a fresh connection; afterwards the same connection answers a
/// probe event with a well-formed envelope, or the server has closed it.
async fn fuzz_raw(base: &str, seed: u64, ctx: &FuzzCtx) {
    let mut rng = Rng::new(seed);
    let namespaces = [
        "/chat".to_owned(),
        "/notifications".to_owned(),
        "/".to_owned(),
        format!("/restaurants/{}", ctx.restaurant),
    ];
    for case in 0..RAW_CASES {
        let ns = rng.pick(&namespaces).clone();
        let client = fuzz_connect(base, &ns, ctx).await;
        let frames = raw_frames(&mut rng, ctx, &ns);
        let mut shown = Vec::new();
        let mut left = false;
        for frame in frames {
            match frame {
                Frame::Text(t) => {
                    left |= leaves_namespace(&t, &ns);
                    shown.push(short(&t));
                    client.send_raw(&t).await;
                }
                Frame::Binary(b) => {
                    shown.push(format!("<{} binary bytes>", b.len()));
                    client.send_raw_binary(b).await;
                }
            }
        }
        let probe = client
            .emit_ack_timeout("fuzz:probe", vec![json!({})], Duration::from_secs(10))
            .await;
        match probe {
            Ok(ack) => {
                if let Err(e) = check_envelope(dialect_of(&ns), &ack) {
                    panic!("seed {seed} raw case {case} on {ns} {shown:?}: bad probe ack: {e}");
                }
            }
            // A client that sent DISCONNECT for its own namespace has left it: the server
            // ignores later events there, as socket.io does; the connection may stay.
            Err(_) if left => {}
            Err(e) => assert!(
                client.wait_disconnected(Duration::from_secs(5)).await,
                "seed {seed} raw case {case} on {ns} {shown:?}: the connection is open but the probe got no answer: {e}"
            ),
        }
        // Frames that carried an ack id got their answer too: every one a well-formed
        // envelope of this namespace.
        for frame in client.frames() {
            let Some(Ok(packet)) = frame.strip_prefix('4').map(sio::parse_sio_packet) else {
                continue;
            };
            if packet.kind == sio::kind::ACK && packet.ns == ns {
                let args = match packet.data {
                    Some(Value::Array(args)) => args,
                    other => panic!("seed {seed} raw case {case} on {ns} {shown:?}: ACK {other:?}"),
                };
                if let Err(e) = check_envelope(dialect_of(&ns), &args) {
                    panic!("seed {seed} raw case {case} on {ns} {shown:?}: bad ack {args:?}: {e}");
                }
            }
        }
        client.close_transport().await;
    }
}

/// An HTTP client that opens a connection per request: after a refused oversized body
/// the server closes the connection, and a pooled client would race that close.
fn unpooled_http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Long-polling requests with bad parameters and garbage bodies: 4xx, never 5xx.
async fn fuzz_polling(base: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    let http = unpooled_http();
    for case in 0..POLLING_CASES {
        // A fresh engine.io session to post into.
        let open = get_text(&http, &format!("{base}/socket.io/?EIO=4&transport=polling")).await;
        let open: Value = serde_json::from_str(open.trim_start_matches('0')).unwrap();
        let sid = open["sid"].as_str().unwrap().to_owned();
        let query = match rng.below(6) {
            0 => "EIO=3&transport=polling".to_owned(),
            1 => format!("EIO=4&transport=websocket&sid={sid}"),
            2 => format!("EIO=4&transport=polling&sid={}", rng.uuid()),
            3 => "EIO=x&transport=%00".to_owned(),
            _ => format!("EIO=4&transport=polling&sid={sid}"),
        };
        let body: Vec<u8> = match rng.below(6) {
            0 => (0..rng.below(3000)).map(|_| rng.next() as u8).collect(),
            1 => b"40/chat,{}\x1e42/chat,[\"message:send\"]\x1e4garbage\x1e".to_vec(),
            2 => format!("4{}", arb_string(&mut rng)).into_bytes(),
            3 => vec![0xff, 0xfe, 0x1e, 0x34, 0x30],
            4 => "4".repeat(FUZZ_PAYLOAD_LIMIT + 100).into_bytes(),
            _ => format!("42[\"x\",{}]", "[".repeat(1000)).into_bytes(),
        };
        let described = format!(
            "seed {seed} polling case {case}: POST ?{query} {}",
            short(&String::from_utf8_lossy(&body))
        );
        let oversized = body.len() > FUZZ_PAYLOAD_LIMIT;
        match http
            .post(format!("{base}/socket.io/?{query}"))
            .body(body)
            .send()
            .await
        {
            Ok(res) => assert!(
                res.status().as_u16() < 500,
                "{described}: status {}",
                res.status()
            ),
            // Refused before it was read whole: the server answered and closed while
            // the client was still writing.
            Err(_) if oversized => {}
            Err(e) => panic!("{described}: {e}"),
        }
        // Unknown sessions, bad EIO versions and transports: answered without a 5xx too.
        let res = http
            .get(format!(
                "{base}/socket.io/?{}",
                rng.pick(&[
                    "EIO=3&transport=polling",
                    "EIO=4&transport=bogus",
                    "EIO=4&transport=polling&sid=nope",
                    "transport=polling"
                ])
            ))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().as_u16() < 500,
            "seed {seed} polling case {case}: GET status {}",
            res.status()
        );
        // Close the session so it does not linger until its ping timeout.
        let _ = http
            .post(format!(
                "{base}/socket.io/?EIO=4&transport=polling&sid={sid}"
            ))
            .body("1")
            .send()
            .await;
    }
}

/// Random bodies to every POST/PATCH/DELETE route: 4xx for every client mistake, never
/// 5xx; error bodies in the JSON error shape.
async fn fuzz_rest(base: &str, seed: u64, ctx: &FuzzCtx) {
    let mut rng = Rng::new(seed);
    let http = unpooled_http();
    let r = &ctx.restaurant;
    let o = &ctx.order;
    let routes: [(reqwest::Method, String, &str, &[&str]); 8] = [
        (
            reqwest::Method::POST,
            "/api/conversations".into(),
            ctx.user_token.as_str(),
            &["type", "name", "participants"],
        ),
        (
            reqwest::Method::POST,
            "/api/notifications".into(),
            ctx.service_token.as_str(),
            &["user_id", "type", "title", "content", "related_id"],
        ),
        (
            reqwest::Method::POST,
            "/api/notifications/broadcast".into(),
            ctx.service_token.as_str(),
            &["type", "title", "content"],
        ),
        (
            reqwest::Method::POST,
            "/api/restaurants".into(),
            ctx.service_token.as_str(),
            &["id", "name"],
        ),
        (
            reqwest::Method::POST,
            format!("/api/restaurants/{r}/orders"),
            ctx.service_token.as_str(),
            &["order_number", "type", "table_number", "total", "items"],
        ),
        (
            reqwest::Method::POST,
            format!("/api/restaurants/{r}/alerts"),
            ctx.staff_token.as_str(),
            &["type", "message", "orderId", "tableNumber", "severity"],
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/orders/{o}"),
            ctx.staff_token.as_str(),
            &["status", "items", "table_number"],
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/orders/{}", ctx.doomed_order),
            ctx.service_token.as_str(),
            &["reason"],
        ),
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for case in 0..REST_CASES {
        let (method, path, token, fields) = rng.pick(&routes).clone();
        let path = if rng.chance(10) {
            let bad = *rng.pick(&["not-a-uuid", "%00", "%FF%FE", "1", "%F0%9F%A6%80", "a%2Fb"]);
            let mut parts: Vec<&str> = path.split('/').collect();
            let at = parts.len()
                - if path.ends_with("orders") || path.ends_with("alerts") {
                    2
                } else {
                    1
                };
            if at > 2 {
                parts[at] = bad;
            }
            parts.join("/")
        } else {
            path
        };
        let body: Vec<u8> = match rng.below(20) {
            0..=10 => object_of(fields, &mut rng, ctx).to_string().into_bytes(),
            11..=13 => arb_value(&mut rng, ctx, 0).to_string().into_bytes(),
            14 => (0..rng.below(500)).map(|_| rng.next() as u8).collect(),
            15 => b"{\"type\": \"group\", \"participants\": [1,".to_vec(),
            16 => "[".repeat(10_000).into_bytes(),
            17 => vec![],
            18 if rng.chance(20) => vec![b' '; FUZZ_PAYLOAD_LIMIT + 1000],
            _ => "{\"name\":\"a\u{0}b\",\"title\":\"\\u0000\",\"content\":\"\\ud800\"}"
                .as_bytes()
                .to_vec(),
        };
        let mut req = http
            .request(method.clone(), format!("{base}{path}"))
            .body(body.clone());
        req = match rng.below(20) {
            0 => req,
            1 => req.header("content-type", "text/plain"),
            2 => req.header("content-type", "application/json; charset=x-bogus"),
            _ => req.header("content-type", "application/json"),
        };
        req = match rng.below(20) {
            0 => req,
            1 => req.header("authorization", "Bearer garbage"),
            _ => req.bearer_auth(token),
        };
        let described = format!(
            "seed {seed} REST case {case}: {method} {path} {}",
            short(&String::from_utf8_lossy(&body))
        );
        let res = match req.send().await {
            Ok(res) => res,
            // Refused before it was read whole (see `fuzz_polling`).
            Err(_) if body.len() > FUZZ_PAYLOAD_LIMIT => continue,
            Err(e) => panic!("{described}: {e}"),
        };
        let status = res.status();
        *statuses.entry(status.as_u16()).or_insert(0_usize) += 1;
        let json_body = res
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/json"));
        let text = res.text().await.unwrap_or_default();
        assert!(status.as_u16() < 500, "{described}: {status} {text}");
        if status.is_client_error() && json_body {
            let error: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{described}: {status} body {text}: {e}"));
            assert!(
                error["error"]["code"].is_string() && error["error"]["message"].is_string(),
                "{described}: {status} body {text}"
            );
        }
    }
    eprintln!("  REST statuses: {statuses:?}");
}

/// The sum of `switchboard_sockets_connected` over namespaces.
async fn sockets_connected(base: &str) -> f64 {
    metrics_text(base)
        .await
        .lines()
        .filter(|l| l.starts_with("switchboard_sockets_connected"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One fuzz round: every phase once, then every fuzz connection gone.
pub async fn fuzz_round(base: &str, seed: u64, ctx: &Arc<FuzzCtx>) {
    let started = Instant::now();
    let namespaces = [
        "/chat".to_owned(),
        "/notifications".to_owned(),
        "/".to_owned(),
        "/restaurant".to_owned(),
        format!("/restaurants/{}", ctx.restaurant),
    ];
    let mut tasks = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        tasks.push(tokio::spawn(fuzz_events(
            base.to_owned(),
            ns.clone(),
            seed.wrapping_add(i as u64 + 1),
            ctx.clone(),
        )));
    }
    for (ns, task) in namespaces.iter().zip(tasks) {
        let mut answers: Vec<_> = task.await.unwrap().into_iter().collect();
        answers.sort();
        eprintln!("  {ns}: {answers:?}");
    }
    fuzz_raw(base, seed.wrapping_add(10), ctx).await;
    fuzz_polling(base, seed.wrapping_add(11)).await;
    fuzz_rest(base, seed.wrapping_add(12), ctx).await;
    let mut sockets = 0.0;
    let mut settled = false;
    for _ in 0..250 {
        sockets = sockets_connected(base).await;
        if sockets == 0.0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(
        settled,
        "seed {seed}: {sockets} sockets still connected after the round"
    );
    eprintln!("fuzz round with seed {seed}: {:?}", started.elapsed());
}
