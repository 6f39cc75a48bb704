// Seed 001's reconnect recipe, run as the seed writes it by the official socket.io-client
// against a server killed with SIGKILL and started again on the same port and database:
// the tablet comes back by itself, re-joins, calls `orders:sync` with no payload and gets
// the board, orders created while it was away included; `connection:status` greets each
// connect.
//
// One change to the seed's code, which socket.io-client v3 made: `reconnect` is an event
// of the Manager (`socket.io.on('reconnect')`), no longer of the socket; a listener on
// `socket.on('reconnect')` never fires with any v3+ client, whatever the server does
// (PROTOCOL.md §8 lists it).
import assert from 'node:assert/strict';
import { once } from 'node:events';

import { io } from 'socket.io-client';

import { api, startServer, test, token, users } from './harness.mjs';

const service = { user: 500, roles: ['service'] };

const createOrder = async (server, restaurantId, table) => {
  const res = await api(server, 'POST', `/api/restaurants/${restaurantId}/orders`, {
    ...service,
    body: { order_number: `T${table}`, type: 'dine_in', table_number: table, items: [{ name: 'Soup', quantity: 1, station: 'kitchen' }], total: 9.5 },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
};

/** Resolves with the next `event` whose payload passes `accept`, within `ms`. */
function nextWhere(socket, event, accept, ms = 15_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.off(event, on); reject(new Error(`no ${event} within ${ms} ms`)); }, ms);
    const on = (payload) => {
      if (!accept(payload)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(payload);
    };
    socket.on(event, on);
  });
}

test('seed 001: after a forced restart the tablet reconnects, re-joins and syncs with orders:sync and no payload', async () => {
  const first = await startServer();
  let second;
  const socket = { current: null };
  try {
    const created = await api(first, 'POST', '/api/restaurants', { ...service, body: { name: 'Bistro' } });
    assert.equal(created.status, 201);
    const restaurantId = created.body.id;
    const before = await createOrder(first, restaurantId, '1');

    // The seed's connection example and reconnection strategy, verbatim.
    const s = io(first.url.replace(/^http/, 'ws'), {
      auth: { token: token(users(1)[0], ['staff'], { restaurants: [restaurantId] }) },
      transports: ['websocket'],
      reconnection: true,
      reconnectionAttempts: Infinity,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
    });
    socket.current = s;
    const statuses = [];
    s.on('connection:status', (status) => statuses.push(status));
    let reconnects = 0;
    s.io.on('reconnect', (attemptNumber) => {
      reconnects = attemptNumber;
      // Re-join rooms and sync state
      s.emit('join:restaurant', restaurantId);
      s.emit('orders:sync');
    });
    await once(s, 'connect');
    s.emit('join:restaurant', restaurantId);
    s.emit('orders:sync');
    const synced = await nextWhere(s, 'orders:sync:complete', () => true);
    assert.equal(synced.restaurantId, restaurantId);
    assert.deepEqual(synced.orders.map((o) => o.id), [before.id]);

    // kill -9, then the same binary on the same port and database.
    const gone = once(s, 'disconnect');
    first.child.kill('SIGKILL');
    await first.exited;
    await gone;
    second = await startServer({ BIND_ADDR: first.env.BIND_ADDR, DATABASE_URL: first.env.DATABASE_URL });
    const during = await createOrder(second, restaurantId, '2');

    // The recipe runs by itself: the sync after the reconnect has both orders.
    const resynced = await nextWhere(s, 'orders:sync:complete', (d) => d.orders.some((o) => o.id === during.id));
    assert.ok(reconnects >= 1, 'the Manager reported a reconnect');
    assert.equal(resynced.restaurantId, restaurantId);
    assert.deepEqual(resynced.orders.map((o) => o.id), [before.id, during.id]);
    // Back in the room: a new order reaches it live.
    const live = nextWhere(s, 'order:created', () => true);
    const after = await createOrder(second, restaurantId, '3');
    assert.equal((await live).id, after.id);
    // `connection:status` greeted the first connect and the reconnect.
    assert.deepEqual(statuses, [{ state: 'connected' }, { state: 'connected' }]);
  } finally {
    socket.current?.close();
    if (second) await second.stop();
    await first.stop();
  }
});
