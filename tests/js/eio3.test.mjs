// ALLOW_EIO3: socket.io-client 2.x (engine.io protocol 3, `EIO=3`), the real npm package
// (2.5.0, installed as `socket.io-client-v2`), on /chat and the restaurant namespaces:
// connect, join, acks in both envelopes, broadcasts, refusals; and the default, where an
// `EIO=3` request is answered 400 as Node answers it with `allowEIO3: false`.
//
// socket.io-client 2.x has no `auth` option: the token travels in the `Authorization`
// header (`extraHeaders`, Node and React Native) or in the handshake URL's `?token=`
// given to the Manager. Not in `io(url + '/chat', { query })`: 2.x appends that query to
// the namespace of its CONNECT packet (`0/chat?token=…,`), which socketioxide 0.18 takes
// for a namespace of that name (Node strips it); the last test pins this down.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import ioV2 from 'socket.io-client-v2';

import {
  api, assertStops, connect, createConversation, emitAck, next, startServer, test, token, users,
} from './harness.mjs';

let server; // ALLOW_EIO3=true
let off; // the default
before(async () => {
  [server, off] = await Promise.all([startServer({ ALLOW_EIO3: 'true' }), startServer()]);
});
after(() => assertStops(server, off));

const SERVICE = 500;
const service = { user: SERVICE, roles: ['service'] };

/** socket.io-client 2.x's transport setups (its default: polling, then upgrade). */
const MODES = [
  { name: 'websocket', opts: { transports: ['websocket'] } },
  { name: 'polling', opts: { transports: ['polling'], upgrade: false } },
  { name: 'polling+upgrade', opts: {} },
];

const v2Sockets = new Set();
after(() => {
  for (const s of v2Sockets) s.close();
});

/**
 * A 2.x socket on `ns`. `via: 'header'` sends `Authorization: Bearer`, `via: 'query'`
 * puts `?token=` on the Manager's handshake URL. Resolves once connected; rejects with
 * the namespace's refusal (2.x's `error` event) or the transport's `connect_error`.
 */
