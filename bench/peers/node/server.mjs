// The Node.js peer of the benchmark: socket.io 4.8 + ws (with bufferutil and
// utf-8-validate), one process, serving the namespaces, events and REST routes the
// scenarios use, the way Switchboard serves them:
//   - same environment (BIND_ADDR, DATABASE_URL, JWT_SECRET, DATABASE_MAX_CONNECTIONS,
//     RATE_LIMIT_PER_SEC, RATE_LIMIT_BURST, MAX_PAYLOAD_BYTES);
//   - same JWT rules (HS256 pinned, exp required, 30 s leeway), token from auth.token,
//     the Authorization header or ?token=;
//   - same envelopes ({ ok, data } / { ok: false, error: { code, message } }, and the
//     restaurant dialect with `success`), same per-socket per-event token bucket;
//   - the same SQL statements as src/store/*.rs, as prepared statements (sqlx prepares
//     and caches every statement per connection; `name` does the same in node-postgres),
//     on a pool of the same size, synchronous_commit left at the server default;
//   - the same order of work in each handler (check, write, emit, then ack).
// Engine options as socketioxide's: no per-message deflate, 1 MB payloads, ping 25 s /
// timeout 20 s.
//
// Past 400 lines: the whole peer is one process started from one file, in sections that
// mirror Switchboard's modules (envelopes, identity, rate limit, decoding, store,
// Socket.IO, REST), so each reads next to the code it copies.

import http from 'node:http';
import crypto from 'node:crypto';
import { Server } from 'socket.io';
import pg from 'pg';

const env = process.env;
const [HOST, PORT] = (() => {
  const addr = env.BIND_ADDR || '0.0.0.0:3001';
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
})();
const SECRET = env.JWT_SECRET;
if (!SECRET) {
  console.error('JWT_SECRET is required');
  process.exit(2);
}
const POOL_SIZE = Number(env.DATABASE_MAX_CONNECTIONS || 20);
const RATE = Number(env.RATE_LIMIT_PER_SEC || 10);
const BURST = Number(env.RATE_LIMIT_BURST || 20);
const MAX_PAYLOAD = Number(env.MAX_PAYLOAD_BYTES || 1_000_000);
const LEEWAY_SECS = 30;

// bigint columns (ids, counts, seq) as numbers: every value here is far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
const pool = new pg.Pool({
  connectionString: env.DATABASE_URL,
  max: POOL_SIZE,
  // sqlx's defaults: 5 s to acquire (Switchboard sets it), idle connections kept 10 min.
  connectionTimeoutMillis: 5000,
  idleTimeoutMillis: 600_000,
});
pool.on('error', (e) => log('pool error', { error: e.message }));

function log(msg, fields = {}) {
  process.stderr.write(JSON.stringify({ level: 'warn', msg, ...fields }) + '\n');
}

// ---------------------------------------------------------------------------------
// Errors and envelopes (contract §3)

class AppError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}
const CODES = {
  unauthenticated: { chat: 'AUTH_INVALID', restaurant: 'AUTH_FAILED', http: 401 },
  forbidden: { chat: 'FORBIDDEN', restaurant: 'PERMISSION_DENIED', http: 403 },
  not_found: { chat: 'NOT_FOUND', restaurant: 'NOT_FOUND', http: 404 },
  bad_request: { chat: 'BAD_REQUEST', restaurant: 'INVALID_PAYLOAD', http: 400 },
  rate_limited: { chat: 'RATE_LIMITED', restaurant: 'RATE_LIMIT', http: 429 },
  invalid_restaurant: { chat: 'NOT_FOUND', restaurant: 'INVALID_RESTAURANT', http: 404 },
  internal: { chat: 'INTERNAL', restaurant: 'INTERNAL_ERROR', http: 500 },
};
const bad = (m) => new AppError('bad_request', m);
const notFound = (m) => new AppError('not_found', m);
const forbidden = (m) => new AppError('forbidden', m);

function classify(e) {
  if (e instanceof AppError) return e;
  log('internal error', { error: String(e && e.message) });
  return new AppError('internal', 'internal server error');
}

const DIALECTS = {
  chat: {
    success: (data) => (data == null ? { ok: true } : { ok: true, data }),
    failure: (e) => ({ ok: false, error: { code: CODES[e.kind].chat, message: e.message } }),
    body: (e) => ({ code: CODES[e.kind].chat, message: e.message }),
  },
  restaurant: {
    success: (data) => (data == null ? { success: true } : { success: true, data }),
    failure: (e) => ({ success: false, error: { code: CODES[e.kind].restaurant, message: e.message } }),
    body: (e) => ({ code: CODES[e.kind].restaurant, message: e.message }),
  },
};

