// Test harness: a real Switchboard process per server (release binary, fresh database),
// HS256 tokens, and promise helpers around the official socket.io-client.
//
// Past 400 lines: the one harness every test file imports, in sections (tokens, server
// processes, logs of failed tests, socket.io-client, plain WebSockets, REST).
//
// Environment:
//   DATABASE_URL     PostgreSQL URL of a role with CREATEDB (required)
//   SWITCHBOARD_BIN  server binary (default ../../target/release/switchboard)
//   SB_RUST_LOG      RUST_LOG given to the server (default "info,switchboard=debug")
//   SB_SHOW_LOGS=1   print the server's log after every test, not only failed ones

import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { test as nodeTest } from 'node:test';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

export const BIN = process.env.SWITCHBOARD_BIN
  ? path.resolve(process.env.SWITCHBOARD_BIN)
  : path.resolve(here, '../../target/release/switchboard');

export const JWT_SECRET = 'js-suite-secret-' + randomBytes(8).toString('hex');
export const JWT_ISSUER = 'switchboard-js-tests';
export const JWT_AUDIENCE = 'switchboard';

/** RFC 3339 UTC with milliseconds, as the contract (§3) requires. */
export const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The three ways a web app reaches the server. */
export const TRANSPORTS = [
  { name: 'websocket', opts: { transports: ['websocket'] } },
  { name: 'polling', opts: { transports: ['polling'], upgrade: false } },
  // socket.io-client's default: long-polling first, then upgrade to websocket.
  { name: 'polling+upgrade', opts: {} },
];

