// The plain-WebSocket Node.js peer of the benchmark: `ws` 8 (with bufferutil) on
// node:http, one process, the channel hub of seed 003 written the obvious way:
// `Map<channel, Set<ws>>` plus each connection's own `Set` of channels, JSON envelopes
// both ways. It speaks the subset of Switchboard's `/ws` envelope dialect
// (docs/PROTOCOL.md §8) that the plain scenarios use, with the same rules:
//   - same environment (BIND_ADDR, JWT_SECRET, RATE_LIMIT_PER_SEC, RATE_LIMIT_BURST);
//   - `GET /ws?token=<jwt>` (or `?token=Bearer%20<jwt>`): a good token is confirmed with
//     `auth_success {user_id}` and joins `user:<sub>`; a bad one opens the connection
//     unauthenticated with `auth_error`; `{type:"auth", payload:{token}}` later;
//   - client → server `{type, payload, id?}`: `auth`, `subscribe` / `unsubscribe`
//     `{channel}`, `ping`; replies `{type, payload, id?, timestamp}` echo the `id`;
//     errors `{type:"error", payload:{code, message}}` with Switchboard's codes;
//   - channels `type:id` (≤ 200 characters): `public:` anyone, `user:` the own id,
//     `tenant:` the token's tenant (admin any); at most 100 per connection;
//   - `POST /api/publish {channel, type, payload?}` (service or admin token): the
//     envelope is rendered once and sent to every subscriber; 202 `{channel, type}`;
//   - same JWT rules as server.mjs (HS256 pinned, exp required, 30 s leeway);
//   - one token bucket per connection for every incoming message;
//   - heartbeat: a ping every 54 s, a connection that answered nothing since the last
//     one is dropped (Switchboard: 54 s pings, 60 s idle timeout);
//   - messages over 65,536 bytes close the connection (1009); a client whose unsent
//     bytes pass 1 MiB is closed with 1013 (Switchboard: a queue of 256 messages).
// Not implemented (no scenario uses them): `chat_message`, `order:` channels, grants,
// the bare dialect.

import http from 'node:http';
import crypto from 'node:crypto';
import { WebSocketServer } from 'ws';

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
const RATE = Number(env.RATE_LIMIT_PER_SEC || 10);
const BURST = Number(env.RATE_LIMIT_BURST || 20);
const MAX_MESSAGE = 65_536;
const MAX_REST_BODY = Number(env.MAX_PAYLOAD_BYTES || 1_000_000);
const MAX_CHANNELS = 100;
const PING_MS = 54_000;
const SLOW_CONSUMER_BYTES = 1 << 20;
const LEEWAY_SECS = 30;

function log(msg, fields = {}) {
  process.stderr.write(JSON.stringify({ level: 'warn', msg, ...fields }) + '\n');
}

// ---------------------------------------------------------------------------------
// Identity: server.mjs's rules (contract §2)

const ROLES = new Set(['user', 'staff', 'manager', 'admin', 'service']);
const SECRET_KEY = crypto.createSecretKey(Buffer.from(SECRET));

/** The principal of a token, or null when it is malformed, forged or expired. */
function verify(raw) {
  try {
    const token = stripBearer(raw);
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
    if (header.alg !== 'HS256') return null;
    const expected = crypto.createHmac('sha256', SECRET_KEY).update(`${parts[0]}.${parts[1]}`).digest();
    const sig = Buffer.from(parts[2], 'base64url');
    if (sig.length !== expected.length || !crypto.timingSafeEqual(sig, expected)) return null;
    const c = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
    const now = Math.floor(Date.now() / 1000);
    if (typeof c.exp !== 'number' || c.exp + LEEWAY_SECS < now) return null;
    if (typeof c.nbf === 'number' && c.nbf - LEEWAY_SECS > now) return null;
    let userId;
    if (Number.isInteger(c.sub)) userId = c.sub;
    else if (typeof c.sub === 'string' && /^\s*-?\d+\s*$/.test(c.sub)) userId = Number(c.sub.trim());
    else return null;
    const roles = [...new Set([...(Array.isArray(c.roles) ? c.roles : []), ...(c.role ? [c.role] : [])])].filter(
      (r) => ROLES.has(r),
    );
    let tenant = c.tenant_id ?? c.tenantId;
    tenant = typeof tenant === 'number' ? String(tenant) : typeof tenant === 'string' && tenant.trim() ? tenant : null;
    return { userId, roles, tenant };
  } catch {
    return null;
  }
}

function stripBearer(raw) {
  const t = String(raw).trim();
  return t.slice(0, 7).toLowerCase() === 'bearer ' ? t.slice(7).trim() : t;
}

const isAdmin = (p) => p.roles.includes('admin');
const isServiceOrAdmin = (p) => p.roles.includes('service') || isAdmin(p);