// ---------------------------------------------------------------------------------
// Identity (contract §2)

const ROLES = new Set(['user', 'staff', 'manager', 'admin', 'service']);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SECRET_KEY = crypto.createSecretKey(Buffer.from(SECRET));

function verify(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new AppError('unauthenticated', 'invalid token');
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
  if (header.alg !== 'HS256') throw new AppError('unauthenticated', 'invalid token');
  const expected = crypto.createHmac('sha256', SECRET_KEY).update(`${parts[0]}.${parts[1]}`).digest();
  const sig = Buffer.from(parts[2], 'base64url');
  if (sig.length !== expected.length || !crypto.timingSafeEqual(sig, expected)) {
    throw new AppError('unauthenticated', 'invalid token');
  }
  const c = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  const now = Math.floor(Date.now() / 1000);
  if (typeof c.exp !== 'number' || c.exp + LEEWAY_SECS < now) {
    throw new AppError('unauthenticated', 'expired');
  }
  if (typeof c.nbf === 'number' && c.nbf - LEEWAY_SECS > now) {
    throw new AppError('unauthenticated', 'not yet valid');
  }
  let userId;
  if (Number.isInteger(c.sub)) userId = c.sub;
  else if (typeof c.sub === 'string' && /^\s*-?\d+\s*$/.test(c.sub)) userId = Number(c.sub.trim());
  else throw new AppError('unauthenticated', 'bad sub');
  const roles = [...new Set([...(Array.isArray(c.roles) ? c.roles : []), ...(c.role ? [c.role] : [])])]
    .filter((r) => ROLES.has(r))
    .sort();
  const restaurants = (Array.isArray(c.restaurants) ? c.restaurants : [])
    .filter((r) => typeof r === 'string' && UUID_RE.test(r))
    .map((r) => r.toLowerCase());
  return { userId, roles, restaurants };
}

const stripBearer = (raw) => {
  const t = String(raw).trim();
  return t.slice(0, 7).toLowerCase() === 'bearer ' ? t.slice(7).trim() : t;
};

function handshakeToken(socket) {
  const a = socket.handshake.auth;
  if (a && typeof a.token === 'string' && a.token.trim()) return stripBearer(a.token);
  const h = socket.handshake.headers.authorization;
  if (h && /^bearer /i.test(h)) return stripBearer(h);
  const q = socket.handshake.query.token;
  if (typeof q === 'string' && q.trim()) return q.trim();
  return null;
}

const isAdmin = (p) => p.roles.includes('admin');
const isServiceOrAdmin = (p) => p.roles.includes('service') || isAdmin(p);
const RANK = { user: 0, staff: 1, manager: 2, admin: 3 };
const rank = (p) => Math.max(0, ...p.roles.filter((r) => r !== 'service').map((r) => RANK[r]));

// ---------------------------------------------------------------------------------
// Rate limit (per socket, per event; as src/realtime/rate_limit.rs)

const MAX_BUCKETS = 64;
class RateLimiter {
  constructor() {
    this.buckets = new Map();
  }
  check(event) {
    const now = performance.now() / 1000;
    const key = this.buckets.has(event) || this.buckets.size < MAX_BUCKETS ? event : '\0overflow';
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: BURST, last: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(BURST, b.tokens + (now - b.last) * RATE);
    b.last = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    throw new AppError('rate_limited', 'too many events');
  }
}

// ---------------------------------------------------------------------------------
// Payload decoding (the same rules as src/domain)

const obj = (p) => (p == null ? {} : typeof p === 'object' && !Array.isArray(p) ? p : null);
function need(p) {
  const o = obj(p);
  if (!o) throw bad('invalid type: expected an object');
  return o;
}
function uuidField(o, name) {
  const v = o[name];
  if (v === undefined) throw bad(`missing field \`${name}\``);
  if (typeof v !== 'string' || !UUID_RE.test(v)) throw bad(`${name}: invalid UUID`);
  return v.toLowerCase();
}
const chars = (s) => [...s].length;
function trimmedString(o, name, min, max) {
  const v = o[name];
  if (v === undefined) throw bad(`missing field \`${name}\``);
  if (typeof v !== 'string') throw bad(`${name}: invalid type: expected a string`);
  const t = v.trim();
  const n = chars(t);
  if (n < min || n > max) throw bad(`${name}: must be ${min} to ${max} characters`);
  return t;
}

