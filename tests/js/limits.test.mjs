// Payload limit, rate limit and origin checks (contract §1, §3), per transport setup.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import {
  TRANSPORTS, api, assertStops, chat, connect, createConversation, disconnected, emitAck, next,
  none, startServer, test, token, users,
} from './harness.mjs';

const servers = [];
after(() => assertStops(...servers));
async function start(env) {
  const s = await startServer(env);
  servers.push(s);
  return s;
}

const utf8 = (v) => Buffer.byteLength(JSON.stringify(v));

// ---------------------------------------------------------------------------------

describe('MAX_PAYLOAD_BYTES=10000', () => {
  let server;
  let owner;
  let conv;
  before(async () => {
    server = await start({ MAX_PAYLOAD_BYTES: '10000' });
    [owner] = users(1);
    conv = await createConversation(server, owner, []);
  });

  // ~5 kB: 2500 two-byte characters, well inside the limit and the 4000-character rule.
  const small = () => ({ conversationId: conv._id, content: 'é'.repeat(2500) });
  // ~21 kB, and valid in every other respect (4000 characters max, 10 URLs of ≤ 2048),
  // so only the payload limit can refuse it.
  const big = () => ({
    conversationId: conv._id,
    content: 'é'.repeat(3000),
    attachments: Array.from({ length: 10 }, (_, i) => `https://cdn.example/${i}/${'a'.repeat(1480)}`),
  });

  async function messages() {
    const s = await connect(server.url, '/chat', { transports: ['websocket'], token: token(owner) });
    const page = await emitAck(s, 'message:list', { conversationId: conv._id, limit: 100 });
    s.disconnect();
    assert.equal(page.ok, true, JSON.stringify(page));
    return page.data;
  }

  test('the engine.io handshake announces maxPayload 10000 and Node\'s ping timings', async () => {
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.equal(text[0], '0', text);
    const open = JSON.parse(text.slice(1));
    assert.equal(open.maxPayload, 10000);
    assert.equal(open.pingInterval, 25000);
    assert.equal(open.pingTimeout, 20000);
    assert.deepEqual(open.upgrades, ['websocket']);
  });

  test('REST: a body over the limit answers 413', async () => {
    const res = await api(server, 'POST', '/api/conversations', {
      user: owner,
      body: { type: 'group', name: 'x'.repeat(20_000), participants: [] },
    });
    assert.equal(res.status, 413, JSON.stringify(res.body));
  });

  for (const mode of TRANSPORTS) {
    describe(`over ${mode.name}`, () => {
      test('a 5 kB payload is accepted', async () => {
        const payload = small();
        assert.ok(utf8(payload) > 5000 && utf8(payload) < 6000, `${utf8(payload)} bytes`);
        const s = await chat(server, owner, mode);
        const ack = await emitAck(s, 'message:send', payload);
        assert.equal(ack.ok, true, JSON.stringify(ack));
        assert.equal(ack.data.content, payload.content);
        assert.equal(s.connected, true);
      });

      test('a 20 kB payload disconnects the client, writes nothing, and the server keeps serving', async (t) => {
        const payload = big();
        assert.ok(utf8(payload) > 20_000, `${utf8(payload)} bytes`);
        const before = (await messages()).length;
        const s = await chat(server, owner, mode);
        const outcome = emitAck(s, 'message:send', payload, 10_000).then(
          (ack) => ({ ack }),
          (err) => ({ err: err.message }),
        );
        const reason = await disconnected(s);
        t.diagnostic(`disconnect reason: ${reason}`);
        assert.ok(['transport close', 'transport error'].includes(reason), `disconnect reason: ${reason}`);
        const result = await outcome;
        assert.equal(result.ack, undefined, `the oversized emit was answered: ${JSON.stringify(result.ack)}`);
        // The server is up and answers new clients on every transport.
        const health = await api(server, 'GET', '/healthz');
        assert.equal(health.status, 200);
        const again = await chat(server, owner, mode);
        const ack = await emitAck(again, 'message:send', small());
        assert.equal(ack.ok, true, JSON.stringify(ack));
        const after = await messages();
        assert.equal(after.length, before + 1, 'the oversized message must not be stored');
        assert.ok(after.every((m) => m.attachments.length === 0));
      });
    });
  }
});