// ---------------------------------------------------------------------------------
// The hub: channel → connections, and each connection's channels

/** @type {Map<string, Set<import('ws').WebSocket>>} */
const channels = new Map();

function subscribe(ws, channel) {
  let set = channels.get(channel);
  if (!set) {
    set = new Set();
    channels.set(channel, set);
  }
  set.add(ws);
  ws.channels.add(channel);
}

function unsubscribe(ws, channel) {
  const set = channels.get(channel);
  if (set) {
    set.delete(ws);
    if (set.size === 0) channels.delete(channel);
  }
  ws.channels.delete(channel);
}

function leaveAll(ws) {
  for (const channel of ws.channels) {
    const set = channels.get(channel);
    if (set) {
      set.delete(ws);
      if (set.size === 0) channels.delete(channel);
    }
  }
  ws.channels.clear();
}

/** Sends `text` to every subscriber of `channel`; returns how many took it. */
function deliver(channel, text) {
  const set = channels.get(channel);
  if (!set) return 0;
  let n = 0;
  for (const ws of set) {
    if (push(ws, text)) n++;
  }
  return n;
}

/** Queues `text` to one connection; a client that stopped reading is closed. */
function push(ws, text) {
  if (ws.readyState !== 1) return false;
  if (ws.bufferedAmount > SLOW_CONSUMER_BYTES) {
    ws.close(1013, 'slow consumer: send queue full');
    return false;
  }
  ws.send(text);
  return true;
}

// ---------------------------------------------------------------------------------
// Envelopes (PROTOCOL §8)

const render = (type, payload, id) =>
  JSON.stringify(
    id === undefined
      ? { type, payload, timestamp: new Date().toISOString() }
      : { type, payload, id, timestamp: new Date().toISOString() },
  );

const reply = (ws, type, payload, id) => push(ws, render(type, payload, id));
const error = (ws, code, message, id) => reply(ws, 'error', { code, message }, id);

/** `type:id`, a colon with text on both sides, at most 200 code points. */
function channelShape(channel) {
  if (typeof channel !== 'string') return false;
  const i = channel.indexOf(':');
  return i > 0 && i < channel.length - 1 && [...channel].length <= 200;
}

/** Null when `p` may subscribe to `channel`, else the error code. */
function refusal(p, channel) {
  const i = channel.indexOf(':');
  const kind = channel.slice(0, i);
  const id = channel.slice(i + 1);
  if (kind === 'public') return null;
  if (!p) return 'unauthorized';
  if (kind === 'user') return id === String(p.userId) ? null : 'forbidden';
  if (kind === 'tenant') return isAdmin(p) || id === p.tenant ? null : 'forbidden';
  return 'forbidden';
}

function authenticate(ws, token, id) {
  const p = typeof token === 'string' ? verify(token) : null;
  if (!p) {
    reply(ws, 'auth_error', { error: 'Invalid or expired token' }, id);
    return;
  }
  if (ws.principal && ws.principal.userId !== p.userId) {
    // Another user: leave every non-public channel (announced but the old user: one).
    const old = `user:${ws.principal.userId}`;
    for (const channel of [...ws.channels]) {
      if (channel.startsWith('public:')) continue;
      unsubscribe(ws, channel);
      if (channel !== old) reply(ws, 'unsubscribed', { channel });
    }
  }
  ws.principal = p;
  const own = `user:${p.userId}`;
  reply(ws, 'auth_success', { user_id: p.userId }, id);
  if (!ws.channels.has(own)) {
    if (ws.channels.size >= MAX_CHANNELS) {
      error(ws, 'too_many_channels', `at most ${MAX_CHANNELS} channels per connection`);
    } else {
      subscribe(ws, own);
    }
  }
}