// ---------------------------------------------------------------------------------
// Tokens

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Signs `claims` as a compact JWS. `alg: 'none'` makes an unsigned token. */
export function signJwt(claims, { secret = JWT_SECRET, alg = 'HS256' } = {}) {
  const head = b64url({ alg, typ: 'JWT' });
  const body = b64url(claims);
  if (alg === 'none') return `${head}.${body}.`;
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** A valid HS256 token for `userId` (iss/aud as the suite's servers expect). */
export function token(userId, roles = ['user'], extra = {}) {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({
    sub: userId,
    roles,
    iss: JWT_ISSUER,
    aud: JWT_AUDIENCE,
    iat: now,
    exp: now + 3600,
    ...extra,
  });
}

let nextUser = 1000 + Math.floor(Math.random() * 1000) * 1000;
/** Fresh user ids, so tests sharing a server never share users. */
export function users(n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(nextUser++);
  return out;
}

// ---------------------------------------------------------------------------------
// Server processes

const CONFIG_VARS = [
  'BIND_ADDR', 'DATABASE_URL', 'DATA_DIR', 'MIGRATE', 'DATABASE_MAX_CONNECTIONS',
  'JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_ALGORITHM', 'JWT_ISSUER', 'JWT_AUDIENCE',
  'JWT_LEEWAY_SECS', 'ALLOWED_ORIGINS', 'MAX_PAYLOAD_BYTES', 'RATE_LIMIT_PER_SEC',
  'RATE_LIMIT_BURST', 'REST_RATE_LIMIT_PER_SEC', 'REST_RATE_LIMIT_BURST', 'ORDER_BATCH_MS', 'SHUTDOWN_GRACE_SECS', 'ADAPTER', 'REDIS_URL',
  'LOG_FORMAT', 'RUST_LOG', 'HTTP_HEADER_TIMEOUT_SECS', 'HTTP_IDLE_TIMEOUT_SECS',
  'MAX_CONNECTIONS', 'WS_MAX_MESSAGE_BYTES', 'WS_SEND_QUEUE', 'WS_PING_INTERVAL_SECS',
  'WS_IDLE_TIMEOUT_SECS', 'WS_MAX_CHANNELS', 'SOCKETIO_PATH', 'PING_INTERVAL_MS',
  'PING_TIMEOUT_MS', 'TRANSPORTS', 'SOCKETIO_CLIENT_DIR', 'DASHBOARD_REQUIRE_TOKEN',
  'ALLOW_EIO3', 'PARSER', 'ACCESS_LOG', 'NOTIFY_SOCKET', 'ADMIN_UI', 'ADMIN_UI_USERNAME',
  'ADMIN_UI_PASSWORD_HASH', 'ADMIN_UI_DIR',
];

const LOG_CAP = 4 * 1024 * 1024;
const servers = new Set(); // running
const allServers = new Set(); // for their logs

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

function adminUrl() {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set (a PostgreSQL role with CREATEDB)');
  return url;
}

async function psql(sql) {
  await execFileP('psql', [adminUrl(), '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], {
    timeout: 30_000,
  });
}

/** Runs `sql` on `server`'s own database (to make it fail the way a real fault would). */
export async function sqlOn(server, sql) {
  await execFileP('psql', [databaseUrl(server.dbName), '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], {
    timeout: 30_000,
  });
}

function databaseUrl(name) {
  const url = new URL(adminUrl());
  url.pathname = '/' + name;
  return url.toString();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a server on a fresh database. `env` overrides the suite's defaults.
 * Returns `{ url, port, env, logs(), exited, terminate(), stop() }`.
 */
export async function startServer(env = {}) {
  // The port is picked free, then released for the server to bind: another process may
  // take it in between, so a bind failure is retried on a new port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(env);
    } catch (err) {
      if (attempt >= 3 || !/address already in use|AddrInUse/i.test(err.message)) throw err;
    }
  }
}

async function startServerOnce(env) {
  if (!existsSync(BIN)) {
    throw new Error(`no server binary at ${BIN}: run \`cargo build --release --bin switchboard\` or set SWITCHBOARD_BIN`);
  }
  const dbName = 'sb_js_' + randomBytes(6).toString('hex');
  await psql(`create database ${dbName}`);
  // A given BIND_ADDR (a server restarted in place) keeps its port.
  const port = env.BIND_ADDR ? Number(env.BIND_ADDR.split(':').pop()) : await freePort();
  const base = { ...process.env };
  for (const k of CONFIG_VARS) delete base[k];
  const serverEnv = {
    ...base,
    BIND_ADDR: `127.0.0.1:${port}`,
    DATABASE_URL: databaseUrl(dbName),
    JWT_SECRET,
    JWT_ISSUER,
    JWT_AUDIENCE,
    LOG_FORMAT: 'pretty',
    RUST_LOG: process.env.SB_RUST_LOG || 'info,switchboard=debug',
    NO_COLOR: '1',
    ...env,
  };
  // A scratch working directory: the server reads `.env` from its cwd.
  const child = spawn(BIN, [], {
    env: serverEnv,
    cwd: os.tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  let dropped = 0;
  const append = (chunk) => {
    log += chunk.toString();
    if (log.length > LOG_CAP) {
      dropped += log.length - LOG_CAP / 2;
      log = log.slice(log.length - LOG_CAP / 2);
    }
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
    child.on('error', (err) => {
      append(`spawn error: ${err.message}\n`);
      resolve({ code: null, signal: null, error: err, at: Date.now() });
    });
  });
  let exitInfo = null;
  let termSentAt = null;
  exited.then((info) => { exitInfo = info; });

  const url = `http://127.0.0.1:${port}`;
  let dropDone = false;
  const dropDb = async () => {
    if (dropDone) return;
    dropDone = true;
    await psql(`drop database if exists ${dbName} with (force)`).catch((e) => {
      process.stderr.write(`harness: could not drop ${dbName}: ${e.message}\n`);
    });
  };

  const server = {
    url,
    port,
    env: serverEnv,
    dbName,
    child,
    exited,
    get running() { return exitInfo === null; },
    logs: () => (dropped ? `[... ${dropped} bytes dropped ...]\n` : '') + log,
    logLength: () => dropped + log.length,
    logSince: (mark) => log.slice(Math.max(0, mark - dropped)),
    /** Sends SIGTERM (once) and returns when it was sent. */
    terminate() {
      if (termSentAt === null && exitInfo === null) {
        termSentAt = Date.now();
        child.kill('SIGTERM');
      }
      return termSentAt;
    },
    /** SIGTERM, wait for the exit (at most `timeoutMs` after the signal), drop the database. */
    async stop({ timeoutMs = 10_000 } = {}) {
      servers.delete(server);
      const sentAt = server.terminate() ?? Date.now();
      const left = Math.max(0, sentAt + timeoutMs - Date.now());
      const result = await Promise.race([exited, delay(left, null, { ref: false })]);
      if (result === null) {
        child.kill('SIGKILL');
        await exited;
        await dropDb();
        throw new Error(`server did not exit within ${timeoutMs} ms of SIGTERM\n${server.logs()}`);
      }
      await dropDb();
      return { code: result.code, signal: result.signal, ms: result.at - sentAt };
    },
  };
  servers.add(server);
  allServers.add(server);

  // Ready when /readyz answers 200 (database reachable, migrations applied).
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitInfo !== null) {
      servers.delete(server);
      await dropDb();
      throw new Error(`server exited during start (${JSON.stringify(exitInfo)}):\n${server.logs()}`);
    }
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      servers.delete(server);
      await dropDb();
      throw new Error(`server not ready within 60 s:\n${server.logs()}`);
    }
    await sleep(50);
  }
  return server;
}