const decode = {
  conversationRef(p) {
    return { conversationId: uuidField(need(p), 'conversationId') };
  },
  sendMessage(p) {
    const o = need(p);
    const conversationId = uuidField(o, 'conversationId');
    const content = trimmedString(o, 'content', 1, 4000);
    const attachments = o.attachments ?? [];
    if (!Array.isArray(attachments) || attachments.some((a) => typeof a !== 'string')) {
      throw bad('attachments: invalid type: expected a list of strings');
    }
    if (attachments.length > 10) throw bad('attachments: at most 10 attachments');
    for (const url of attachments) {
      const ok = (url.startsWith('https://') || url.startsWith('http://')) && url.length > 8 && url.length <= 2048 && !/\s/.test(url);
      if (!ok) throw bad('attachments: each attachment must be an http(s) URL');
    }
    let clientId = o.clientId ?? null;
    if (clientId !== null) {
      if (typeof clientId !== 'string') throw bad('clientId: invalid type: expected a string');
      clientId = clientId.trim() || null;
      if (clientId && chars(clientId) > 128) throw bad('clientId: must be at most 128 characters');
    }
    return { conversationId, content, attachments, clientId };
  },
  ping(p) {
    const o = need(p);
    if (o.action != null && o.action !== 'ping') throw bad('action: must be "ping"');
    return o;
  },
};

// ---------------------------------------------------------------------------------
// Store: the statements of src/store/*.rs

const q = (name, text, values) => pool.query({ name, text, values });

// `clientId` idempotency moved from per sender to per (conversation, sender) in
// migration 0004; use the statement of the Switchboard build that migrated this schema.
const CLIENT_ID_PER_CONVERSATION = await pool
  .query("select to_regclass('public.messages_conversation_sender_client_id_key') is not null as yes")
  .then((r) => r.rows[0].yes);
const CLIENT_ID_CONFLICT = CLIENT_ID_PER_CONVERSATION
  ? 'on conflict (conversation_id, sender_id, client_id) where client_id is not null do nothing'
  : 'on conflict (sender_id, client_id) where client_id is not null do nothing';