function onMessage(ws, data, isBinary) {
  // One bucket per connection for every incoming message (binary and malformed ones too).
  const now = performance.now();
  ws.tokens = Math.min(BURST, ws.tokens + ((now - ws.refilled) / 1000) * RATE);
  ws.refilled = now;
  let msg;
  if (!isBinary) {
    try {
      msg = JSON.parse(data.toString());
    } catch {
      msg = undefined;
    }
  }
  const id = msg && typeof msg.id === 'string' ? msg.id : undefined;
  if (ws.tokens < 1) {
    error(ws, 'rate_limited', 'too many messages', id);
    return;
  }
  ws.tokens -= 1;
  if (
    !msg ||
    typeof msg !== 'object' ||
    Array.isArray(msg) ||
    typeof msg.type !== 'string' ||
    msg.type === '' ||
    (msg.payload !== undefined && (msg.payload === null || typeof msg.payload !== 'object' || Array.isArray(msg.payload))) ||
    (msg.id !== undefined && typeof msg.id !== 'string')
  ) {
    error(ws, 'invalid_message', 'expected {type, payload?, id?}', id);
    return;
  }
  const payload = msg.payload || {};
  switch (msg.type) {
    case 'auth':
      if (typeof payload.token !== 'string') return void error(ws, 'invalid_payload', 'token: expected a string', id);
      return authenticate(ws, payload.token, id);
    case 'subscribe': {
      const channel = payload.channel;
      if (!channelShape(channel)) return void error(ws, 'invalid_payload', 'channel: expected type:id', id);
      const code = refusal(ws.principal, channel);
      if (code) return void error(ws, code, 'cannot access this channel', id);
      if (!ws.channels.has(channel)) {
        if (ws.channels.size >= MAX_CHANNELS) {
          return void error(ws, 'too_many_channels', `at most ${MAX_CHANNELS} channels per connection`, id);
        }
        subscribe(ws, channel);
      }
      return void reply(ws, 'subscribed', { channel }, id);
    }
    case 'unsubscribe': {
      const channel = payload.channel;
      if (!channelShape(channel)) return void error(ws, 'invalid_payload', 'channel: expected type:id', id);
      unsubscribe(ws, channel);
      return void reply(ws, 'unsubscribed', { channel }, id);
    }
    case 'ping':
      return void reply(ws, 'pong', {}, id);
    default:
      return void error(ws, 'unknown_type', `unknown message type ${msg.type}`, id);
  }
}

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_MESSAGE });

wss.on('connection', (ws, token) => {
  ws.channels = new Set();
  ws.principal = null;
  ws.tokens = BURST;
  ws.refilled = performance.now();
  ws.alive = true;
  ws.on('pong', () => (ws.alive = true));
  ws.on('message', (data, isBinary) => {
    ws.alive = true;
    onMessage(ws, data, isBinary);
  });
  ws.on('close', () => leaveAll(ws));
  ws.on('error', () => {});
  if (token) authenticate(ws, token, undefined);
});

// One timer for every connection: ping, and drop whoever answered nothing since the last.
const heartbeat = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.alive) {
      ws.terminate();
      continue;
    }
    ws.alive = false;
    ws.ping();
  }
}, PING_MS);

// ---------------------------------------------------------------------------------
// HTTP: the publish route (PROTOCOL §8 "REST for /ws clients") and health

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const fail = (res, status, code, message) => send(res, status, { error: { code, message } });

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > MAX_REST_BODY) return { tooLarge: true };
    chunks.push(c);
  }
  try {
    return { body: JSON.parse(Buffer.concat(chunks).toString() || 'null') };
  } catch (e) {
    return { error: `Failed to parse the request body as JSON: ${e.message}` };
  }
}

async function publish(req, res) {
  const h = req.headers.authorization;
  const me = h && /^bearer /i.test(h) ? verify(h) : null;
  if (!me) return fail(res, 401, 'AUTH_INVALID', 'missing or invalid token');
  if (!isServiceOrAdmin(me)) return fail(res, 403, 'FORBIDDEN', 'only service or admin tokens may publish');
  const read = await readJson(req);
  if (read.tooLarge) return fail(res, 413, 'BAD_REQUEST', 'payload too large');
  if (read.error) return fail(res, 400, 'BAD_REQUEST', read.error);
  const body = read.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) return fail(res, 400, 'BAD_REQUEST', 'expected an object');
  if (!channelShape(body.channel)) return fail(res, 400, 'BAD_REQUEST', 'channel: expected type:id');
  const type = body.type;
  if (typeof type !== 'string' || !type.trim() || [...type].length > 64) {
    return fail(res, 400, 'BAD_REQUEST', 'type: must be 1 to 64 characters');
  }
  const payload = body.payload === undefined ? {} : body.payload;
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    return fail(res, 400, 'BAD_REQUEST', 'payload: expected an object');
  }
  deliver(body.channel, render(type, payload, undefined));
  send(res, 202, { channel: body.channel, type });
}

const httpServer = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'POST' && path === '/api/publish') {
    publish(req, res).catch((e) => {
      log('publish failed', { error: String(e && e.message) });
      if (!res.headersSent) fail(res, 500, 'INTERNAL', 'internal server error');
    });
    return;
  }
  if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
  fail(res, 404, 'NOT_FOUND', 'no such route');
});

httpServer.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const token = url.searchParams.get('token');
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, token));
});

// hyper keeps idle keep-alive connections open; so does this peer (Node closes them after 5 s).
httpServer.keepAliveTimeout = 120_000;
httpServer.headersTimeout = 125_000;
httpServer.on('connection', (s) => s.setNoDelay(true));
httpServer.listen(PORT, HOST, () => log('node ws peer listening', { addr: `${HOST}:${PORT}` }));

function shutdown() {
  clearInterval(heartbeat);
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  httpServer.close();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