// ---------------------------------------------------------------------------------

describe('RATE_LIMIT_PER_SEC=0.01, RATE_LIMIT_BURST=3', () => {
  let server;
  before(async () => {
    server = await start({ RATE_LIMIT_PER_SEC: '0.01', RATE_LIMIT_BURST: '3' });
  });

  for (const mode of TRANSPORTS) {
    describe(`over ${mode.name}`, () => {
      test('three typing events pass, the fourth answers RATE_LIMITED; buckets are per event and per socket', async () => {
        const [u] = users(1);
        const s = await chat(server, u, mode);
        const conversationId = randomUUID();
        for (let i = 0; i < 3; i++) {
          const ack = await emitAck(s, 'typing', { conversationId, isTyping: true });
          assert.equal(ack.ok, false, JSON.stringify(ack));
          assert.equal(ack.error.code, 'NOT_FOUND', `typing #${i + 1}: ${JSON.stringify(ack)}`);
        }
        const limited = await emitAck(s, 'typing', { conversationId, isTyping: true });
        assert.equal(limited.ok, false);
        assert.equal(limited.error.code, 'RATE_LIMITED', JSON.stringify(limited));
        assert.equal(typeof limited.error.message, 'string');
        // Without an ack, the refusal comes as an `error` event.
        s.emit('typing', { conversationId, isTyping: false });
        assert.equal((await next(s, 'error')).code, 'RATE_LIMITED');
        // Another event name has its own bucket.
        const other = await emitAck(s, 'message:list', { conversationId });
        assert.equal(other.error?.code, 'NOT_FOUND', JSON.stringify(other));
        // Another socket of the same user has its own buckets.
        const s2 = await chat(server, u, mode);
        const fresh = await emitAck(s2, 'typing', { conversationId, isTyping: true });
        assert.equal(fresh.error?.code, 'NOT_FOUND', JSON.stringify(fresh));
        assert.equal(s.connected, true, 'a limited socket stays connected');
      });

      test('a rate-limited message:send does nothing', async () => {
        const [a, b] = users(2);
        const conv = await createConversation(server, a, [b]);
        const sa = await chat(server, a, mode);
        const sb = await chat(server, b, mode);
        assert.equal((await emitAck(sb, 'conversation:join', { conversationId: conv._id })).ok, true);
        for (let i = 1; i <= 3; i++) {
          const ack = await emitAck(sa, 'message:send', { conversationId: conv._id, content: `m${i}` });
          assert.equal(ack.ok, true, JSON.stringify(ack));
        }
        const fourth = await emitAck(sa, 'message:send', { conversationId: conv._id, content: 'm4' });
        assert.equal(fourth.error?.code, 'RATE_LIMITED', JSON.stringify(fourth));
        for (let i = 1; i <= 3; i++) assert.equal((await next(sb, 'message:created')).content, `m${i}`);
        await none(sb, 'message:created');
        const page = await emitAck(sa, 'message:list', { conversationId: conv._id });
        assert.deepEqual(page.data.map((m) => m.content), ['m3', 'm2', 'm1']);
      });

      test('unknown events count against the limit too', async () => {
        const [u] = users(1);
        const s = await chat(server, u, mode);
        for (let i = 0; i < 3; i++) {
          const ack = await emitAck(s, 'no:such:event', {});
          assert.equal(ack.error?.code, 'BAD_REQUEST', JSON.stringify(ack));
        }
        const ack = await emitAck(s, 'no:such:event', {});
        assert.equal(ack.error?.code, 'RATE_LIMITED', JSON.stringify(ack));
      });
    });
  }
});

// ---------------------------------------------------------------------------------

describe('ALLOWED_ORIGINS unset (development)', () => {
  let server;
  before(async () => {
    server = await start({});
  });

  test('any origin, without credentials, on polling and REST; websockets from any origin', async () => {
    for (const path of ['/socket.io/?EIO=4&transport=polling', '/healthz']) {
      const res = await fetch(server.url + path, { headers: { Origin: 'https://anywhere.example' } });
      await res.text();
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', path);
      assert.equal(res.headers.get('access-control-allow-credentials'), null, path);
    }
    const [u] = users(1);
    const s = await connect(server.url, '/chat', {
      transports: ['websocket'], token: token(u), extraHeaders: { Origin: 'https://anywhere.example' },
    });
    assert.equal(s.connected, true);
  });
});