function uuidv7() {
  const b = crypto.randomBytes(16);
  const ms = BigInt(Date.now());
  b.writeUIntBE(Number(ms >> 16n), 0, 4);
  b.writeUInt16BE(Number(ms & 0xffffn), 4);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const iso = (d) => (d == null ? null : new Date(d).toISOString());

function messageJson(r) {
  const m = {
    _id: r.id,
    conversation_id: r.conversation_id,
    sender_id: r.sender_id,
    content: r.content,
    attachments: r.attachments,
    seen_by: r.seen_by,
  };
  if (r.client_id != null) m.client_id = r.client_id;
  m.created_at = iso(r.created_at);
  m.updated_at = iso(r.updated_at);
  return m;
}

const MESSAGE_SELECT = `select m.id, m.seq, m.conversation_id, m.sender_id, m.content, m.attachments, m.client_id,
                m.created_at, m.updated_at,
                array(select cm.user_id from conversation_members cm
                      where cm.conversation_id = m.conversation_id
                        and cm.last_read_seq >= m.seq and cm.user_id <> m.sender_id
                      order by cm.user_id) as seen_by
         from messages m `;

const store = {
  async findAccess(conversationId, userId) {
    const r = await q(
      'find_access',
      `select c.type, m.role from conversations c
             left join conversation_members m on m.conversation_id = c.id and m.user_id = $2
             where c.id = $1`,
      [conversationId, userId],
    );
    return r.rows[0] ? { kind: r.rows[0].type, role: r.rows[0].role } : null;
  },
  async insertConversation(kind, name, members) {
    const id = uuidv7();
    const owner = members[0];
    const client = await pool.connect();
    try {
      await client.query('begin');
      const r = await client.query({
        name: 'insert_conversation',
        text: 'insert into conversations (id, type, name, owner_id) values ($1, $2, $3, $4) returning created_at',
        values: [id, kind, name, owner],
      });
      await client.query({
        name: 'insert_conversation_members',
        text: `insert into conversation_members (conversation_id, user_id, role)
             select $1, u, case when u = $3 then 'owner' else 'member' end from unnest($2::bigint[]) as u`,
        values: [id, members, owner],
      });
      await client.query('commit');
      return { _id: id, type: kind, name, participants: members, created_at: iso(r.rows[0].created_at) };
    } catch (e) {
      await client.query('rollback').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  },
  // Switchboard's send, one transaction per send (what Switchboard does when a send
  // arrives alone; it writes concurrent sends together, which is what S3 measures):
  // lock the conversation's member rows in user order (which lists the members and checks
  // the sender's membership), insert with the cursor and per-member unread counters
  // (migration 0006), commit.
  async insertMessage(conversationId, senderId, content, attachments, clientId) {
    const client = await pool.connect();
    let r;
    let members;
    try {
      await client.query('begin');
      // The rows locked are the members: membership is checked under the lock.
      const locked = await client.query({
        name: 'lock_members',
        text: 'select user_id from conversation_members where conversation_id = $1 order by user_id for update',
        values: [conversationId],
      });
      members = locked.rows.map((x) => x.user_id);
      if (!members.includes(senderId)) {
        await client.query('rollback');
        return { message: null, created: false, members: null };
      }
      r = await client.query({
        name: 'insert_message',
        text: `with ins as (
                insert into messages (id, conversation_id, sender_id, content, attachments, client_id)
                values ($1, $2, $3, $4, $5, $6)
                ${CLIENT_ID_CONFLICT}
                returning *
             ), counters as (
                update conversation_members set
                    last_read_seq = case when user_id = $3 then greatest(last_read_seq, (select seq from ins))
                                         else last_read_seq end,
                    unread_count = case when user_id = $3 then 0 else unread_count + 1 end
                where conversation_id = $2 and exists (select 1 from ins)
             )
             select id, seq, conversation_id, sender_id, content, attachments, client_id, created_at, updated_at,
                    array[]::bigint[] as seen_by
             from ins`,
        values: [uuidv7(), conversationId, senderId, content, attachments, clientId],
      });
      await client.query('commit');
    } catch (e) {
      await client.query('rollback').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
    if (r.rows[0]) return { message: messageJson(r.rows[0]), created: true, members };
    const first = CLIENT_ID_PER_CONVERSATION
      ? await q(
          'find_by_client_id',
          MESSAGE_SELECT + 'where m.conversation_id = $1 and m.sender_id = $2 and m.client_id = $3',
          [conversationId, senderId, clientId],
        )
      : await q('find_by_client_id', MESSAGE_SELECT + 'where m.sender_id = $1 and m.client_id = $2', [
          senderId,
          clientId,
        ]);
    return { message: messageJson(first.rows[0]), created: false, members };
  },
  async unreadCounts(userIds) {
    // Switchboard's per-member counters (migration 0006).
    const r = await q(
      'unread_counts',
      `select user_id, conversation_id, unread_count::bigint as count from conversation_members
             where user_id = any($1) and unread_count > 0`,
      [userIds],
    );
    const out = new Map(userIds.map((u) => [u, { total: 0, byConversation: {} }]));
    for (const row of r.rows) {
      let e = out.get(row.user_id);
      if (!e) out.set(row.user_id, (e = { total: 0, byConversation: {} }));
      e.total += row.count;
      e.byConversation[row.conversation_id] = row.count;
    }
    for (const e of out.values()) {
      // BTreeMap order on the Rust side: sorted keys.
      e.byConversation = Object.fromEntries(Object.entries(e.byConversation).sort(([a], [b]) => (a < b ? -1 : 1)));
    }
    return out;
  },
  async insertNotification(userId, type, title, content, relatedId) {
    const r = await q(
      'insert_notification',
      `insert into notifications (id, user_id, type, title, content, related_id)
             values ($1, $2, $3, $4, $5, $6)
             returning id, user_id, type, title, content, related_id, is_read, created_at`,
      [uuidv7(), userId, type, title, content, relatedId],
    );
    const n = r.rows[0];
    return {
      _id: n.id,
      user_id: n.user_id,
      type: n.type,
      title: n.title,
      content: n.content,
      is_read: n.is_read,
      related_id: n.related_id,
      created_at: iso(n.created_at),
    };
  },
  async notificationCounts(userIds) {
    const r = await q(
      'notification_counts',
      `select u.id,
                    (select count(*) from notifications n where n.user_id = u.id and not n.is_read)
                  + (select count(*) from notifications n
                     where n.user_id is null
                       and not exists (select 1 from notification_receipts r
                                       where r.notification_id = n.id and r.user_id = u.id
                                         and (r.read_at is not null or r.deleted_at is not null)))
             from unnest($1::bigint[]) as u(id)`,
      [userIds],
    );
    return new Map(r.rows.map((row) => [row.id, row['?column?']]));
  },
};

// ---------------------------------------------------------------------------------
// Socket.IO

const io = new Server({
  path: '/socket.io/',
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: MAX_PAYLOAD,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  cors: { origin: '*' },
});

const chat = io.of('/chat');
const notifications = io.of('/notifications');

/** Registers `handler` for `event`: rate limit, decode, handle, reply exactly once. */
function on(socket, dialect, event, decodeFn, handler) {
  socket.on(event, async (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    let result;
    try {
      socket.data.limiter.check(event);
      const payload = decodeFn(args[0]);
      result = DIALECTS[dialect].success((await handler(payload)) ?? null);
    } catch (e) {
      const err = classify(e);
      if (ack) ack(DIALECTS[dialect].failure(err));
      else socket.emit('error', DIALECTS[dialect].body(err));
      return;
    }
    if (ack) ack(result);
  });
}

/** Events the namespace does not know: BAD_REQUEST "unknown event" (rate limited too). */
function onUnknown(socket, dialect, known) {
  socket.onAny((event, ...args) => {
    if (known.has(event)) return;
    const ack = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : null;
    let err;
    try {
      socket.data.limiter.check(event);
      err = bad('unknown event');
    } catch (e) {
      err = classify(e);
    }
    if (ack) ack(DIALECTS[dialect].failure(err));
    else socket.emit('error', DIALECTS[dialect].body(err));
  });
}

function authMiddleware(code) {
  return (socket, next) => {
    try {
      const token = handshakeToken(socket);
      if (!token) throw new AppError('unauthenticated', 'missing token');
      socket.data.principal = verify(token);
      socket.data.limiter = new RateLimiter();
      next();
    } catch {
      next(new Error(code));
    }
  };
}

async function requireMember(conversationId, userId) {
  const access = await store.findAccess(conversationId, userId);
  if (!access) throw notFound('conversation not found');
  if (!access.role) throw forbidden('not a member of this conversation');
  return access;
}

async function pushUnreadCounts(userIds) {
  if (userIds.length === 0) return;
  try {
    const counts = await store.unreadCounts(userIds);
    for (const [user, count] of counts) chat.to(`user:${user}`).emit('unread:count', count);
  } catch (e) {
    classify(e);
  }
}

chat.use(authMiddleware('AUTH_INVALID'));
chat.on('connection', (socket) => {
  const me = socket.data.principal;
  socket.join(`user:${me.userId}`);
  on(socket, 'chat', 'conversation:join', decode.conversationRef, async (p) => {
    await requireMember(p.conversationId, me.userId);
    socket.join(`conversation:${p.conversationId}`);
  });
  on(socket, 'chat', 'conversation:leave', decode.conversationRef, async (p) => {
    socket.leave(`conversation:${p.conversationId}`);
  });
  on(socket, 'chat', 'message:send', decode.sendMessage, async (p) => {
    const { message, created, members } = await store.insertMessage(
      p.conversationId,
      me.userId,
      p.content,
      p.attachments,
      p.clientId,
    );
    if (!members) {
      // Which refusal: no such conversation, or not one of its members.
      await requireMember(p.conversationId, me.userId);
      throw forbidden('not a member of this conversation');
    }
    if (created) {
      socket.to(`conversation:${message.conversation_id}`).emit('message:created', message);
      await pushUnreadCounts(members.filter((u) => u !== me.userId));
    }
    return message;
  });
  onUnknown(socket, 'chat', new Set(['conversation:join', 'conversation:leave', 'message:send']));
  store
    .unreadCounts([me.userId])
    .then((counts) => socket.emit('unread:count', counts.get(me.userId) ?? { total: 0, byConversation: {} }))
    .catch(classify);
});

async function pushNotificationCounts(userIds) {
  if (userIds.length === 0) return;
  try {
    const counts = await store.notificationCounts(userIds);
    for (const [user, count] of counts) notifications.to(`user:${user}`).emit('notification:count', { count });
  } catch (e) {
    classify(e);
  }
}

notifications.use(authMiddleware('AUTH_INVALID'));
notifications.on('connection', (socket) => {
  const me = socket.data.principal;
  socket.join(`user:${me.userId}`);
  on(socket, 'chat', 'notification:ping', decode.ping, async () => {
    const timestamp = Date.now();
    const payload = { timestamp };
    socket.emit('pong', payload);
    return payload;
  });
  onUnknown(socket, 'chat', new Set(['notification:ping']));
  store
    .notificationCounts([me.userId])
    .then((counts) => socket.emit('notification:count', { count: counts.get(me.userId) ?? 0 }))
    .catch(classify);
});

// ---------------------------------------------------------------------------------
// REST (contract §8): the routes the scenarios call

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > MAX_PAYLOAD) throw new AppError('payload_too_large', 'payload too large');
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString() || 'null');
  } catch (e) {
    throw bad(`Failed to parse the request body as JSON: ${e.message}`);
  }
}

