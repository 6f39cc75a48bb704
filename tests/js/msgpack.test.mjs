// PARSER=msgpack: socket.io-client 4.x with the real `socket.io-msgpack-parser` (3.x, the
// one Node's `parser` option takes) on /chat, /notifications and the restaurant
// namespaces, over each transport setup: acks in both envelopes, broadcasts, error acks
// and `error` events, payloads that are not JSON values. A server has one parser: a
// client on the other one does not get in (both ways).
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import msgpackParser from 'socket.io-msgpack-parser';

import {
  TRANSPORTS, api, assertErr, assertOk, assertStops, connect, connectOutcome, createConversation,
  emitAck, next, none, startServer, test, token, users,
} from './harness.mjs';

let server; // PARSER=msgpack
let json; // the default
before(async () => {
  [server, json] = await Promise.all([startServer({ PARSER: 'msgpack' }), startServer({ PARSER: 'json' })]);
});
after(() => assertStops(server, json));

const SERVICE = 500;
const service = { user: SERVICE, roles: ['service'] };

/**
 * Where a received value holds raw bytes: MessagePack has a type for them, and a type
 * that serializes differently for binary formats (a UUID: 16 bytes) would land there.
 */
function bytesIn(v, path = '$') {
  if (v instanceof Uint8Array || v instanceof ArrayBuffer) return [path];
  if (v instanceof Map) return [`${path} (a Map: non-string keys)`];
  if (Array.isArray(v)) return v.flatMap((x, i) => bytesIn(x, `${path}[${i}]`));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => bytesIn(x, `${path}.${k}`));
  return [];
}

/** Every event any msgpack socket received that carried bytes. */
const bytesSeen = [];

/** A msgpack socket on `ns` of `srv`; every event it gets is checked by `bytesIn`. */
async function mp(srv, ns, tok, mode = TRANSPORTS[0], extra = {}) {
  const socket = await connect(srv.url, ns, { ...mode.opts, parser: msgpackParser, token: tok, ...extra });
  // Events that came with CONNECT are in the inbox already.
  for (const e of socket.inbox) bytesSeen.push(...bytesIn(e.args, `${ns} ${e.event}`));
  socket.onAny((event, ...args) => bytesSeen.push(...bytesIn(args, `${ns} ${event}`)));
  return socket;
}

after(() => assert.deepEqual(bytesSeen, [], 'events carried bytes where JSON has strings'));

/** Resolves 'connected', or the refusal / failure that kept the socket out. */
function outcome(srv, ns, opts, ms = 3000) {
  return connectOutcome(srv.url, ns, { ...opts, timeoutMs: ms }).then(
    (got) => (got === 'connected' ? got : `not connected: ${got}`),
  );
}

