// Two nodes (ADAPTER=postgres, one database) behind nginx running docs/cluster/nginx.conf,
// the file README "Running a cluster" shows. Only the upstream's `server` lines and the
// `listen` port of that file are replaced. Clients take distinct loopback source addresses
// (127.0.0.x) so that `hash $remote_addr consistent` spreads them over both nodes; nginx's
// access log (`upstream=`) tells which node served each request.
//
// nginx: NGINX_BIN, else `nginx` on PATH, else /usr/sbin/nginx (scripts/test-nginx installs
// it). A missing nginx fails the file.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';

import {
  assertOk, connect, createConversation, emitAck, freePort, next, none, sleep, startServer, test,
  token, users,
} from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CONF = path.resolve(here, '../../docs/cluster/nginx.conf');
const README = path.resolve(here, '../../README.md');
const STICKY = /^[ \t]*hash \$remote_addr consistent;[ \t]*\n/m;
// Any balancing directive of an upstream: without one nginx balances round robin.
const BALANCER = /^[ \t]*(?:hash|ip_hash|least_conn|random|sticky)\b[^;]*;[ \t]*\n/m;

// ---------------------------------------------------------------------------------
// nginx processes

function nginxBin() {
  const candidates = process.env.NGINX_BIN
    ? [process.env.NGINX_BIN]
    : [...(process.env.PATH || '').split(':').filter(Boolean).map((d) => path.join(d, 'nginx')), '/usr/sbin/nginx'];
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return c;
    } catch { /* next */ }
  }
  throw new Error(
    `nginx not found (${process.env.NGINX_BIN ? `NGINX_BIN=${process.env.NGINX_BIN}` : 'PATH, /usr/sbin/nginx'}): ` +
      'run scripts/test-nginx (installs it from Debian packages) or set NGINX_BIN',
  );
}

