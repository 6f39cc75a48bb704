// `/ws`, the envelope dialect of seed 003 (contract §7.1, §7.2, §7.5 publish and
// grants) and the bare dialect of seed 002 (§7.3), as a Node client using the `ws`
// package (what seed 003's shop front-end and its backends run) sees it.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import {
  RFC3339_MS, api, assertStops, closeWebSockets, connect, createConversation, emitAck, next, openWs,
  startServer, test, token, users,
} from './harness.mjs';

/**
 * Opens `/ws` on `server` with `query`; resolves with a client that records every
 * message, or rejects with the HTTP status of a refused upgrade. `bare`: the seed 002
 * dialect (no envelope, no timestamp).
 */
function connectWs(server, query = '', options = {}, { bare = false } = {}) {
  const check = (message) => {
    if (!bare) assert.match(message.timestamp, RFC3339_MS, JSON.stringify(message));
  };
  return openWs(`${server.url.replace('http', 'ws')}/ws${query}`, options, { check });
}

async function authed(server, jwt) {
  const client = await connectWs(server, `?token=${jwt}`);
  const ok = await client.next();
  assert.equal(ok.type, 'auth_success', JSON.stringify(ok));
  return client;
}

async function publish(server, channel, type, payload) {
  const res = await api(server, 'POST', '/api/publish', {
    user: 1, roles: ['service'], body: { channel, type, payload },
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.deepEqual(res.body, { channel, type });
}

/** A bare-dialect client: the token in `Authorization: Bearer`, as seed 002's apps send it. */
async function bareWs(server, jwt) {
  const client = await connectWs(server, '', { headers: { Authorization: `Bearer ${jwt}` } }, { bare: true });
  // A round trip (an error reply) proves the connection is registered on its user: channel.
  assert.equal((await client.request({})).error.code, 'BAD_REQUEST');
  return client;
}

/** Rate limits out of the way of tests that send a lot. */
const GENEROUS_RATE = { RATE_LIMIT_PER_SEC: '1000', RATE_LIMIT_BURST: '1000' };

/** Closes the sockets of a describe block and stops its server. */
function closeAndStop(server) {
  closeWebSockets();
  return assertStops(server);
}

describe('/ws envelope dialect', () => {
  let server;
  before(async () => {
    server = await startServer(GENEROUS_RATE);
  });
  after(() => closeAndStop(server));

  test('?token= is confirmed with auth_success and the user: channel gets publishes', async () => {
    const [u] = users(1);
    const client = await connectWs(server, `?token=${token(u)}`);
    const ok = await client.next();
    assert.deepEqual({ type: ok.type, payload: ok.payload }, { type: 'auth_success', payload: { user_id: u } });
    await publish(server, `user:${u}`, 'cart_update', { action: 'item_added', cart: { item_count: 3, total: 1500.0 } });
    const pushed = await client.next('cart_update');
    assert.deepEqual(pushed.payload, { action: 'item_added', cart: { item_count: 3, total: 1500.0 } });
    assert.equal(pushed.id, undefined);
  });

  test('auth by message (seed 003 option 2) and ping/pong echo the request id', async () => {
    const [u] = users(1);
    const client = await connectWs(server);
    const ok = await client.request({ type: 'auth', payload: { token: token(u) }, id: 'auth-1' });
    assert.equal(ok.type, 'auth_success');
    assert.equal(ok.id, 'auth-1');
    assert.equal(ok.payload.user_id, u);
    const pong = await client.request({ type: 'ping', payload: {}, id: 'hb-1', timestamp: new Date().toISOString() });
    assert.equal(pong.type, 'pong');
    assert.equal(pong.id, 'hb-1');
  });

  test('a bad token: auth_error, the connection stays open and unauthenticated', async () => {
    const client = await connectWs(server, '?token=not-a-jwt');
    assert.deepEqual((await client.next()).payload, { error: 'Invalid or expired token' });
    const refused = await client.request({ type: 'subscribe', payload: { channel: 'user:1' }, id: 's' });
    assert.equal(refused.type, 'error');
    assert.equal(refused.payload.code, 'unauthorized');
    assert.equal(refused.id, 's');
    const expired = token(5, ['user'], { exp: Math.floor(Date.now() / 1000) - 3600 });
    assert.equal((await client.request({ type: 'auth', payload: { token: expired } })).type, 'auth_error');
    const joined = await client.request({ type: 'subscribe', payload: { channel: 'public:announcements' } });
    assert.deepEqual(joined.payload, { channel: 'public:announcements' });
  });

  test('order:<id>: the customer set over REST subscribes, a stranger is forbidden', async () => {
    const [customer, stranger] = users(2);
    const restaurant = await api(server, 'POST', '/api/restaurants', { user: 1, roles: ['service'], body: { name: 'Shop' } });
    assert.equal(restaurant.status, 201);
    const order = await api(server, 'POST', `/api/restaurants/${restaurant.body.id}/orders`, {
      user: 1,
      roles: ['service'],
      body: {
        order_number: 'ORD-001', type: 'online', total: 1500, customer_id: customer,
        items: [{ name: 'iPhone 15', quantity: 1, station: 'pos' }],
      },
    });
    assert.equal(order.status, 201, JSON.stringify(order.body));
    const channel = `order:${order.body.id}`;
    const mine = await authed(server, token(customer));
    assert.equal((await mine.request({ type: 'subscribe', payload: { channel } })).type, 'subscribed');
    const other = await authed(server, token(stranger));
    const refused = await other.request({ type: 'subscribe', payload: { channel } });
    assert.equal(refused.payload.code, 'forbidden');
    await publish(server, channel, 'order_update', { order_id: order.body.id, status: 'shipped' });
    assert.equal((await mine.next('order_update')).payload.status, 'shipped');
    await other.nothing();
  });

  test('tenant:<id> follows the tenant_id claim', async () => {
    const [u] = users(1);
    const client = await authed(server, token(u, ['user'], { tenant_id: 'shop-7' }));
    assert.equal((await client.request({ type: 'subscribe', payload: { channel: 'tenant:shop-7' } })).type, 'subscribed');
    assert.equal((await client.request({ type: 'subscribe', payload: { channel: 'tenant:shop-8' } })).payload.code, 'forbidden');
    await publish(server, 'tenant:shop-7', 'inventory_alert', { sku: 'IPH15-BLK-128', current_quantity: 5 });
    assert.equal((await client.next('inventory_alert')).payload.current_quantity, 5);
  });

  test('a grant lets a user in; revoking it sends unsubscribed', async () => {
    const [u] = users(1);
    const channel = 'support:ticket-42';
    const client = await authed(server, token(u));
    assert.equal((await client.request({ type: 'subscribe', payload: { channel } })).payload.code, 'forbidden');
    const grant = { user: 1, roles: ['service'], body: { channel, user_id: u } };
    const granted = await api(server, 'POST', '/api/channels/grants', grant);
    assert.equal(granted.status, 201);
    assert.equal(granted.body.channel, channel);
    assert.equal(granted.body.user_id, u);
    assert.match(granted.body.created_at, RFC3339_MS);
    assert.equal((await client.request({ type: 'subscribe', payload: { channel } })).type, 'subscribed');
    const revoked = await api(server, 'DELETE', '/api/channels/grants', grant);
    assert.equal(revoked.status, 204);
    assert.deepEqual((await client.next('unsubscribed')).payload, { channel });
    await publish(server, channel, 'chat', {});
    await client.nothing();
  });

  test('bad frames get errors in the dialect and the connection stays open', async () => {
    const client = await connectWs(server);
    const cases = [
      ['{oops', 'invalid_message'],
      ['[1,2,3]', 'invalid_message'],
      [JSON.stringify({ type: 'subscribe', payload: 'public:x' }), 'invalid_message'],
      [JSON.stringify({ type: 'fly', payload: {} }), 'unknown_type'],
      [JSON.stringify({ type: 'subscribe', payload: {} }), 'invalid_payload'],
      [JSON.stringify({ type: 'subscribe', payload: { channel: 42 } }), 'invalid_payload'],
      [JSON.stringify({ type: 'subscribe', payload: { channel: 'nocolon' } }), 'invalid_payload'],
      [JSON.stringify({ type: 'subscribe', payload: { channel: `public:${'x'.repeat(200)}` } }), 'invalid_payload'],
    ];
    for (const [frame, code] of cases) {
      client.send(frame);
      const error = await client.next();
      assert.equal(error.type, 'error', frame);
      assert.equal(error.payload.code, code, frame);
      assert.equal(typeof error.payload.message, 'string');
    }
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await client.next()).payload.code, 'invalid_message');
    assert.equal((await client.request({ type: 'ping' })).type, 'pong');
  });

  test('/metrics counts /ws connections and messages', async () => {
    const client = await connectWs(server);
    await client.request({ type: 'ping' });
    const { body: text } = await api(server, 'GET', '/metrics');
    assert.match(text, /switchboard_ws_connections\{route="\/ws"\} [1-9]/);
    assert.match(text, /switchboard_ws_messages_in_total\{type="ping"\} [1-9]/);
    assert.match(text, /switchboard_ws_messages_out_total\{type="pong"\} [1-9]/);
  });
});