function v2(url, ns, { tok, via = 'header', mode = MODES[0], timeoutMs = 10_000 } = {}) {
  const opts = { forceNew: true, reconnection: false, timeout: timeoutMs, ...mode.opts };
  if (tok !== undefined && via === 'header') opts.extraHeaders = { Authorization: `Bearer ${tok}` };
  if (tok !== undefined && via === 'query') opts.query = { token: tok };
  const manager = new ioV2.Manager(url, opts);
  const socket = manager.socket(ns);
  v2Sockets.add(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`2.x connect to ${ns} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err instanceof Error ? err : Object.assign(new Error(err?.message ?? String(err)), { data: err }));
    };
    socket.once('error', fail);
    socket.once('connect_error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.off('connect_error', fail);
      resolve(socket);
    });
  });
}

/** 2.x has no `emitWithAck`: emit with an ack callback, with a timeout. */
function ack2(socket, event, payload, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event} within ${timeoutMs} ms`)), timeoutMs);
    socket.emit(event, payload, (answer) => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

/** Resolves once a 2.x socket's engine runs on websocket. */
function upgraded(socket, timeoutMs = 5000) {
  const engine = socket.io.engine;
  if (engine.transport.name === 'websocket') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no upgrade within ${timeoutMs} ms (${engine.transport.name})`)), timeoutMs);
    engine.once('upgrade', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The next `event` on a 2.x socket (listen before causing it). */
function on2(socket, event, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

async function createRestaurant(srv) {
  const res = await api(srv, 'POST', '/api/restaurants', { ...service, body: { name: 'Legacy bistro' } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id;
}

let orderNumber = 700;
async function createOrder(srv, restaurantId) {
  const body = {
    order_number: orderNumber++,
    type: 'dine_in',
    table_number: '4',
    items: [{ name: 'soup', quantity: 1, station: 'kitchen' }],
    total: 9.5,
  };
  const res = await api(srv, 'POST', `/api/restaurants/${restaurantId}/orders`, { ...service, body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

for (const mode of MODES) {
  describe(`socket.io-client 2.x over ${mode.name} with ALLOW_EIO3=true`, () => {
    test('/chat: join and send acked { ok, data }, message:created broadcast, errors acked and emitted', async () => {
      const [u1, u2] = users(2);
      const conv = await createConversation(server, u1, [u2]);
      // One token per way 2.x can carry it.
      const s1 = await v2(server.url, '/chat', { tok: token(u1), via: 'header', mode });
      const s2 = await v2(server.url, '/chat', { tok: token(u2), via: 'query', mode });
      if (mode.name === 'polling+upgrade') {
        // 2.x's default really moves to websocket (engine.io 3 polling framing read).
        for (const s of [s1, s2]) await upgraded(s);
      }
      for (const s of [s1, s2]) {
        assert.deepEqual(await ack2(s, 'conversation:join', { conversationId: conv._id }), { ok: true });
      }
      const created = on2(s2, 'message:created');
      const sent = await ack2(s1, 'message:send', { conversationId: conv._id, content: 'from a 2015 tablet' });
      assert.equal(sent.ok, true, JSON.stringify(sent));
      assert.equal(sent.data.content, 'from a 2015 tablet');
      assert.equal(sent.data.sender_id, u1);
      assert.deepEqual(await created, sent.data);

      const bad = await ack2(s1, 'message:send', { content: 'nowhere' });
      assert.equal(bad.ok, false);
      assert.equal(bad.error.code, 'BAD_REQUEST');
      assert.ok(bad.error.message.includes('conversationId'), bad.error.message);
      const unknown = await ack2(s1, 'message:sned', {});
      assert.deepEqual(unknown, { ok: false, error: { code: 'BAD_REQUEST', message: 'unknown event' } });
      // Without an ack, a failure comes as an `error` event (2.x delivers it to its
      // `error` listeners).
      const error = on2(s1, 'error');
      s1.emit('message:send', { content: 'no ack' });
      assert.equal((await error).code, 'BAD_REQUEST');
    });

    test('restaurant namespaces (/ and /restaurants/<id>): join:restaurant acked { success, data }, order:created broadcast', async () => {
      const r = await createRestaurant(server);
      const tok = token(users(1)[0], ['staff'], { restaurants: [r] });
      // 2.x is always on `/` (engine.io 3 connects it there); `/restaurants/<id>` is a
      // dynamic namespace of its own.
      const root = await v2(server.url, '/', { tok, mode });
      const dyn = await v2(server.url, `/restaurants/${r}`, { tok, mode });
      const room = { room: `restaurant:${r}` };
      assert.deepEqual(await ack2(root, 'join:restaurant', r), { success: true, data: room });
      const both = [on2(root, 'order:created'), on2(dyn, 'order:created')];
      const order = await createOrder(server, r);
      for (const got of await Promise.all(both)) assert.deepEqual(got, order);

      const other = await createRestaurant(server);
      const refused = await ack2(root, 'join:restaurant', other);
      assert.equal(refused.success, false, JSON.stringify(refused));
      assert.equal(typeof refused.error.code, 'string');
      const moved = await ack2(dyn, 'order:update_status', { orderId: order.id, status: 'preparing', restaurantId: r });
      assert.equal(moved.success, true, JSON.stringify(moved));
    });
  });
}

describe('ALLOW_EIO3=true: who gets in', () => {
  test('a 2.x socket without a token or with a bad one is refused with the code', async () => {
    // Engine.io 3 connects every client to `/` first, and 2.x hands a refusal on `/`
    // to every socket of the Manager: the restaurant dialect's code comes first.
    for (const opts of [{}, { tok: 'not-a-jwt' }]) {
      await assert.rejects(v2(server.url, '/chat', opts), (err) => {
        assert.equal(err.message, 'AUTH_FAILED');
        return true;
      });
    }
    await assert.rejects(v2(server.url, '/', {}), (err) => err.message === 'AUTH_FAILED');
    await assert.rejects(
      v2(server.url, '/restaurants/not-a-uuid', { tok: token(users(1)[0], ['staff']) }),
      (err) => typeof err.message === 'string' && err.message.length > 0,
    );
  });

  test('socket.io-client 4.x is unaffected on the same server', async () => {
    const [u1, u2] = users(2);
    const conv = await createConversation(server, u1, [u2]);
    const s1 = await connect(server.url, '/chat', { token: token(u1) });
    const s2 = await v2(server.url, '/chat', { tok: token(u2) });
    assert.deepEqual(await emitAck(s1, 'conversation:join', { conversationId: conv._id }), { ok: true });
    assert.deepEqual(await ack2(s2, 'conversation:join', { conversationId: conv._id }), { ok: true });
    // Across protocol versions, both ways.
    const to4 = next(s1, 'message:created');
    const fromV2 = await ack2(s2, 'message:send', { conversationId: conv._id, content: 'v2 to v4' });
    assert.deepEqual(await to4, fromV2.data);
    const to2 = on2(s2, 'message:created');
    const fromV4 = await emitAck(s1, 'message:send', { conversationId: conv._id, content: 'v4 to v2' });
    assert.deepEqual(await to2, fromV4.data);
  });

  test('known limitation: io(url + "/chat", { query }) never connects (the query rides in the CONNECT namespace)', async () => {
    const socket = ioV2(server.url + '/chat', {
      forceNew: true, reconnection: false, transports: ['websocket'], query: { token: token(users(1)[0]) },
    });
    v2Sockets.add(socket);
    const outcome = await Promise.race([
      new Promise((resolve) => socket.once('connect', () => resolve('connected'))),
      new Promise((resolve) => setTimeout(() => resolve('not connected'), 1500)),
    ]);
    socket.close();
    assert.equal(outcome, 'not connected', 'socketioxide now strips the CONNECT query: update README and PROTOCOL.md');
  });
});

describe('ALLOW_EIO3 off (the default)', () => {
  test('an EIO=3 handshake is answered 400 { code: "5", message: "Unsupported protocol version" }', async () => {
    for (const transport of ['polling', 'websocket']) {
      const res = await fetch(`${off.url}/socket.io/?EIO=3&transport=${transport}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 400, transport);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      assert.deepEqual(await res.json(), { code: '5', message: 'Unsupported protocol version' }, transport);
    }
    // Switched on, the same request is a handshake (engine.io 3 frames it `<length>:0{…}`).
    const res = await fetch(`${server.url}/socket.io/?EIO=3&transport=polling`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^\d+:0\{"sid":/);
  });

  test('socket.io-client 2.x cannot connect; 4.x still does', async () => {
    for (const mode of MODES) {
      await assert.rejects(v2(off.url, '/chat', { tok: token(users(1)[0]), mode }), mode.name);
    }
    const s = await connect(off.url, '/chat', { token: token(users(1)[0]) });
    assert.equal(s.connected, true);
  });
});