/** docs/cluster/nginx.conf with our upstream servers and listen port, optionally not sticky. */
function clusterConf(upstreamPorts, listenPort, { sticky = true } = {}) {
  let text = fs.readFileSync(CONF, 'utf8');
  const block = /(upstream switchboard \{\n)([\s\S]*?)(\n[ \t]*\})/.exec(text);
  assert.ok(block, `${CONF}: no "upstream switchboard { ... }" block`);
  const serverLine = /^([ \t]*)server[ \t]+[^\s;{]+;[ \t]*$/gm;
  const lines = [...block[2].matchAll(serverLine)];
  assert.ok(lines.length >= 1, `${CONF}: no "server host:port;" line in the upstream`);
  const indent = lines[0][1];
  let body = block[2].replace(serverLine, '\u0000');
  body = body.replace('\u0000', upstreamPorts.map((p) => `${indent}server 127.0.0.1:${p};`).join('\n'));
  body = body.replace(/\u0000\n?/g, '');
  if (!sticky) body = body.replace(BALANCER, '');
  text = text.slice(0, block.index) + block[1] + body + block[3] + text.slice(block.index + block[0].length);
  const listen = text.match(/^([ \t]*)listen[ \t]+80;/gm) || [];
  assert.equal(listen.length, 1, `${CONF}: expected one "listen 80;"`);
  return text.replace(/^([ \t]*)listen[ \t]+80;/m, `$1listen 127.0.0.1:${listenPort};`);
}

const nginxes = new Set();
// nginx runs in its own process group (master and workers): kill the group, so that no
// worker outlives an interrupted test.
function killNginxes() {
  for (const n of nginxes) {
    try { process.kill(-n.child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', killNginxes);

/** An nginx in the foreground on a free port, its files in a fresh temporary directory. */
async function startNginx(label, upstreamPorts, opts = {}) {
  const bin = nginxBin();
  // The port is picked free, then released for nginx to bind: a bind failure is retried.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const conf = clusterConf(upstreamPorts, port, opts);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sb-nginx-${label}-`));
    const confPath = path.join(dir, 'nginx.conf');
    const accessLog = path.join(dir, 'access.log'); // nginx's stdout
    const errorLog = path.join(dir, 'error.log'); // nginx's stderr
    fs.writeFileSync(confPath, conf);
    fs.writeFileSync(accessLog, '');
    fs.writeFileSync(errorLog, '');
    const out = fs.openSync(accessLog, 'a');
    const err = fs.openSync(errorLog, 'a');
    const child = spawn(
      bin,
      ['-p', dir + '/', '-c', confPath, '-e', errorLog, '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')};`],
      { stdio: ['ignore', out, err], detached: true },
    );
    fs.closeSync(out);
    fs.closeSync(err);
    let exitInfo = null;
    const exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve((exitInfo = { code, signal })));
      child.on('error', (e) => resolve((exitInfo = { error: e.message })));
    });
    const n = {
      label, url: `http://127.0.0.1:${port}`, port, dir, child, exited,
      access: () => fs.readFileSync(accessLog, 'utf8'),
      errors: () => fs.readFileSync(errorLog, 'utf8'),
      async stop() {
        nginxes.delete(n);
        if (exitInfo === null) {
          try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
          const res = await Promise.race([exited, sleep(5000).then(() => null)]);
          if (res === null) {
            try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
            await exited;
          }
        }
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
    nginxes.add(n);
    // Ready when /readyz answers 200 through nginx.
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (!ready && exitInfo === null && Date.now() < deadline) {
      try {
        const res = await fetch(`${n.url}/readyz`, { signal: AbortSignal.timeout(1000) });
        ready = res.status === 200;
      } catch { /* not listening yet */ }
      if (!ready) await sleep(50);
    }
    if (ready) return n;
    const log = n.errors();
    await n.stop();
    if (attempt < 3 && /Address already in use/.test(log)) continue;
    throw new Error(`nginx (${label}) did not start (${JSON.stringify(exitInfo)}):\n${log}`);
  }
}

/** The access log as records (the `switchboard` log_format of docs/cluster/nginx.conf). */
function accessRecords(n) {
  const re = /^(\S+) \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d+) \d+ upstream=(\S+(?:, \S+)*) upstream_status=(\S+(?:, \S+)*) /;
  const out = [];
  for (const line of n.access().split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const url = new URL(m[3], 'http://x');
    const transport = / transport=(\S+)/.exec(line)?.[1];
    out.push({
      addr: m[1], method: m[2], path: url.pathname, sid: / sid=yes\b/.test(line) ? 'yes' : null,
      transport: transport && transport !== '-' ? transport : null, status: Number(m[4]), upstream: m[5], line,
    });
  }
  return out;
}

/** socket.io/ requests from `addr`, waiting (briefly) until there is at least one. */
async function requestsFrom(n, addr, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const recs = accessRecords(n).filter((r) => r.addr === addr && r.path === '/socket.io/');
    if (recs.length || Date.now() > deadline) return recs;
    await sleep(50);
  }
}

/** Dumps the nginx logs when `fn` fails (the harness dumps the nodes' logs). */
function withNginxLogs(fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      for (const n of [...nginxes]) {
        const tail = (s) => s.split('\n').slice(-80).join('\n');
        process.stderr.write(
          `\n----- nginx ${n.label} ${n.url} error log -----\n${tail(n.errors())}\n` +
            `----- nginx ${n.label} access log (last lines) -----\n${tail(n.access())}\n----- end of nginx log -----\n`,
        );
      }
      throw err;
    }
  };
}

// ---------------------------------------------------------------------------------
// Clients

/** socket.io-client options that make every connection come from `addr` (127.0.0.x). */
const agents = new Set();
function from(addr) {
  const agent = new http.Agent({ localAddress: addr });
  agents.add(agent);
  return { localAddress: addr, agent };
}

const POLLING = { transports: ['polling'], upgrade: false };
const WEBSOCKET = { transports: ['websocket'] };

/** Waits until every socket has `n` `message:created`, then asserts exactly n, all distinct. */
async function expectCreated(socks, n, { timeoutMs = 5000 } = {}) {
  const count = (s) => s.inbox.filter((e) => e.event === 'message:created').length;
  const deadline = Date.now() + timeoutMs;
  while (socks.some((s) => count(s) < n) && Date.now() < deadline) await sleep(50);
  await sleep(300); // duplicates, if any, arrive now
  for (const s of socks) {
    const ids = s.inbox.filter((e) => e.event === 'message:created').map((e) => e.args[0]._id);
    assert.equal(ids.length, n, `socket ${s.id}: ${ids.length} message:created, expected ${n}`);
    assert.equal(new Set(ids).size, n, `socket ${s.id}: a message:created arrived twice`);
  }
}

// ---------------------------------------------------------------------------------

let nodeA;
let nodeB;
let sticky; // docs/cluster/nginx.conf as it is
let roundRobin; // the same without the `hash` line (started by the test that uses it)
const nodeOf = new Map(); // "127.0.0.1:port" -> node

before(async () => {
  nginxBin(); // fail at once, before starting anything, when nginx is missing
  nodeA = await startServer({ ADAPTER: 'postgres' });
  nodeB = await startServer({ ADAPTER: 'postgres', DATABASE_URL: nodeA.env.DATABASE_URL });
  for (const node of [nodeA, nodeB]) nodeOf.set(`127.0.0.1:${node.port}`, node);
  sticky = await startNginx('sticky', [nodeA.port, nodeB.port]);
});

after(async () => {
  for (const a of agents) a.destroy();
  // Node B first: node A drops the shared database when it stops.
  const stops = [roundRobin, sticky, nodeB, nodeA].filter(Boolean).map((p) => () => p.stop());
  const errors = [];
  for (const stop of stops) {
    try { await stop(); } catch (e) { errors.push(e); }
  }
  if (errors.length) throw errors[0];
});

test('README shows docs/cluster/nginx.conf verbatim', () => {
  const conf = fs.readFileSync(CONF, 'utf8');
  const readme = fs.readFileSync(README, 'utf8');
  assert.ok(readme.includes('```nginx\n' + conf + '```'), 'README "Running a cluster" must show docs/cluster/nginx.conf as it is');
  assert.match(conf, STICKY);
  // A long-poll waits up to the ping interval (25 s, src/config.rs) for data; a shorter
  // proxy_read_timeout would cut it (too slow to show here).
  const read = /^\s*proxy_read_timeout (\d+)s;/m.exec(conf);
  assert.ok(read && Number(read[1]) > 25, `proxy_read_timeout must be above 25 s: ${read?.[0]}`);
});

test('through nginx, long-polling clients stick to one node each and get every ack', withNginxLogs(async (t) => {
  const addrs = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);
  const [owner, ...ids] = users(addrs.length + 1);
  const conv = await createConversation({ url: sticky.url }, owner, ids);
  const socks = await Promise.all(ids.map((u, i) =>
    connect(sticky.url, '/chat', { ...POLLING, token: token(u), ...from(addrs[i]), timeoutMs: 5000 })));
  for (const s of socks) assert.equal(s.io.engine.transport.name, 'polling');
  const joins = await Promise.all(socks.map((s) => emitAck(s, 'conversation:join', { conversationId: conv._id })));
  joins.forEach((ack) => assertOk(ack, 'conversation:join'));
  // Several events in a row per client, every one a polling POST and a GET for the ack.
  await Promise.all(socks.map(async (s, i) => {
    for (let k = 0; k < 3; k++) {
      assertOk(await emitAck(s, 'message:send', { conversationId: conv._id, content: `c${i} m${k}` }), 'message:send');
    }
  }));
  // Each message reaches every other client once, whichever node it is on.
  await expectCreated(socks, (socks.length - 1) * 3);

  // Every request of a client went to one node, and the clients are on both nodes.
  const nodesUsed = new Set();
  const perNode = {};
  for (const addr of addrs) {
    const recs = await requestsFrom(sticky, addr);
    assert.ok(recs.length >= 5, `${addr}: only ${recs.length} requests logged`);
    const upstreams = new Set(recs.map((r) => r.upstream));
    assert.equal(upstreams.size, 1, `${addr} reached several nodes:\n${recs.map((r) => r.line).join('\n')}`);
    assert.ok(nodeOf.has([...upstreams][0]), `${addr}: upstream ${[...upstreams][0]}`);
    for (const r of recs) assert.equal(r.status, 200, r.line);
    nodesUsed.add([...upstreams][0]);
    perNode[[...upstreams][0]] = (perNode[[...upstreams][0]] || 0) + 1;
  }
  t.diagnostic(`clients per node: ${JSON.stringify(perNode)}`);
  assert.equal(nodesUsed.size, 2, 'the upstream put all 16 client addresses on one node');
}));