describe('/ws limits', () => {
  let server;
  before(async () => {
    server = await startServer({ ALLOWED_ORIGINS: 'https://shop.example', WS_MAX_MESSAGE_BYTES: '2048' });
  });
  after(async () => {
    closeWebSockets();
    await server.stop();
  });

  test('a message over WS_MAX_MESSAGE_BYTES closes the connection with 1009', async () => {
    const client = await connectWs(server);
    assert.equal((await client.request({ type: 'ping', id: 'x'.repeat(1500) })).type, 'pong');
    client.send({ type: 'ping', id: 'x'.repeat(4000) });
    const { code } = await client.closed;
    assert.equal(code, 1009);
  });

  test('an Origin outside ALLOWED_ORIGINS is refused with 403 before the upgrade', async () => {
    const refused = await connectWs(server, '', { headers: { Origin: 'https://evil.example' } }).catch((e) => e);
    assert.equal(refused.status, 403);
    assert.equal(refused.body?.error?.code, 'FORBIDDEN');
    const ok = await connectWs(server, '', { headers: { Origin: 'https://shop.example' } });
    assert.equal((await ok.request({ type: 'ping' })).type, 'pong');
  });
});

describe('/ws at shutdown', () => {
  test('SIGTERM closes /ws connections with 1001 and the process exits 0', async () => {
    const server = await startServer();
    let stopped;
    try {
      const [u] = users(1);
      const client = await authed(server, token(u));
      assert.equal((await client.request({ type: 'ping' })).type, 'pong');
      server.terminate();
      const { code } = await client.closed;
      assert.equal(code, 1001);
    } finally {
      stopped = await server.stop();
    }
    assert.equal(stopped.code, 0);
  });
});