describe('ALLOWED_ORIGINS=https://app.example', () => {
  const ALLOWED = 'https://app.example';
  const EVIL = 'https://evil.example';
  let server;
  before(async () => {
    server = await start({ ALLOWED_ORIGINS: ALLOWED });
  });

  test('websocket: a foreign Origin cannot connect, the allowed one and no Origin can', async () => {
    const [u] = users(1);
    const opts = { transports: ['websocket'], token: token(u) };
    const err = await connect(server.url, '/chat', { ...opts, extraHeaders: { Origin: EVIL } }).then(
      (s) => { s.disconnect(); return null; },
      (e) => e,
    );
    assert.ok(err, 'a websocket from a foreign origin was accepted');
    const ok = await connect(server.url, '/chat', { ...opts, extraHeaders: { Origin: ALLOWED } });
    assert.deepEqual(await next(ok, 'unread:count'), { total: 0, byConversation: {} });
    // Native apps and other backends send no Origin at all.
    const native = await connect(server.url, '/chat', opts);
    assert.equal(native.connected, true);
  });

  test('polling: responses carry the CORS headers for the allowed origin only', async () => {
    const url = `${server.url}/socket.io/?EIO=4&transport=polling`;
    const allowed = await fetch(url, { headers: { Origin: ALLOWED } });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get('access-control-allow-origin'), ALLOWED);
    assert.equal(allowed.headers.get('access-control-allow-credentials'), 'true');
    const open = await allowed.text();
    assert.match(open, /^0\{.*"sid"/, 'an engine.io OPEN packet');
    const foreign = await fetch(url, { headers: { Origin: EVIL } });
    await foreign.text();
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
    // The browser's preflight before a credentialed POST.
    const preflight = await fetch(url, {
      method: 'OPTIONS',
      headers: {
        Origin: ALLOWED,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type',
      },
    });
    assert.ok(preflight.status === 200 || preflight.status === 204, `preflight ${preflight.status}`);
    assert.equal(preflight.headers.get('access-control-allow-origin'), ALLOWED);
    assert.equal(preflight.headers.get('access-control-allow-credentials'), 'true');
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
  });

  test('REST: the allowed origin gets CORS headers with credentials', async () => {
    const res = await fetch(`${server.url}/healthz`, { headers: { Origin: ALLOWED } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), ALLOWED);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
  });

  test('polling with the allowed origin connects (socket.io-client)', async () => {
    const [u] = users(1);
    const s = await connect(server.url, '/chat', {
      transports: ['polling'], upgrade: false, token: token(u), extraHeaders: { Origin: ALLOWED },
    });
    assert.deepEqual(await next(s, 'unread:count'), { total: 0, byConversation: {} });
  });

  test('polling+upgrade: the allowed origin upgrades to websocket', async () => {
    const [u] = users(1);
    const s = await connect(server.url, '/chat', { token: token(u), extraHeaders: { Origin: ALLOWED } });
    assert.equal(s.io.engine.transport.name, 'websocket');
  });

  test('polling+upgrade: a foreign origin never gets the websocket upgrade', async () => {
    const [u] = users(1);
    const s = await connect(server.url, '/chat', {
      token: token(u), extraHeaders: { Origin: EVIL }, expectUpgrade: false,
    });
    const outcome = await Promise.race([
      s.upgradeFailed.then((err) => `upgradeError: ${err?.message}`),
      s.upgraded.then((name) => `upgraded to ${name}`),
      delay(10_000, 'neither upgrade nor upgradeError within 10 s', { ref: false }),
    ]);
    assert.match(outcome, /^upgradeError/);
    assert.equal(s.io.engine.transport.name, 'polling');
    // The session goes on over polling.
    assert.deepEqual(await next(s, 'unread:count'), { total: 0, byConversation: {} });
    const ack = await emitAck(s, 'typing', { conversationId: randomUUID(), isTyping: true });
    assert.equal(ack.error?.code, 'NOT_FOUND', JSON.stringify(ack));
    assert.equal(s.connected, true);
  });
});