/** Stops `servers` (the ones that started), asserting that each exits with status 0. */
export async function assertStops(...list) {
  for (const s of list) {
    const stopped = await s?.stop();
    assert.equal(stopped?.code, 0, `server exit ${JSON.stringify(stopped)}`);
  }
}

// A crashed or interrupted test process must not leave servers behind (their
// databases are then left too: `sb_js_*`, safe to drop when no suite is running).
function killServers() {
  for (const s of servers) {
    try { s.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killServers);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killServers();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

// ---------------------------------------------------------------------------------
// Tests that print the server's log when they fail

/**
 * `node:test`'s `test` whose failures append the log the running servers wrote during
 * the test (all of it with SB_SHOW_LOGS=1, on success too).
 */
export function test(name, opts, fn) {
  if (typeof opts === 'function') [opts, fn] = [{}, opts];
  return nodeTest(name, opts, async (t) => {
    const marks = new Map([...allServers].map((s) => [s, s.logLength()]));
    const dump = (label) => {
      for (const s of allServers) {
        const text = s.logSince(marks.get(s) ?? 0);
        if (text.trim()) {
          process.stderr.write(
            `\n----- server ${s.url} log during "${name}" (${label}) -----\n${text}` +
              `----- end of server log -----\n`,
          );
        }
      }
    };
    try {
      await fn(t);
    } catch (err) {
      if (!opts.todo) dump('failed');
      throw err;
    } finally {
      closeSockets();
    }
    if (process.env.SB_SHOW_LOGS === '1') dump('passed');
  });
}

// ---------------------------------------------------------------------------------
// socket.io-client helpers

const sockets = new Set();

/** Disconnects every socket made through this harness. */
export function closeSockets() {
  for (const s of sockets) s.disconnect();
  sockets.clear();
}

/**
 * Every incoming event is recorded from the start, so an event that arrives together
 * with CONNECT (e.g. `unread:count`) is not missed by a listener attached afterwards.
 */
function attachInbox(socket) {
  socket.inbox = [];
  socket.waiters = new Set();
  socket.onAny((event, ...args) => {
    const entry = { event, args, at: Date.now() };
    for (const w of socket.waiters) {
      if (w.event === event) {
        socket.waiters.delete(w);
        w.resolve(args[0]);
        return;
      }
    }
    socket.inbox.push(entry);
  });
}

/** A socket (not yet connected) with the suite's defaults and an inbox. */
export function makeSocket(url, ns, opts = {}) {
  const { token: tok, ...rest } = opts;
  const options = { forceNew: true, reconnection: false, timeout: 10_000, ...rest };
  if (tok !== undefined && options.auth === undefined) options.auth = { token: tok };
  const socket = io(url + ns, options);
  sockets.add(socket);
  attachInbox(socket);
  socket.on('disconnect', (reason, details) => {
    socket.disconnectReason = reason;
    socket.disconnectDetails = details;
    sockets.delete(socket);
  });
  socket.on('connect_error', () => sockets.delete(socket)); // final: no reconnection
  // For the default transports: learn when the engine moves to websocket, or fails to.
  const engine = socket.io.engine;
  socket.upgraded = new Promise((resolve) => engine.once('upgrade', () => resolve(engine.transport.name)));
  socket.upgradeFailed = new Promise((resolve) => engine.once('upgradeError', resolve));
  return socket;
}

/**
 * Connects and resolves with the socket, or rejects with the `connect_error` error
 * (whose `message` is the server's code). With the default transports it also waits
 * for the upgrade and checks that the engine really runs on websocket afterwards.
 */
export function connect(url, ns, opts = {}) {
  const { timeoutMs = 10_000, expectUpgrade, ...rest } = opts;
  const socket = makeSocket(url, ns, rest);
  const wantUpgrade = expectUpgrade ?? (rest.transports === undefined && rest.upgrade !== false);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.disconnect();
      reject(new Error(`connect to ${ns} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      socket.disconnect();
      reject(err);
    });
    socket.once('connect', async () => {
      if (!wantUpgrade) {
        clearTimeout(timer);
        resolve(socket);
        return;
      }
      const name = await socket.upgraded;
      clearTimeout(timer);
      if (name !== 'websocket' || socket.io.engine.transport.name !== 'websocket') {
        reject(new Error(`expected an upgrade to websocket, transport is ${socket.io.engine.transport.name}`));
        return;
      }
      resolve(socket);
    });
  });
}

/** Resolves 'connected' (and disconnects), or with the `connect_error` message (the code). */
export function connectOutcome(url, ns, opts = {}) {
  return connect(url, ns, opts).then(
    (s) => { s.disconnect(); return 'connected'; },
    (err) => err.message,
  );
}

/** Connects to `/chat` as `userId` with the transport setup `mode`. */
export function chat(server, userId, mode, extra = {}) {
  return connect(server.url, '/chat', { ...mode.opts, token: token(userId), ...extra });
}

/** Emits with an ack and resolves with the ack's argument (rejects on timeout). */
export function emitAck(socket, event, payload, timeoutMs = 5000) {
  return socket.timeout(timeoutMs).emitWithAck(event, payload);
}

/** The next `event` on `socket` (its first argument), recorded or yet to come. */
export function next(socket, event, timeoutMs = 5000) {
  const i = socket.inbox.findIndex((e) => e.event === event);
  if (i >= 0) return Promise.resolve(socket.inbox.splice(i, 1)[0].args[0]);
  return new Promise((resolve, reject) => {
    const waiter = { event, resolve: (v) => { clearTimeout(timer); resolve(v); } };
    const timer = setTimeout(() => {
      socket.waiters.delete(waiter);
      reject(new Error(`no "${event}" within ${timeoutMs} ms on socket ${socket.id ?? '(not connected)'}`));
    }, timeoutMs);
    socket.waiters.add(waiter);
  });
}

/** Asserts that no `event` is recorded or arrives within `ms`. */
export async function none(socket, event, ms = 300) {
  await sleep(ms);
  const got = socket.inbox.filter((e) => e.event === event);
  if (got.length) {
    throw new Error(`unexpected "${event}": ${JSON.stringify(got.map((e) => e.args[0]))}`);
  }
}

/** Forgets recorded `event`s (or every recorded event). */
export function drain(socket, event) {
  socket.inbox = event === undefined ? [] : socket.inbox.filter((e) => e.event !== event);
}

/** Resolves with the disconnect reason (at once if already disconnected). */
export function disconnected(socket, timeoutMs = 10_000) {
  if (socket.disconnectReason !== undefined) return Promise.resolve(socket.disconnectReason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no disconnect within ${timeoutMs} ms`)), timeoutMs);
    socket.once('disconnect', (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

/** Asserts an ok ack envelope (`what` names the call in the failure); its `data`. */
export function assertOk(ack, what = '') {
  assert.equal(ack?.ok, true, `${what} expected ok, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error, undefined);
  return ack.data;
}

/** Asserts an error ack envelope with `code` whose message names `field`, when given. */
export function assertErr(ack, code, field) {
  assert.equal(ack?.ok, false, `expected ${code}, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error?.code, code, JSON.stringify(ack));
  assert.equal(typeof ack.error.message, 'string');
  assert.deepEqual(Object.keys(ack).sort(), ['error', 'ok']);
  if (field !== undefined) {
    assert.ok(ack.error.message.includes(field), `message should name "${field}": ${JSON.stringify(ack)}`);
  }
}

// ---------------------------------------------------------------------------------
// Plain WebSockets (the `ws` package): /ws, the dashboard, the entity gateway

const webSockets = new Set();

/** Whether message `m` is what `next(type)` waits for: any (undefined), that `type`, or a predicate. */
function matches(m, type) {
  if (type === undefined) return true;
  return typeof type === 'function' ? type(m) : m.type === type;
}

/**
 * Opens a WebSocket to `url` (`options` for the `ws` package). Resolves, once it is open
 * and `onOpen(client)` resolved, with a client that records every message (JSON text,
 * each given to `check`), or rejects with the status and JSON body of a refused upgrade.
 */
export function openWs(url, options = {}, { check = () => {}, onOpen = async () => {} } = {}) {
  const ws = new WebSocket(url, options);
  webSockets.add(ws);
  const client = {
    ws,
    inbox: [],
    waiters: [],
    closed: new Promise((resolve) => ws.once('close', (code, reason) => {
      webSockets.delete(ws);
      resolve({ code, reason: reason.toString() });
    })),
    send(message) {
      ws.send(typeof message === 'string' ? message : JSON.stringify(message));
    },
    /** The next message (of `type`, when given), recorded or yet to come. */
    next(type, timeoutMs = 5000) {
      const i = client.inbox.findIndex((m) => matches(m, type));
      if (i >= 0) return Promise.resolve(client.inbox.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const waiter = { type, resolve };
        const timer = setTimeout(() => {
          client.waiters.splice(client.waiters.indexOf(waiter), 1);
          reject(new Error(`no ${type ?? 'message'} within ${timeoutMs} ms; inbox ${JSON.stringify(client.inbox)}`));
        }, timeoutMs);
        waiter.resolve = (m) => { clearTimeout(timer); resolve(m); };
        client.waiters.push(waiter);
      });
    },
    /** Sends and returns the next message: the direct reply. */
    async request(message) {
      client.send(message);
      return client.next();
    },
    async nothing(ms = 300) {
      await sleep(ms);
      assert.deepEqual(client.inbox, [], 'no message expected');
    },
  };
  ws.on('message', (data, isBinary) => {
    assert.equal(isBinary, false, 'the server sends text frames');
    const message = JSON.parse(data.toString());
    check(message);
    const i = client.waiters.findIndex((w) => matches(message, w.type));
    if (i >= 0) client.waiters.splice(i, 1)[0].resolve(message);
    else client.inbox.push(message);
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => onOpen(client).then(() => resolve(client), reject));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), {
        status: res.statusCode,
        body: body ? JSON.parse(body) : null,
      })));
    });
    ws.once('error', reject);
  });
}

/** Terminates every WebSocket that `openWs` opened and is still open. */
export function closeWebSockets() {
  for (const ws of webSockets) ws.terminate();
  webSockets.clear();
}

// ---------------------------------------------------------------------------------
// REST

/** JSON request; resolves `{ status, headers, body }` (body parsed when JSON). */
export async function api(server, method, route, { user, roles, auth, body, headers = {} } = {}) {
  const h = { ...headers };
  if (auth !== undefined) h.authorization = auth;
  else if (user !== undefined) h.authorization = 'Bearer ' + token(user, roles);
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(server.url + route, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed = text;
  if ((res.headers.get('content-type') || '').includes('json') && text) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Creates a conversation over REST as `owner` and returns it (asserts 201). */
export async function createConversation(server, owner, participants, { type = 'group', name = 'Team' } = {}) {
  const res = await api(server, 'POST', '/api/conversations', {
    user: owner,
    body: { type, name, participants },
  });
  if (res.status !== 201) {
    throw new Error(`POST /api/conversations: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

export { sleep };