describe('/ws bare dialect (seed 002) and domain events in both dialects', () => {
  let server;
  before(async () => {
    server = await startServer(GENEROUS_RATE);
  });
  after(() => closeAndStop(server));

  test('Authorization: Bearer selects the bare dialect; a bad token is refused with 401', async () => {
    const [u] = users(1);
    const forged = `${token(u)}x`;
    const refused = await connectWs(server, '', { headers: { Authorization: `Bearer ${forged}` } }).catch((e) => e);
    assert.equal(refused.status, 401);
    assert.equal(refused.body?.error?.code, 'AUTH_INVALID');
    const noToken = await connectWs(server, '?format=bare').catch((e) => e);
    assert.equal(noToken.status, 401);
    const client = await bareWs(server, token(u));
    client.ws.send(Buffer.from([1]), { binary: true });
    assert.equal((await client.next()).error.code, 'BAD_REQUEST');
    const notJson = await client.request('{oops');
    assert.equal(notJson.error.code, 'BAD_REQUEST');
    assert.equal(typeof notJson.error.message, 'string');
  });

  test('a bare send is stored and reaches bare, envelope and socket.io members once each', async () => {
    const [ann, bob, carol] = users(3);
    const conversation = await createConversation(server, ann, [bob, carol]);
    const annWs = await bareWs(server, token(ann, ['user'], { name: 'Ann' }));
    const bobWs = await bareWs(server, token(bob));
    const carolWs = await authed(server, token(carol));
    const bobSio = await connect(server.url, '/chat', { token: token(bob) });
    assert.equal((await emitAck(bobSio, 'conversation:join', { conversationId: conversation._id })).ok, true);

    annWs.send({ conversation_id: conversation._id, content: ' hello ', type: 'image' });
    const own = await annWs.next();
    assert.equal(own.content, 'hello');
    assert.equal(own.sender_id, ann);
    assert.equal(own.message_type, 'image');
    assert.equal(own.is_edited, false);
    assert.equal(own.is_deleted, false);
    assert.match(own.created_at, RFC3339_MS);
    assert.deepEqual(await bobWs.next(), own);
    const envelope = await carolWs.next('chat_message');
    assert.deepEqual(envelope.payload, {
      conversation_id: conversation._id,
      message: {
        id: own.id, sender_id: ann, sender_name: 'Ann', content: 'hello',
        message_type: 'image', created_at: own.created_at,
      },
    });
    assert.equal((await next(bobSio, 'message:created'))._id, own.id);

    // An edit on /chat comes back in full, with the flag, to the bare dialect only.
    const annSio = await connect(server.url, '/chat', { token: token(ann) });
    assert.equal((await emitAck(annSio, 'message:edit', { messageId: own.id, content: 'v2' })).ok, true);
    const edited = await bobWs.next();
    assert.equal(edited.id, own.id);
    assert.equal(edited.content, 'v2');
    assert.equal(edited.is_edited, true);
    assert.equal((await annWs.next()).is_edited, true);
    await carolWs.nothing();
    await bobWs.nothing(0);
  });

  test('an envelope chat_message echoes its id and reaches the other members', async () => {
    const [ann, bob] = users(2);
    const conversation = await createConversation(server, ann, [bob]);
    const annWs = await authed(server, token(ann));
    const bobWs = await bareWs(server, token(bob));
    const reply = await annWs.request({
      type: 'chat_message', id: 'req-1', payload: { conversation_id: conversation._id, content: 'hi' },
    });
    assert.equal(reply.type, 'chat_message');
    assert.equal(reply.id, 'req-1');
    assert.equal(reply.payload.message.content, 'hi');
    assert.equal((await bobWs.next()).id, reply.payload.message.id);
    const refused = await annWs.request({ type: 'chat_message', id: 'req-2', payload: { conversation_id: conversation._id } });
    assert.equal(refused.type, 'error');
    assert.equal(refused.id, 'req-2');
    assert.equal(refused.payload.code, 'invalid_payload');
  });

  test('notifications: created over REST in both dialects; read and deleted on /notifications in bare', async () => {
    const [u] = users(1);
    const envelope = await authed(server, token(u));
    const bare = await bareWs(server, token(u));
    const created = await api(server, 'POST', '/api/notifications', {
      user: 1,
      roles: ['service'],
      body: { user_id: u, type: 'system', title: 'Order shipped', content: 'On its way', link: '/orders/1', priority: 'high' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body._id;
    assert.deepEqual((await envelope.next('notification')).payload, {
      id, title: 'Order shipped', body: 'On its way', action_url: '/orders/1', icon: 'system',
      priority: 'high', created_at: created.body.created_at,
    });
    assert.deepEqual(await bare.next(), {
      id, user_id: u, type: 'system', title: 'Order shipped', message: 'On its way',
      link: { String: '/orders/1', Valid: true }, is_read: false, created_at: created.body.created_at,
      event: 'created',
    });
    const sio = await connect(server.url, '/notifications', { token: token(u) });
    assert.equal((await emitAck(sio, 'notification:read', { notificationId: id })).ok, true);
    assert.deepEqual(await bare.next(), { event: 'read', notification_id: id });
    assert.equal((await emitAck(sio, 'notification:read_all', {})).ok, true);
    assert.deepEqual(await bare.next(), { event: 'read_all' });
    assert.equal((await emitAck(sio, 'notification:delete', { notificationId: id })).ok, true);
    assert.deepEqual(await bare.next(), { event: 'deleted', notification_id: id });
    await envelope.nothing();
  });

  test("an order's status change reaches order:<id> as order_update", async () => {
    const [customer] = users(1);
    const restaurant = await api(server, 'POST', '/api/restaurants', { user: 1, roles: ['service'], body: { name: 'Shop' } });
    const order = await api(server, 'POST', `/api/restaurants/${restaurant.body.id}/orders`, {
      user: 1,
      roles: ['service'],
      body: {
        order_number: 'ORD-002', type: 'online', total: 10, customer_id: customer,
        items: [{ name: 'Case', quantity: 1, station: 'pos' }],
      },
    });
    assert.equal(order.status, 201, JSON.stringify(order.body));
    const client = await authed(server, token(customer));
    const channel = `order:${order.body.id}`;
    assert.equal((await client.request({ type: 'subscribe', payload: { channel } })).type, 'subscribed');
    const patched = await api(server, 'PATCH', `/api/orders/${order.body.id}`, {
      user: 1, roles: ['service'], body: { status: 'confirmed' },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual((await client.next('order_update')).payload, {
      order_id: order.body.id, status: 'confirmed', previous_status: 'new', updated_at: patched.body.updated_at,
    });
  });
});