function send(res, status, body) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function authenticate(req) {
  const h = req.headers.authorization;
  if (!h || !/^bearer /i.test(h)) throw new AppError('unauthenticated', 'missing token');
  return verify(stripBearer(h));
}

const NOTIFICATION_TYPES = new Set(['message', 'group_invite', 'system']);

const routes = [
  [
    'POST',
    /^\/api\/conversations$/,
    async (req) => {
      const me = authenticate(req);
      const body = need(await readJson(req));
      if (body.type !== 'private' && body.type !== 'group') throw bad('type: unknown variant');
      if (!Array.isArray(body.participants) || body.participants.some((u) => !Number.isInteger(u))) {
        throw bad('participants: invalid type');
      }
      const name = typeof body.name === 'string' ? body.name.trim() || null : null;
      const members = [me.userId];
      for (const u of body.participants) if (!members.includes(u)) members.push(u);
      if (body.type === 'private' && members.length !== 2) {
        throw bad('participants: a private conversation has exactly one other participant');
      }
      const conversation = await store.insertConversation(body.type, name, members);
      chat.to(members.map((u) => `user:${u}`)).emit('conversation:created', conversation);
      return [201, conversation];
    },
  ],
  [
    'POST',
    /^\/api\/notifications\/broadcast$/,
    async (req) => {
      const me = authenticate(req);
      if (!isServiceOrAdmin(me)) throw forbidden('only service or admin tokens may create notifications');
      const body = need(await readJson(req));
      if (!NOTIFICATION_TYPES.has(body.type)) throw bad('type: unknown variant');
      const title = trimmedString(body, 'title', 1, 200);
      const content = trimmedString(body, 'content', 1, 4000);
      const created = await store.insertNotification(null, body.type, title, content, null);
      notifications.emit('notification:created', created);
      chat.emit('notification:created', created);
      const users = [...new Set([...notifications.sockets.values()].map((s) => s.data.principal.userId))].sort(
        (a, b) => a - b,
      );
      await pushNotificationCounts(users);
      return [201, created];
    },
  ],
  ['GET', /^\/healthz$/, async () => [200, { status: 'ok' }]],
  [
    'GET',
    /^\/readyz$/,
    async () => {
      try {
        await pool.query({ name: 'ping', text: 'select 1' });
        return [200, { status: 'ready', database: 'ok' }];
      } catch {
        return [503, { status: 'unavailable', database: 'unreachable' }];
      }
    },
  ],
];