test('the nginx access log keeps no query string: a ?token= stays out of it', withNginxLogs(async () => {
  const addr = '127.0.0.40';
  const secret = token(users(1)[0]);
  await new Promise((resolve, reject) => {
    http.get(`${sticky.url}/socket.io/?EIO=4&transport=polling&token=${secret}`, from(addr), (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
  const recs = await requestsFrom(sticky, addr);
  assert.equal(recs.length, 1, recs.map((r) => r.line).join('\n'));
  assert.equal(recs[0].transport, 'polling', recs[0].line);
  assert.equal(recs[0].sid, null, recs[0].line);
  assert.ok(!sticky.access().includes(secret.split('.')[2]), 'the token is in the access log');
}));

test('through nginx, the default transports upgrade to websocket and work', withNginxLogs(async () => {
  const addrs = ['127.0.0.20', '127.0.0.21', '127.0.0.22', '127.0.0.23'];
  const [owner, ...ids] = users(addrs.length + 1);
  const conv = await createConversation({ url: sticky.url }, owner, ids);
  // connect() waits for the upgrade and checks that the engine then runs on websocket.
  const socks = await Promise.all(ids.map((u, i) =>
    connect(sticky.url, '/chat', { token: token(u), ...from(addrs[i]), timeoutMs: 5000 })));
  for (const s of socks) assert.equal(s.io.engine.transport.name, 'websocket');
  for (const s of socks) assertOk(await emitAck(s, 'conversation:join', { conversationId: conv._id }), 'join');
  for (const [i, s] of socks.entries()) {
    assertOk(await emitAck(s, 'message:send', { conversationId: conv._id, content: `u${i}` }), 'message:send');
  }
  await expectCreated(socks, socks.length - 1);
  // nginx logs a websocket when it closes.
  for (const s of socks) s.disconnect();
  for (const addr of addrs) {
    const deadline = Date.now() + 3000;
    let recs = await requestsFrom(sticky, addr);
    while (!recs.some((r) => r.status === 101) && Date.now() < deadline) {
      await sleep(50);
      recs = await requestsFrom(sticky, addr);
    }
    assert.ok(recs.some((r) => r.transport === 'websocket' && r.status === 101), `${addr}: no websocket upgrade logged`);
    assert.equal(new Set(recs.map((r) => r.upstream)).size, 1, recs.map((r) => r.line).join('\n'));
  }
}));

test('a client on the other node, connected directly, gets message:created from a client behind nginx once', withNginxLogs(async () => {
  const [sender, receiver] = users(2);
  const conv = await createConversation({ url: sticky.url }, sender, [receiver]);
  const addr = '127.0.0.30';
  const s = await connect(sticky.url, '/chat', { ...POLLING, token: token(sender), ...from(addr), timeoutMs: 5000 });
  const upstreams = new Set((await requestsFrom(sticky, addr)).map((r) => r.upstream));
  assert.equal(upstreams.size, 1, [...upstreams].join(' '));
  const senderNode = nodeOf.get([...upstreams][0]);
  assert.ok(senderNode, `upstream ${[...upstreams][0]} is neither node`);
  const otherNode = senderNode === nodeA ? nodeB : nodeA;
  const r = await connect(otherNode.url, '/chat', { ...WEBSOCKET, token: token(receiver) });
  assertOk(await emitAck(r, 'conversation:join', { conversationId: conv._id }), 'receiver join');
  assertOk(await emitAck(s, 'conversation:join', { conversationId: conv._id }), 'sender join');
  const ack = await emitAck(s, 'message:send', { conversationId: conv._id, content: 'across nodes' });
  assertOk(ack, 'message:send');
  assert.deepEqual(await next(r, 'message:created'), ack.data);
  await none(r, 'message:created', 500);
  await none(s, 'message:created', 0);
}));

test('without the hash line (round robin) long-polling fails, websocket-only still works', withNginxLogs(async (t) => {
  roundRobin = await startNginx('round-robin', [nodeA.port, nodeB.port], { sticky: false });
  // The scenario of the long-polling test above, through the same file less `hash`.
  const addrs = Array.from({ length: 6 }, (_, i) => `127.0.0.${i + 40}`);
  const [owner, ...ids] = users(addrs.length + 1);
  const conv = await createConversation({ url: roundRobin.url }, owner, ids); // REST needs no stickiness
  const outcomes = await Promise.all(ids.map(async (u, i) => {
    try {
      const s = await connect(roundRobin.url, '/chat', { ...POLLING, token: token(u), ...from(addrs[i]), timeoutMs: 3000 });
      assertOk(await emitAck(s, 'conversation:join', { conversationId: conv._id }, 1500), 'join');
      for (let k = 0; k < 3; k++) {
        assertOk(await emitAck(s, 'message:send', { conversationId: conv._id, content: `m${k}` }, 1500), 'send');
      }
      if (!s.connected) return `disconnected: ${s.disconnectReason}`;
      return 'ok';
    } catch (err) {
      return `failed: ${err.message}`;
    }
  }));
  const failed = outcomes.filter((o) => o !== 'ok');
  t.diagnostic(`polling through round robin: ${JSON.stringify(outcomes)}`);
  assert.ok(failed.length >= addrs.length - 1, `polling through round robin should fail: ${JSON.stringify(outcomes)}`);
  // Because a node answered 400 to a polling request of a session the other node made
  // (nginx logs a request a moment after the client has its answer).
  for (const [i, addr] of addrs.entries()) {
    if (outcomes[i] === 'ok') continue;
    const deadline = Date.now() + 3000;
    let recs = await requestsFrom(roundRobin, addr);
    while (!recs.some((r) => r.sid && r.status === 400) && Date.now() < deadline) {
      await sleep(50);
      recs = await requestsFrom(roundRobin, addr);
    }
    const handshake = recs.find((r) => !r.sid);
    const unknown = recs.find((r) => r.sid && r.status === 400);
    assert.ok(handshake && unknown, `${addr}: expected a 400 for its session:\n${recs.map((r) => r.line).join('\n')}`);
    assert.notEqual(unknown.upstream, handshake.upstream, `${addr}: 400 from the node that made the session`);
  }

  const wsAddrs = Array.from({ length: 6 }, (_, i) => `127.0.0.${i + 50}`);
  const [wsOwner, ...wsIds] = users(wsAddrs.length + 1);
  const wsConv = await createConversation({ url: roundRobin.url }, wsOwner, wsIds);
  const socks = await Promise.all(wsIds.map((u, i) =>
    connect(roundRobin.url, '/chat', { ...WEBSOCKET, token: token(u), ...from(wsAddrs[i]), timeoutMs: 5000 })));
  await Promise.all(socks.map(async (s, i) => {
    assertOk(await emitAck(s, 'conversation:join', { conversationId: wsConv._id }), 'join');
  }));
  await Promise.all(socks.map(async (s, i) => {
    for (let k = 0; k < 3; k++) {
      assertOk(await emitAck(s, 'message:send', { conversationId: wsConv._id, content: `w${i} ${k}` }), 'send');
    }
  }));
  await expectCreated(socks, (socks.length - 1) * 3);
  for (const s of socks) assert.ok(s.connected, `websocket client disconnected: ${s.disconnectReason}`);
}));