let orderNumber = 900;
for (const mode of TRANSPORTS) {
  describe(`msgpack over ${mode.name}`, () => {
    test('/chat: join, message:send acked with the Message, message:created to the others, errors', async () => {
      const [u1, u2] = users(2);
      const conv = await createConversation(server, u1, [u2]);
      const [s1, s2] = await Promise.all([mp(server, '/chat', token(u1), mode), mp(server, '/chat', token(u2), mode)]);
      for (const s of [s1, s2]) {
        assert.deepEqual(await next(s, 'unread:count'), { total: 0, byConversation: {} });
        assert.deepEqual(await emitAck(s, 'conversation:join', { conversationId: conv._id }), { ok: true });
      }
      const m = assertOk(await emitAck(s1, 'message:send', {
        conversationId: conv._id, content: 'packed ✓', attachments: [], clientId: 'c-1',
      }), 'message:send');
      assert.equal(m.content, 'packed ✓');
      assert.equal(m.sender_id, u1);
      assert.equal(typeof m.created_at, 'string');
      assert.deepEqual(await next(s2, 'message:created'), m);
      await none(s1, 'message:created', 100);
      // Maps keyed by id arrive keyed by the id's string.
      const unread = await next(s2, 'unread:count');
      assert.deepEqual(unread, { total: 1, byConversation: { [conv._id]: 1 } });
      // History and unread counts are values of every JSON type (numbers, nulls, maps).
      const page = assertOk(await emitAck(s2, 'message:list', { conversationId: conv._id }), 'message:list');
      assert.deepEqual(JSON.stringify(page).includes('packed ✓'), true, JSON.stringify(page));

      assertErr(await emitAck(s1, 'message:send', { content: 'nowhere' }), 'BAD_REQUEST', 'conversationId');
      assertErr(await emitAck(s1, 'message:sned', {}), 'BAD_REQUEST', 'unknown event');
      // MessagePack can say what JSON cannot: bytes, a map with integer keys. Such a
      // payload is not a JSON value and is refused like a missing one, with an ack.
      assertErr(await emitAck(s1, 'message:send', Buffer.from('bytes')), 'BAD_REQUEST');
      assertErr(await emitAck(s1, 'message:send', { conversationId: conv._id, content: Buffer.from('x') }), 'BAD_REQUEST');
      assertErr(await emitAck(s1, 'message:send', new Map([[1, 'a']])), 'BAD_REQUEST');
      // Without an ack, a failure is an `error` event.
      s1.emit('message:send', { content: 'no ack' });
      assert.equal((await next(s1, 'error')).code, 'BAD_REQUEST');
      // The connection is still fine.
      assertOk(await emitAck(s1, 'message:send', { conversationId: conv._id, content: 'still here' }));
      assert.equal((await next(s2, 'message:created')).content, 'still here');
    });

    test('/notifications: the count at connect, notification:created from REST, list and read acked', async () => {
      const [u] = users(1);
      const s = await mp(server, '/notifications', token(u), mode);
      const first = await next(s, 'notification:count');
      assert.equal(typeof first, 'object');
      const res = await api(server, 'POST', '/api/notifications', {
        ...service,
        body: { user_id: u, type: 'message', title: 'packed', content: 'body', related_id: null },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual(await next(s, 'notification:created'), res.body);
      const list = assertOk(await emitAck(s, 'notification:list', {}), 'notification:list');
      assert.ok(JSON.stringify(list).includes(res.body._id), JSON.stringify(list));
      assertOk(await emitAck(s, 'notification:read', { notificationId: res.body._id }), 'notification:read');
      assertErr(await emitAck(s, 'notification:read', { notificationId: 'nope' }), 'BAD_REQUEST');
    });

    test('/restaurants/<id> and /restaurant: join:restaurant acked { success, data }, order:created, refusals', async () => {
      const res = await api(server, 'POST', '/api/restaurants', { ...service, body: { name: 'Packed bistro' } });
      assert.equal(res.status, 201);
      const r = res.body.id;
      const tok = token(users(1)[0], ['staff'], { restaurants: [r] });
      const [dyn, board] = await Promise.all([mp(server, `/restaurants/${r}`, tok, mode), mp(server, '/restaurant', tok, mode)]);
      assert.deepEqual(await emitAck(board, 'join:restaurant', { restaurantId: r }), { success: true, data: { room: `restaurant:${r}` } });
      const body = {
        order_number: orderNumber++, type: 'dine_in', table_number: '2', total: 12.25,
        items: [{ name: 'bao', quantity: 2, station: 'kitchen' }],
      };
      const created = await api(server, 'POST', `/api/restaurants/${r}/orders`, { ...service, body });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.deepEqual(await next(dyn, 'order:created'), created.body);
      assert.deepEqual(await next(board, 'order:created'), created.body);
      const sync = new Promise((resolve) => dyn.once('orders:sync:complete', resolve));
      const synced = await emitAck(dyn, 'orders:sync', { restaurantId: r });
      assert.equal(synced.success, true, JSON.stringify(synced));
      assert.deepEqual(await sync, synced.data);
      assert.ok(JSON.stringify(synced.data).includes(created.body.id), JSON.stringify(synced.data));
      const moved = await emitAck(dyn, 'order:update_status', { orderId: created.body.id, status: 'preparing', restaurantId: r });
      assert.equal(moved.success, true, JSON.stringify(moved));
      const bad = await emitAck(dyn, 'order:update_status', { orderId: created.body.id, status: 'eaten', restaurantId: r });
      assert.equal(bad.success, false, JSON.stringify(bad));
      assert.deepEqual(Object.keys(bad.error).sort(), ['code', 'message']);
      // A refused connect is a connect_error with the code, as with JSON.
      await assert.rejects(mp(server, `/restaurants/${r}`, undefined, mode), (err) => err.message === 'AUTH_FAILED');
    });
  });
}

describe('one parser per server', () => {
  test('a JSON client does not get into a msgpack server, nor a msgpack client into a JSON one', async () => {
    const tok = token(users(1)[0]);
    assert.match(await outcome(server, '/chat', { token: tok, transports: ['websocket'] }), /^not connected/);
    assert.match(await outcome(json, '/chat', { token: tok, transports: ['websocket'], parser: msgpackParser }), /^not connected/);
    // Each on its own kind of server is fine.
    assert.equal(await outcome(json, '/chat', { token: tok, transports: ['websocket'] }), 'connected');
    assert.equal(await outcome(server, '/chat', { token: tok, transports: ['websocket'], parser: msgpackParser }), 'connected');
  });
});