// Restaurants (contract §6, §8): registered by ./restaurants.mjs when the schema has them.
const restaurantRoutes = await import('./restaurants.mjs').then((m) =>
  m.register({ io, pool, q, verify, handshakeToken, authenticate, readJson, on, onUnknown, RateLimiter, AppError, bad, notFound, forbidden, need, uuidField, uuidv7, iso, rank, isAdmin, isServiceOrAdmin, log }),
);
routes.push(...restaurantRoutes);

const httpServer = http.createServer(async (req, res) => {
  const path = req.url.split('?')[0];
  const route = routes.find(([m, re]) => m === req.method && re.test(path));
  if (!route) {
    send(res, 404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
    return;
  }
  try {
    const [status, body] = await route[2](req, path.match(route[1]));
    send(res, status, body);
  } catch (e) {
    if (e instanceof AppError && e.kind === 'payload_too_large') {
      send(res, 413, { error: { code: 'BAD_REQUEST', message: e.message } });
      return;
    }
    const err = classify(e);
    send(res, CODES[err.kind].http, { error: { code: CODES[err.kind].chat, message: err.message } });
  }
});
// hyper keeps idle keep-alive connections open; so does this peer (Node closes them after 5 s).
httpServer.keepAliveTimeout = 120_000;
httpServer.headersTimeout = 125_000;
httpServer.on('connection', (s) => s.setNoDelay(true));
io.attach(httpServer);

httpServer.listen(PORT, HOST, () => log('node peer listening', { addr: `${HOST}:${PORT}` }));

function shutdown() {
  io.close();
  httpServer.close();
  pool.end().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
