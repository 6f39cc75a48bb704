// Restaurant OS clients (KDS / POS tablets) with the official socket.io-client (contract
// §6, §8, §9): the default namespace `/` as the seed's clients use it
// (`io('ws://host:port', { auth: { token } })`), `/restaurant` and `/restaurants/<id>`;
// rooms, station routing, status moves, tables, batch mode, alerts, isolation and the
// REST order routes, over each transport setup.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';

import {
  RFC3339_MS, TRANSPORTS, UUID, api, assertStops, connect, connectOutcome, emitAck, next, none,
  startServer, test, token, users,
} from './harness.mjs';

const BATCH_MS = 300;

let server;
before(async () => {
  // One server for every test: batch mode only concerns sockets that ask for it.
  server = await startServer({ ORDER_BATCH_MS: String(BATCH_MS) });
});
after(() => assertStops(server));

const SERVICE = 500;
const service = { user: SERVICE, roles: ['service'] };
const STATUS_CHANGED_KEYS = ['orderId', 'previousStatus', 'restaurant_id', 'status', 'timestamp'];

/** A principal's token: `roles` acting in `restaurants`. */
const kdsToken = (restaurants, roles = ['staff'], user = users(1)[0]) => token(user, roles, { restaurants });

/**
 * A tablet on `ns`. The default namespace is reached the way Restaurant OS does it:
 * `io('ws://host:port', …)`, no path.
 */
function tablet(mode, ns, tok) {
  if (ns === '/') return connect(server.url.replace(/^http/, 'ws'), '', { ...mode.opts, token: tok });
  return connect(server.url, ns, { ...mode.opts, token: tok });
}

/** Resolves with the connect_error message (the code), or 'connected'. */
function refusal(mode, ns, opts) {
  return connectOutcome(server.url, ns, { ...mode.opts, ...opts });
}

function assertSuccess(ack, what = '') {
  assert.equal(ack?.success, true, `${what} expected success, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error, undefined);
  return ack.data;
}

function assertFailure(ack, code, field) {
  assert.equal(ack?.success, false, `expected ${code}, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error?.code, code, JSON.stringify(ack));
  assert.deepEqual(Object.keys(ack).sort(), ['error', 'success']);
  assert.deepEqual(Object.keys(ack.error).sort(), ['code', 'message']);
  assert.equal(typeof ack.error.message, 'string');
  if (field !== undefined) {
    assert.ok(ack.error.message.includes(field), `message should name "${field}": ${JSON.stringify(ack)}`);
  }
}

function assertOrder(o, restaurantId) {
  const keys = Object.keys(o).sort();
  const required = ['created_at', 'id', 'items', 'order_number', 'restaurant_id', 'status', 'total', 'type', 'updated_at'];
  assert.deepEqual(keys.filter((k) => k !== 'table_number'), required, JSON.stringify(o));
  assert.match(o.id, UUID);
  assert.equal(typeof o.order_number, 'string');
  assert.ok(['new', 'pending', 'confirmed', 'preparing', 'ready', 'completed', 'cancelled'].includes(o.status), o.status);
  assert.ok(['dine_in', 'takeout', 'delivery', 'online'].includes(o.type), o.type);
  if ('table_number' in o) assert.equal(typeof o.table_number, 'string');
  assert.ok(Array.isArray(o.items) && o.items.length > 0);
  for (const it of o.items) {
    assert.deepEqual(Object.keys(it).filter((k) => k !== 'notes').sort(), ['id', 'name', 'quantity', 'station'], JSON.stringify(it));
    assert.match(it.id, UUID);
    assert.ok(Number.isInteger(it.quantity));
    assert.ok(['kitchen', 'expo', 'bar', 'pos'].includes(it.station), it.station);
  }
  assert.equal(typeof o.total, 'number');
  assert.match(o.created_at, RFC3339_MS);
  assert.match(o.updated_at, RFC3339_MS);
  assert.equal(o.restaurant_id, restaurantId);
}

function assertStatusChanged(e, { orderId, previousStatus, status, restaurantId }) {
  assert.deepEqual(Object.keys(e).sort(), STATUS_CHANGED_KEYS, JSON.stringify(e));
  assert.equal(e.orderId, orderId);
  assert.equal(e.previousStatus, previousStatus);
  assert.equal(e.status, status);
  assert.equal(e.restaurant_id, restaurantId);
  assert.match(e.timestamp, RFC3339_MS);
}

/** `POST /api/restaurants` with a service token; returns the new id. */
async function createRestaurant(name = 'Bistro') {
  const res = await api(server, 'POST', '/api/restaurants', { ...service, body: { name } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(Object.keys(res.body).sort(), [
    'address', 'created_at', 'cuisine', 'id', 'name', 'section', 'updated_at',
  ]);
  assert.match(res.body.id, UUID);
  assert.equal(res.body.name, name);
  assert.equal(res.body.address, null);
  assert.equal(res.body.cuisine, null);
  assert.equal(res.body.section, 'main');
  return res.body.id;
}

let orderNumber = 100;
/** `POST /api/restaurants/:id/orders` (service token by default); returns the Order. */
async function createOrder(restaurantId, { table, stations = ['kitchen'], type = 'dine_in', total = 23.5, who = service } = {}) {
  const body = {
    order_number: orderNumber++,
    type,
    items: stations.map((station, i) => ({ name: `dish ${i}`, quantity: i + 1, station })),
    total,
  };
  if (table !== undefined) body.table_number = table;
  const res = await api(server, 'POST', `/api/restaurants/${restaurantId}/orders`, { ...who, body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assertOrder(res.body, restaurantId);
  return res.body;
}

async function alert(restaurantId, body, who = service) {
  return api(server, 'POST', `/api/restaurants/${restaurantId}/alerts`, { ...who, body });
}

const join = async (socket, payload) => assertSuccess(await emitAck(socket, 'join:restaurant', payload), 'join:restaurant');
const joinStation = async (socket, restaurantId, station) =>
  assertSuccess(await emitAck(socket, 'join:station', { restaurantId, station }), 'join:station');
const updateStatus = (socket, restaurantId, order, status) =>
  emitAck(socket, 'order:update_status', { orderId: order.id, status, restaurantId });

/** Records every event a connected socket gets from now on, in arrival order. */
function record(socket) {
  const seen = [];
  socket.onAny((event, payload) => seen.push({ event, payload }));
  return seen;
}

/** Asserts that no order-related event at all is recorded or arrives within `ms`. */
const ORDER_EVENTS = [
  'order:created', 'order:updated', 'order:status_changed', 'order:deleted', 'table:ready',
  'table:completed', 'kitchen:alert', 'orders:batch_update',
];
async function silent(socket, ms = 300) {
  for (const [i, e] of ORDER_EVENTS.entries()) await none(socket, e, i === 0 ? ms : 0);
}

for (const mode of TRANSPORTS) {
  describe(`restaurant namespaces over ${mode.name}`, () => {
    test('join:restaurant with a bare string and with { restaurantId } acks { success: true, data: { room } } on / and /restaurant', async () => {
      const r = await createRestaurant();
      const tok = kdsToken([r]);
      const [root, ns] = await Promise.all([tablet(mode, '/', tok), tablet(mode, '/restaurant', tok)]);
      const room = { room: `restaurant:${r}` };
      assert.deepEqual(await emitAck(root, 'join:restaurant', r), { success: true, data: room });
      assert.deepEqual(await emitAck(ns, 'join:restaurant', { restaurantId: r }), { success: true, data: room });
      // The bare string is trimmed; joining again is fine.
      assert.deepEqual(await emitAck(ns, 'join:restaurant', `  ${r} `), { success: true, data: room });
      assert.deepEqual(await emitAck(root, 'join:restaurant', { restaurantId: r, batch: false }), { success: true, data: room });
      // Joined: both hear the restaurant's orders, once.
      const order = await createOrder(r, { table: 3 });
      assert.equal(order.table_number, '3');
      for (const s of [root, ns]) assert.deepEqual(await next(s, 'order:created'), order);
      await none(root, 'order:created');
      await none(ns, 'order:created', 0);
    });

    test('join:restaurant refusals: PERMISSION_DENIED before INVALID_RESTAURANT, INVALID_PAYLOAD naming restaurantId', async () => {
      const [mine, theirs] = await Promise.all([createRestaurant(), createRestaurant()]);
      const unknown = randomUUID();
      const s = await tablet(mode, '/', kdsToken([mine, unknown]));
      assertFailure(await emitAck(s, 'join:restaurant', { restaurantId: theirs }), 'PERMISSION_DENIED');
      assertFailure(await emitAck(s, 'join:restaurant', theirs), 'PERMISSION_DENIED');
      assertFailure(await emitAck(s, 'join:restaurant', { restaurantId: randomUUID() }), 'PERMISSION_DENIED');
      assertFailure(await emitAck(s, 'join:restaurant', { restaurantId: unknown }), 'INVALID_RESTAURANT');
      assertFailure(await emitAck(s, 'join:restaurant', unknown), 'INVALID_RESTAURANT');
      for (const payload of ['not-a-uuid', { restaurantId: 7 }, {}, { restaurantId: 'x' }]) {
        const ack = await emitAck(s, 'join:restaurant', payload);
        assertFailure(ack, 'INVALID_PAYLOAD');
        assert.ok(ack.error.message.startsWith('restaurantId'), `${JSON.stringify(payload)} -> ${JSON.stringify(ack)}`);
      }
      assertFailure(await emitAck(s, 'join:restaurant', [mine]), 'INVALID_PAYLOAD');
      assertFailure(await emitAck(s, 'join:restaurant', { restaurantId: mine, batch: 'yes' }), 'INVALID_PAYLOAD', 'batch');
      assertFailure(await emitAck(s, 'orders:explode', {}), 'INVALID_PAYLOAD', 'unknown event');
      // Every event checks access the same way.
      const checks = [
        ['join:station', (id) => ({ restaurantId: id, station: 'kitchen' })],
        ['orders:sync', (id) => ({ restaurantId: id })],
        ['table:complete', (id) => ({ restaurantId: id, tableNumber: '1' })],
        ['order:update_status', (id) => ({ restaurantId: id, orderId: randomUUID(), status: 'ready' })],
      ];
      for (const [event, payload] of checks) {
        assertFailure(await emitAck(s, event, payload(theirs)), 'PERMISSION_DENIED');
        assertFailure(await emitAck(s, event, payload(unknown)), 'INVALID_RESTAURANT');
      }
      // Without an ack the refusal is an `error` event to this socket.
      s.emit('join:restaurant', { restaurantId: theirs });
      const err = await next(s, 'error');
      assert.deepEqual(err, { code: 'PERMISSION_DENIED', message: err.message });
      assert.equal(typeof err.message, 'string');
      // A service token without the restaurant listed is refused on sockets too.
      const svc = await tablet(mode, '/restaurant', kdsToken([], ['service']));
      assertFailure(await emitAck(svc, 'join:restaurant', { restaurantId: theirs }), 'PERMISSION_DENIED');
      // An admin may join any existing restaurant.
      const admin = await tablet(mode, '/restaurant', kdsToken([], ['admin']));
      assert.deepEqual(await emitAck(admin, 'join:restaurant', theirs), { success: true, data: { room: `restaurant:${theirs}` } });
      assertFailure(await emitAck(admin, 'join:restaurant', randomUUID()), 'INVALID_RESTAURANT');
      // The refused socket is not in the room.
      const order = await createOrder(theirs);
      assert.deepEqual(await next(admin, 'order:created'), order);
      await none(s, 'order:created');
      await none(svc, 'order:created', 0);
    });

    test('/restaurants/<id>: connect_error PERMISSION_DENIED, INVALID_RESTAURANT, AUTH_FAILED; admitted sockets are in the room at once', async () => {
      const [r, other] = await Promise.all([createRestaurant(), createRestaurant()]);
      const ghost = randomUUID();
      const now = Math.floor(Date.now() / 1000);
      const cases = [
        [`/restaurants/${other}`, { token: kdsToken([r]) }, 'PERMISSION_DENIED'],
        [`/restaurants/${ghost}`, { token: kdsToken([r]) }, 'PERMISSION_DENIED'],
        [`/restaurants/${other}`, { token: kdsToken([r], ['manager', 'service']) }, 'PERMISSION_DENIED'],
        [`/restaurants/${ghost}`, { token: kdsToken([ghost]) }, 'INVALID_RESTAURANT'],
        [`/restaurants/${ghost}`, { token: kdsToken([], ['admin']) }, 'INVALID_RESTAURANT'],
        ['/restaurants/not-a-uuid', { token: kdsToken([], ['admin']) }, 'INVALID_RESTAURANT'],
        [`/restaurants/${r}`, {}, 'AUTH_FAILED'],
        [`/restaurants/${r}`, { token: 'nope' }, 'AUTH_FAILED'],
        [`/restaurants/${r}`, { token: token(1, ['staff'], { restaurants: [r], exp: now - 300 }) }, 'AUTH_FAILED'],
        ['/', {}, 'AUTH_FAILED'],
        ['/restaurant', { token: 'nope' }, 'AUTH_FAILED'],
      ];
      const got = await Promise.all(cases.map(([ns, opts]) => refusal(mode, ns, opts)));
      assert.deepEqual(got, cases.map(([, , code]) => code), JSON.stringify(cases.map(([ns], i) => [ns, got[i]])));

      // Admitted: already in restaurant:<id>, in single-event mode, without joining.
      const [dyn, admin] = await Promise.all([
        tablet(mode, `/restaurants/${r}`, kdsToken([r])),
        tablet(mode, `/restaurants/${other}`, kdsToken([], ['admin'])),
      ]);
      const order = await createOrder(r, { table: '4', stations: ['bar'] });
      assert.deepEqual(await next(dyn, 'order:created'), order);
      const theirs = await createOrder(other);
      assert.deepEqual(await next(admin, 'order:created'), theirs);
      await none(dyn, 'order:created');
      await none(admin, 'order:created', 0);
    });

    test('station routing: each order event reaches a socket once; a socket only in an unrelated station gets nothing', async () => {
      const [r, other] = await Promise.all([createRestaurant(), createRestaurant()]);
      const tok = kdsToken([r]);
      const [both, bar, expo, dyn] = await Promise.all([
        tablet(mode, '/', tok),
        tablet(mode, '/restaurant', tok),
        tablet(mode, '/', tok),
        tablet(mode, `/restaurants/${r}`, tok),
      ]);
      await join(both, { restaurantId: r });
      assert.deepEqual(
        await emitAck(both, 'join:station', { restaurantId: r, station: 'kitchen' }),
        { success: true, data: { room: `station:${r}:kitchen` } },
      );
      assert.deepEqual(await joinStation(bar, r, 'bar'), { room: `station:${r}:bar` });
      await joinStation(expo, r, 'expo');
      await joinStation(dyn, r, 'kitchen'); // restaurant room (from connect) and a station
      assertFailure(await emitAck(expo, 'join:station', { restaurantId: r, station: 'grill' }), 'INVALID_PAYLOAD', 'station');
      assertFailure(await emitAck(expo, 'join:station', { restaurantId: r }), 'INVALID_PAYLOAD', 'station');
      assertFailure(await emitAck(expo, 'join:station', { restaurantId: other, station: 'expo' }), 'PERMISSION_DENIED');

      const order = await createOrder(r, { table: 1, stations: ['kitchen', 'bar', 'kitchen'] });
      assert.equal(order.status, 'new');
      assert.equal(order.total, 23.5);
      assert.equal(order.table_number, '1');
      assert.deepEqual(order.items.map((i) => [i.name, i.quantity, i.station]), [
        ['dish 0', 1, 'kitchen'], ['dish 1', 2, 'bar'], ['dish 2', 3, 'kitchen'],
      ]);
      for (const s of [both, bar, dyn]) assert.deepEqual(await next(s, 'order:created'), order);

      const changed = assertSuccess(await updateStatus(both, r, order, 'confirmed'));
      for (const s of [both, bar, dyn]) assert.deepEqual(await next(s, 'order:status_changed'), changed);

      // Exactly once each, and nothing at all for the expo tablet.
      await none(both, 'order:created');
      for (const s of [bar, dyn]) await none(s, 'order:created', 0);
      for (const s of [both, bar, dyn]) await none(s, 'order:status_changed', 0);
      await silent(expo, 0);

      // An expo-only order reaches expo and the restaurant room, not the bar.
      const expoOrder = await createOrder(r, { stations: ['expo'] });
      for (const s of [expo, both, dyn]) assert.deepEqual(await next(s, 'order:created'), expoOrder);
      await none(bar, 'order:created');
    });

    test('orders:sync: orders:sync:complete and the same object in the ack, active orders oldest first', async () => {
      const [r, other] = await Promise.all([createRestaurant(), createRestaurant()]);
      const first = await createOrder(r, { table: '1' });
      const second = await createOrder(r, { table: '2', stations: ['bar'] });
      const done = await createOrder(r, { table: '3', stations: ['bar'] });
      const c = await tablet(mode, '/', kdsToken([r])); // no join needed
      assertSuccess(await updateStatus(c, r, done, 'completed'));

      const ack = await emitAck(c, 'orders:sync', { restaurantId: r });
      const data = assertSuccess(ack);
      assert.deepEqual(Object.keys(data).sort(), ['orders', 'restaurantId', 'syncedAt', 'truncated']);
      assert.equal(data.truncated, false);
      assert.equal(data.restaurantId, r);
      assert.match(data.syncedAt, RFC3339_MS);
      assert.deepEqual(await next(c, 'orders:sync:complete'), data);
      assert.deepEqual(data.orders, [first, second]);

      const onlyDone = assertSuccess(await emitAck(c, 'orders:sync', { restaurantId: r, statuses: ['completed'] }));
      assert.deepEqual(onlyDone.orders.map((o) => [o.id, o.status]), [[done.id, 'completed']]);
      await next(c, 'orders:sync:complete');
      const mixed = assertSuccess(await emitAck(c, 'orders:sync', { restaurantId: r, statuses: ['new', 'completed'] }));
      assert.deepEqual(mixed.orders.map((o) => o.id), [first.id, second.id, done.id]);
      await next(c, 'orders:sync:complete');

      assertFailure(await emitAck(c, 'orders:sync', { restaurantId: r, statuses: ['eaten'] }), 'INVALID_PAYLOAD', 'statuses');
      assertFailure(await emitAck(c, 'orders:sync', { restaurantId: other }), 'PERMISSION_DENIED');
      assertFailure(await emitAck(c, 'orders:sync', {}), 'INVALID_PAYLOAD', 'restaurantId');
      await none(c, 'orders:sync:complete', 100); // refusals emit nothing

      // Without an ack the event still comes.
      c.emit('orders:sync', { restaurantId: r });
      const pushed = await next(c, 'orders:sync:complete');
      assert.deepEqual(pushed.orders.map((o) => o.id), [first.id, second.id]);
    });

    test('order:update_status: forward (skipping allowed), backward INVALID_TRANSITION, same status a quiet success, cancel; order:status_changed to room and the order\'s stations', async () => {
      const [r, other] = await Promise.all([createRestaurant(), createRestaurant()]);
      const tok = kdsToken([r]);
      const [pos, kitchen, bar] = await Promise.all([tablet(mode, '/', tok), tablet(mode, '/', tok), tablet(mode, '/restaurant', tok)]);
      await join(pos, r);
      await joinStation(kitchen, r, 'kitchen');
      await joinStation(bar, r, 'bar');
      const order = await createOrder(r, { stations: ['kitchen'] });
      await next(pos, 'order:created');
      await next(kitchen, 'order:created');

      const ack = await updateStatus(kitchen, r, order, 'preparing'); // new → preparing skips two
      const changed = assertSuccess(ack);
      assertStatusChanged(changed, { orderId: order.id, previousStatus: 'new', status: 'preparing', restaurantId: r });
      assert.ok(Date.parse(changed.timestamp) >= Date.parse(order.updated_at));
      assert.deepEqual(await next(pos, 'order:status_changed'), changed);
      assert.deepEqual(await next(kitchen, 'order:status_changed'), changed);

      const ready = assertSuccess(await updateStatus(pos, r, order, 'ready'));
      assertStatusChanged(ready, { orderId: order.id, previousStatus: 'preparing', status: 'ready', restaurantId: r });
      for (const s of [pos, kitchen]) assert.deepEqual(await next(s, 'order:status_changed'), ready);

      const back = await updateStatus(pos, r, order, 'confirmed');
      assertFailure(back, 'INVALID_TRANSITION', 'status');
      assert.equal(back.error.message, 'status: cannot move from ready to confirmed');
      assertFailure(await updateStatus(pos, r, order, 'new'), 'INVALID_TRANSITION');
      // A retried tap (the status it already has): success, and nothing is broadcast.
      const again = assertSuccess(await updateStatus(pos, r, order, 'ready'));
      assertStatusChanged(again, { orderId: order.id, previousStatus: 'ready', status: 'ready', restaurantId: r });
      await none(kitchen, 'order:status_changed');
      await none(pos, 'order:status_changed', 0);

      const cancelled = assertSuccess(await updateStatus(pos, r, order, 'cancelled'));
      assertStatusChanged(cancelled, { orderId: order.id, previousStatus: 'ready', status: 'cancelled', restaurantId: r });
      for (const s of [pos, kitchen]) assert.deepEqual(await next(s, 'order:status_changed'), cancelled);
      assertFailure(await updateStatus(pos, r, order, 'completed'), 'INVALID_TRANSITION', 'cancelled');

      // Malformed, unknown, foreign.
      assertFailure(await updateStatus(pos, r, order, 'eaten'), 'INVALID_PAYLOAD', 'status');
      assertFailure(await emitAck(pos, 'order:update_status', { status: 'ready', restaurantId: r }), 'INVALID_PAYLOAD', 'orderId');
      assertFailure(await updateStatus(pos, r, { id: randomUUID() }, 'ready'), 'NOT_FOUND');
      assertFailure(await updateStatus(pos, other, order, 'ready'), 'PERMISSION_DENIED');
      const admin = await tablet(mode, '/', kdsToken([], ['admin']));
      const foreign = await createOrder(other, { stations: ['bar'] });
      assertFailure(await updateStatus(admin, r, foreign, 'ready'), 'NOT_FOUND');

      // Three moves, three events each; the bar never hears of a kitchen order.
      await none(pos, 'order:status_changed');
      await none(kitchen, 'order:status_changed', 0);
      await none(bar, 'order:status_changed', 0);
      await none(bar, 'order:created', 0);
      const sync = assertSuccess(await emitAck(pos, 'orders:sync', { restaurantId: r, statuses: ['cancelled'] }));
      assert.deepEqual(sync.orders.map((o) => [o.id, o.status]), [[order.id, 'cancelled']]);
      assert.equal(sync.orders[0].updated_at, cancelled.timestamp, 'timestamp is the order\'s updated_at');
    });

    test('5 tablets move one order at once: all succeed, exactly one moved it, the room hears one order:status_changed', async () => {
      const r = await createRestaurant();
      const tok = kdsToken([r]);
      const tablets = await Promise.all(Array.from({ length: 5 }, (_, i) => tablet(mode, i % 2 ? '/restaurant' : '/', tok)));
      const watcher = await tablet(mode, `/restaurants/${r}`, tok);
      for (let round = 0; round < 3; round++) {
        const order = await createOrder(r);
        await next(watcher, 'order:created');
        const acks = await Promise.all(tablets.map((t) => updateStatus(t, r, order, 'preparing')));
        // Each tap succeeds (the order is where it asked), but one of them moved it.
        for (const a of acks) assertSuccess(a);
        const winners = acks.filter((a) => a.data.previousStatus === 'new');
        assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(acks)}`);
        assertStatusChanged(winners[0].data, { orderId: order.id, previousStatus: 'new', status: 'preparing', restaurantId: r });
        assert.deepEqual(await next(watcher, 'order:status_changed'), winners[0].data);
      }
      await none(watcher, 'order:status_changed');
    });

    test('table:ready when the last active order of a table becomes ready, once', async () => {
      const r = await createRestaurant();
      const tok = kdsToken([r]);
      const a = await createOrder(r, { table: '5', stations: ['kitchen'] });
      const b = await createOrder(r, { table: 5, stations: ['bar'] });
      const elsewhere = await createOrder(r, { table: '6', stations: ['bar'] });
      const gone = await createOrder(r, { table: '5', stations: ['kitchen'] });
      const [pos, kitchen, expo, other] = await Promise.all([
        tablet(mode, '/', tok), tablet(mode, '/', tok), tablet(mode, '/', tok), tablet(mode, '/restaurant', tok),
      ]);
      await join(pos, r);
      await joinStation(kitchen, r, 'kitchen');
      await joinStation(expo, r, 'expo');
      const seen = record(pos);

      assertSuccess(await updateStatus(pos, r, gone, 'cancelled')); // cancelled: no longer active
      assertSuccess(await updateStatus(pos, r, elsewhere, 'preparing'));
      assertSuccess(await updateStatus(pos, r, a, 'ready'));
      await none(pos, 'table:ready');
      const last = assertSuccess(await updateStatus(other, r, b, 'ready'));
      const ready = await next(pos, 'table:ready');
      assert.deepEqual(Object.keys(ready).sort(), ['orderIds', 'readyAt', 'tableNumber']);
      assert.equal(ready.tableNumber, '5');
      assert.deepEqual(ready.orderIds, [a.id, b.id]);
      assert.match(ready.readyAt, RFC3339_MS);
      assert.deepEqual(await next(kitchen, 'table:ready'), ready); // station room of an order involved
      // After the move that caused it.
      const names = seen.map((e) => e.event);
      const lastChange = seen.findIndex((e) => e.event === 'order:status_changed' && e.payload.orderId === b.id);
      assert.ok(lastChange >= 0 && lastChange < names.indexOf('table:ready'), JSON.stringify(names));
      assert.deepEqual(seen[lastChange].payload, last);

      // Once.
      await none(pos, 'table:ready');
      await none(kitchen, 'table:ready', 0);
      await none(expo, 'table:ready', 0);
      // Another table's order becoming ready does not announce table 5 again, but its own.
      assertSuccess(await updateStatus(pos, r, elsewhere, 'ready'));
      assert.deepEqual((await next(pos, 'table:ready')).orderIds, [elsewhere.id]);

      // Two last orders made ready at the same time still announce the table once.
      const c1 = await createOrder(r, { table: '8' });
      const c2 = await createOrder(r, { table: '8' });
      const [x, y] = await Promise.all([updateStatus(pos, r, c1, 'ready'), updateStatus(other, r, c2, 'ready')]);
      assertSuccess(x);
      assertSuccess(y);
      const eight = await next(pos, 'table:ready');
      assert.equal(eight.tableNumber, '8');
      assert.deepEqual(eight.orderIds, [c1.id, c2.id]);
      await none(pos, 'table:ready');
    });

    test('table:complete: order:status_changed per order, then table:completed; an empty table answers orderIds: []', async () => {
      const r = await createRestaurant();
      const tok = kdsToken([r]);
      const a = await createOrder(r, { table: '9', stations: ['kitchen'] });
      const b = await createOrder(r, { table: '9', stations: ['bar'] });
      const stay = await createOrder(r, { table: '10', stations: ['kitchen'] });
      const [pos, kitchen, expo] = await Promise.all([tablet(mode, '/', tok), tablet(mode, '/', tok), tablet(mode, '/restaurant', tok)]);
      await join(pos, { restaurantId: r });
      await joinStation(kitchen, r, 'kitchen');
      await joinStation(expo, r, 'expo');
      assertSuccess(await updateStatus(pos, r, a, 'preparing'));
      await next(pos, 'order:status_changed');
      await next(kitchen, 'order:status_changed');
      const seen = record(pos);

      const done = assertSuccess(await emitAck(pos, 'table:complete', { tableNumber: 9, restaurantId: r }));
      assert.deepEqual(Object.keys(done).sort(), ['completedAt', 'orderIds', 'restaurantId', 'tableNumber']);
      assert.equal(done.tableNumber, '9');
      assert.equal(done.restaurantId, r);
      assert.deepEqual(done.orderIds, [a.id, b.id]);
      assert.match(done.completedAt, RFC3339_MS);

      const ca = await next(pos, 'order:status_changed');
      const cb = await next(pos, 'order:status_changed');
      assertStatusChanged(ca, { orderId: a.id, previousStatus: 'preparing', status: 'completed', restaurantId: r });
      assertStatusChanged(cb, { orderId: b.id, previousStatus: 'new', status: 'completed', restaurantId: r });
      assert.deepEqual(await next(pos, 'table:completed'), done);
      assert.deepEqual(seen.map((e) => e.event), ['order:status_changed', 'order:status_changed', 'table:completed']);
      // The kitchen hears its own order and the table.
      assert.deepEqual(await next(kitchen, 'order:status_changed'), ca);
      assert.deepEqual(await next(kitchen, 'table:completed'), done);
      await none(kitchen, 'order:status_changed');
      await none(kitchen, 'table:completed', 0);
      await none(pos, 'table:completed', 0);
      await none(pos, 'table:ready', 0);
      await silent(expo, 0);

      // Table 10 is untouched.
      const sync = assertSuccess(await emitAck(pos, 'orders:sync', { restaurantId: r }));
      assert.deepEqual(sync.orders.map((o) => o.id), [stay.id]);

      // Nothing active left at table 9, and no table 42 at all: success, [] and no broadcast.
      for (const tableNumber of ['9', ' 42 ']) {
        const empty = assertSuccess(await emitAck(pos, 'table:complete', { tableNumber, restaurantId: r }));
        assert.deepEqual(empty.orderIds, []);
        assert.equal(empty.tableNumber, tableNumber.trim());
      }
      assertFailure(await emitAck(pos, 'table:complete', { restaurantId: r }), 'INVALID_PAYLOAD', 'tableNumber');
      assertFailure(await emitAck(pos, 'table:complete', { restaurantId: r, tableNumber: '  ' }), 'INVALID_PAYLOAD', 'tableNumber');
      assertFailure(await emitAck(pos, 'table:complete', { restaurantId: r, tableNumber: 'x'.repeat(51) }), 'INVALID_PAYLOAD', 'tableNumber');
      await none(pos, 'table:completed');
      await none(pos, 'order:status_changed', 0);
    });

    test('table:complete with a blank or over-long tableNumber: INVALID_PAYLOAD naming tableNumber', async () => {
      const r = await createRestaurant();
      const pos = await tablet(mode, '/', kdsToken([r]));
      for (const tableNumber of ['  ', 'x'.repeat(51)]) {
        const ack = await emitAck(pos, 'table:complete', { restaurantId: r, tableNumber });
        assertFailure(ack, 'INVALID_PAYLOAD');
        assert.ok(ack.error.message.startsWith('tableNumber'), JSON.stringify(ack));
      }
    });

    test(`batch mode (ORDER_BATCH_MS=${BATCH_MS}): orders:batch_update arrays of { event, data } in order, no single events; kitchen:alert at once`, async () => {
      const r = await createRestaurant();
      const tok = kdsToken([r]);
      const [kds, single, barOnly] = await Promise.all([
        tablet(mode, '/', tok), tablet(mode, '/restaurant', tok), tablet(mode, '/', tok),
      ]);
      assert.deepEqual(
        await emitAck(kds, 'join:restaurant', { restaurantId: r, batch: true }),
        { success: true, data: { room: `restaurant:${r}` } },
      );
      await joinStation(kds, r, 'kitchen'); // in batch mode too: still once per event
      await join(single, r);
      await joinStation(barOnly, r, 'bar');
      const seen = record(kds);

      // The flush timer ticks every ORDER_BATCH_MS from the join: wait for the batch that
      // carries the first order, so the next window closes about ORDER_BATCH_MS later.
      const created = [await createOrder(r)];
      const items = [];
      const takeBatch = async () => {
        const batch = await next(kds, 'orders:batch_update', 3 * BATCH_MS + 1000);
        assert.ok(Array.isArray(batch) && batch.length > 0, JSON.stringify(batch));
        for (const it of batch) assert.deepEqual(Object.keys(it).sort(), ['data', 'event']);
        items.push(...batch);
      };
      await takeBatch();
      assert.deepEqual(items, [{ event: 'order:created', data: created[0] }]);

      // Right after a window closed: an alert, two orders, a status move.
      const alertBody = { type: 'urgent', message: 'fire on the grill', severity: 5, tableNumber: 12 };
      const res = await alert(r, alertBody);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual(res.body, { ...alertBody, tableNumber: '12' });
      created.push(await createOrder(r));
      created.push(await createOrder(r));
      // The ack of a batch-mode socket is not delayed.
      const changed = assertSuccess(await updateStatus(kds, r, created[0], 'preparing'));
      while (items.length < 4) await takeBatch();
      assert.deepEqual(items, [
        ...created.map((data) => ({ event: 'order:created', data })),
        { event: 'order:status_changed', data: changed },
      ], 'every event once, in order');
      // The alert was not held back for the window: it came before the second batch.
      assert.deepEqual(await next(kds, 'kitchen:alert', 0), res.body);
      const names = seen.map((e) => e.event);
      assert.deepEqual(names.slice(0, 2), ['orders:batch_update', 'kitchen:alert'], JSON.stringify(names));
      assert.deepEqual(await next(barOnly, 'kitchen:alert'), res.body); // a station-only tablet
      await none(kds, 'orders:batch_update', BATCH_MS + 100);
      for (const e of ['order:created', 'order:status_changed']) await none(kds, e, 0);
      await none(kds, 'kitchen:alert', 0);

      // A single-mode socket got the same events one by one.
      for (const o of created) assert.deepEqual(await next(single, 'order:created'), o);
      assert.deepEqual(await next(single, 'order:status_changed'), changed);
      assert.deepEqual(await next(single, 'kitchen:alert'), res.body);
      await none(single, 'orders:batch_update', 0);
      await none(barOnly, 'order:created', 0);
      await none(barOnly, 'orders:batch_update', 0);

      // join:restaurant without batch: back to single events.
      assert.deepEqual(
        await emitAck(kds, 'join:restaurant', { restaurantId: r }),
        { success: true, data: { room: `restaurant:${r}` } },
      );
      const one = await createOrder(r);
      assert.deepEqual(await next(kds, 'order:created'), one);
      await none(kds, 'orders:batch_update', BATCH_MS + 200);
      await none(kds, 'order:created', 0); // once, though in the room and the kitchen
    });

    test('batch mode also batches table:ready and table:completed; turning it off flushes the queue before the ack', async () => {
      const r = await createRestaurant();
      const tok = kdsToken([r]);
      const [kds, dyn] = await Promise.all([tablet(mode, '/', tok), tablet(mode, `/restaurants/${r}`, tok)]);
      // A station joined in single mode switches to batch with the restaurant.
      await joinStation(kds, r, 'bar');
      await join(kds, { restaurantId: r, batch: true });
      await join(dyn, { restaurantId: r, batch: true }); // /restaurants/<id> may turn it on too
      const o = await createOrder(r, { table: '3', stations: ['bar'] });
      const ready = assertSuccess(await updateStatus(kds, r, o, 'ready'));
      const done = assertSuccess(await emitAck(kds, 'table:complete', { tableNumber: '3', restaurantId: r }));
      assert.deepEqual(done.orderIds, [o.id]);

      for (const s of [kds, dyn]) {
        const items = [];
        while (items.length < 5) items.push(...(await next(s, 'orders:batch_update', 3000)));
        assert.deepEqual(items.map((i) => i.event), [
          'order:created', 'order:status_changed', 'table:ready', 'order:status_changed', 'table:completed',
        ]);
        assert.deepEqual(items[0].data, o);
        assert.deepEqual(items[1].data, ready);
        assert.deepEqual(Object.keys(items[2].data).sort(), ['orderIds', 'readyAt', 'tableNumber']);
        assert.equal(items[2].data.tableNumber, '3');
        assert.deepEqual(items[2].data.orderIds, [o.id]);
        assertStatusChanged(items[3].data, { orderId: o.id, previousStatus: 'ready', status: 'completed', restaurantId: r });
        assert.deepEqual(items[4].data, done);
      }
      for (const e of ['order:created', 'order:status_changed', 'table:ready', 'table:completed']) {
        await none(kds, e, e === 'order:created' ? BATCH_MS + 100 : 0);
        await none(dyn, e, 0);
      }
      await none(kds, 'orders:batch_update', 0);

      // Off with the bare string: what is queued comes as one batch before the ack. Align
      // with kds' timer first (a marker order's batch), so the next tick is far away.
      const marker = await createOrder(r);
      assert.deepEqual(await next(kds, 'orders:batch_update', 3 * BATCH_MS + 1000), [{ event: 'order:created', data: marker }]);
      const seen = record(kds);
      const queued = await createOrder(r);
      const ack = await emitAck(kds, 'join:restaurant', r);
      const atAck = seen.map((e) => e.event);
      assertSuccess(ack);
      assert.deepEqual(atAck, ['orders:batch_update'], 'the queue is flushed before the ack');
      assert.deepEqual(seen[0].payload, [{ event: 'order:created', data: queued }]);
      assert.deepEqual(await next(kds, 'orders:batch_update'), [{ event: 'order:created', data: queued }]);
      const single = await createOrder(r, { stations: ['bar'] }); // room and station: back to single mode both
      assert.deepEqual(await next(kds, 'order:created'), single);
      await none(kds, 'orders:batch_update', BATCH_MS + 200);
      // The other socket stays in batch mode.
      const items = [];
      while (items.length < 3) items.push(...(await next(dyn, 'orders:batch_update', 3000)));
      assert.deepEqual(items, [marker, queued, single].map((data) => ({ event: 'order:created', data })));
      await none(dyn, 'order:created', 0);
      await none(kds, 'order:created', 0);
    });

    test('kitchen:alert (REST) reaches the room and every station tablet once, nothing to another restaurant', async () => {
      const [r, other] = await Promise.all([createRestaurant(), createRestaurant()]);
      const tok = kdsToken([r]);
      const [bar, pos, dyn, stranger] = await Promise.all([
        tablet(mode, '/', tok), tablet(mode, '/restaurant', tok), tablet(mode, `/restaurants/${r}`, tok),
        tablet(mode, `/restaurants/${other}`, kdsToken([other])),
      ]);
      await joinStation(bar, r, 'bar');
      await joinStation(pos, r, 'pos');
      await joinStation(dyn, r, 'expo');
      const body = { type: 'info', message: '  86 the salmon ', severity: 2, tableNumber: 4, orderId: randomUUID() };
      const res = await alert(r, body, { auth: 'Bearer ' + kdsToken([r]) });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual(res.body, { ...body, message: '86 the salmon', tableNumber: '4' });
      for (const s of [bar, pos, dyn]) assert.deepEqual(await next(s, 'kitchen:alert'), res.body);
      await none(bar, 'kitchen:alert');
      for (const s of [pos, dyn, stranger]) await none(s, 'kitchen:alert', 0);

      // Refusals: another restaurant's staff, a bad body.
      const forbidden = await alert(r, body, { auth: 'Bearer ' + kdsToken([other]) });
      assert.equal(forbidden.status, 403);
      for (const [bad, field] of [[{ ...body, type: 'panic' }, 'type'], [{ ...body, severity: 6 }, 'severity'], [{ ...body, message: ' ' }, 'message']]) {
        const r400 = await alert(r, bad);
        assert.equal(r400.status, 400, JSON.stringify(r400.body));
        assert.ok(r400.body.error.message.includes(field), JSON.stringify(r400.body));
      }
      assert.equal((await alert(randomUUID(), body)).status, 404);
      await none(bar, 'kitchen:alert', 200);
    });

    test('isolation: restaurant A\'s tablets never get B\'s events; join:restaurant B leaves A', async () => {
      const [a, b] = await Promise.all([createRestaurant('A'), createRestaurant('B')]);
      const both = kdsToken([a, b]);
      const [c, dynA, onlyB] = await Promise.all([
        tablet(mode, '/', both), tablet(mode, `/restaurants/${a}`, both), tablet(mode, `/restaurants/${b}`, kdsToken([b])),
      ]);
      await join(c, a);
      for (const st of ['kitchen', 'bar', 'expo', 'pos']) await joinStation(c, a, st);
      await joinStation(dynA, a, 'kitchen');
      const seenC = record(c);
      const seenA = record(dynA);

      // Everything B does.
      const ob = await createOrder(b, { table: '1', stations: ['kitchen', 'bar', 'expo', 'pos'] });
      assert.deepEqual(await next(onlyB, 'order:created'), ob);
      assertSuccess(await updateStatus(onlyB, b, ob, 'ready'));
      await next(onlyB, 'order:status_changed');
      await next(onlyB, 'table:ready');
      assert.equal((await alert(b, { type: 'warning', message: 'B only', severity: 3 })).status, 201);
      await next(onlyB, 'kitchen:alert');
      assertSuccess(await emitAck(onlyB, 'table:complete', { tableNumber: '1', restaurantId: b }));
      assert.equal((await next(onlyB, 'order:status_changed')).status, 'completed');
      await next(onlyB, 'table:completed');
      const ob2 = await createOrder(b);
      assert.deepEqual(await next(onlyB, 'order:created'), ob2);
      const patched = await api(server, 'PATCH', `/api/orders/${ob2.id}`, { ...service, body: { table_number: '2' } });
      assert.equal(patched.status, 200);
      assert.deepEqual((await next(onlyB, 'order:updated')).order, patched.body);
      await silent(c, 300);
      await silent(dynA, 0);
      assert.deepEqual(seenC, []);
      assert.deepEqual(seenA, []);

      // A's events reach A's tablets, not B's.
      const oa = await createOrder(a);
      assert.deepEqual(await next(c, 'order:created'), oa);
      assert.deepEqual(await next(dynA, 'order:created'), oa);
      await silent(onlyB);

      // c follows B: it leaves every room of A (restaurant and stations).
      await join(c, { restaurantId: b });
      await createOrder(a, { stations: ['kitchen', 'bar', 'expo', 'pos'] });
      await next(dynA, 'order:created');
      await silent(c);
      const fromB = await createOrder(b, { stations: ['bar'] });
      assert.deepEqual(await next(c, 'order:created'), fromB);
      assert.deepEqual(await next(onlyB, 'order:created'), fromB);
      await none(dynA, 'order:created');
    });

    test('REST PATCH /api/orders/:id: order:updated with changes, order:status_changed, 409 on a backward move', async () => {
      const [r, other] = await Promise.all([createRestaurant(), createRestaurant()]);
      const staff = users(1)[0];
      const staffAuth = { auth: 'Bearer ' + kdsToken([r], ['staff'], staff) };
      const tok = kdsToken([r]);
      const [room, bar, kitchen] = await Promise.all([tablet(mode, '/', tok), tablet(mode, '/', tok), tablet(mode, '/restaurant', tok)]);
      await join(room, r);
      await joinStation(bar, r, 'bar');
      await joinStation(kitchen, r, 'kitchen');
      // A staff member of the restaurant may create orders too.
      const order = await createOrder(r, { type: 'takeout', stations: ['bar'], total: 4, who: staffAuth });
      assert.equal(order.type, 'takeout');
      assert.equal(order.total, 4);
      assert.equal('table_number' in order, false);
      for (const s of [room, bar]) assert.deepEqual(await next(s, 'order:created'), order);
      const url = `/api/orders/${order.id}`;

      const res = await api(server, 'PATCH', url, {
        ...staffAuth,
        body: { status: 'preparing', items: [{ name: 'Coffee', quantity: 1, station: 'bar', notes: 'oat' }] },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const patched = res.body;
      assertOrder(patched, r);
      assert.equal(patched.status, 'preparing');
      assert.deepEqual(patched.items.map(({ id, ...rest }) => rest), [{ name: 'Coffee', quantity: 1, station: 'bar', notes: 'oat' }]);
      assert.notEqual(patched.items[0].id, order.items[0].id);
      for (const s of [room, bar]) {
        const updated = await next(s, 'order:updated');
        assert.deepEqual(updated, { order: patched, changes: ['status', 'items'], updatedBy: String(staff) });
        assertStatusChanged(await next(s, 'order:status_changed'), { orderId: order.id, previousStatus: 'new', status: 'preparing', restaurantId: r });
      }
      await none(kitchen, 'order:updated', 0);

      // Items move from the bar to the kitchen: stations before and after hear it.
      const moved = await api(server, 'PATCH', url, { ...service, body: { items: [{ name: 'Soup', quantity: 2, station: 'kitchen' }] } });
      assert.equal(moved.status, 200);
      for (const s of [room, bar, kitchen]) {
        assert.deepEqual(await next(s, 'order:updated'), { order: moved.body, changes: ['items'], updatedBy: String(SERVICE) });
      }

      // A new table, then ready: order:updated, order:status_changed, table:ready.
      const seen = record(room);
      const tabled = await api(server, 'PATCH', url, { ...staffAuth, body: { table_number: 12 } });
      assert.equal(tabled.status, 200);
      assert.equal(tabled.body.table_number, '12');
      assert.deepEqual((await next(room, 'order:updated')).changes, ['table_number']);
      const readyRes = await api(server, 'PATCH', url, { ...staffAuth, body: { status: 'ready' } });
      assert.equal(readyRes.status, 200);
      assert.deepEqual((await next(room, 'order:updated')).changes, ['status']);
      await next(room, 'order:status_changed');
      assert.deepEqual((await next(room, 'table:ready')).orderIds, [order.id]);
      assert.deepEqual(seen.map((e) => e.event), ['order:updated', 'order:updated', 'order:status_changed', 'table:ready']);
      // The kitchen (the order's station now) heard the same; the bar no more.
      for (const { event, payload } of seen) assert.deepEqual(await next(kitchen, event), payload);
      await silent(bar, 0);

      // Backward: 409, nothing changes, nothing is emitted; {} changes nothing.
      const back = await api(server, 'PATCH', url, { ...staffAuth, body: { status: 'new' } });
      assert.equal(back.status, 409);
      assert.equal(back.body.error.code, 'INVALID_TRANSITION');
      const noop = await api(server, 'PATCH', url, { ...staffAuth, body: {} });
      assert.equal(noop.status, 200);
      assert.equal(noop.body.status, 'ready');
      await silent(room);
      await silent(kitchen, 0);

      // Rights and ids.
      assert.equal((await api(server, 'PATCH', url, { body: { status: 'completed' } })).status, 401);
      assert.equal((await api(server, 'PATCH', url, { auth: 'Bearer ' + kdsToken([r], ['user']), body: { status: 'completed' } })).status, 403);
      assert.equal((await api(server, 'PATCH', url, { auth: 'Bearer ' + kdsToken([other]), body: { status: 'completed' } })).status, 404);
      assert.equal((await api(server, 'PATCH', `/api/orders/${randomUUID()}`, { ...service, body: { status: 'ready' } })).status, 404);
      assert.equal((await api(server, 'PATCH', '/api/orders/nope', { ...service, body: { status: 'ready' } })).status, 400);
      const bad = await api(server, 'PATCH', url, { ...service, body: { status: 'eaten' } });
      assert.equal(bad.status, 400);
      assert.ok(bad.body.error.message.includes('status'), JSON.stringify(bad.body));

      // Creating: rights before the body, then the body's fields.
      const good = { order_number: 'A1', type: 'takeout', items: [{ name: 'Tea', quantity: 2, station: 'bar' }], total: 4, table_number: null };
      const post = (who, body = good, rid = r) => api(server, 'POST', `/api/restaurants/${rid}/orders`, { ...who, body });
      assert.equal((await post({ auth: 'Bearer ' + kdsToken([r], ['user']) })).status, 403);
      assert.equal((await post({ auth: 'Bearer ' + kdsToken([other], ['staff']) }, { garbage: true })).status, 403);
      assert.equal((await post(service, good, randomUUID())).status, 404);
      for (const [body, field] of [
        [{ ...good, items: [] }, 'items'],
        [{ ...good, items: [{ name: 'Tea', quantity: 0, station: 'bar' }] }, 'items[0].quantity'],
        [{ ...good, items: [{ name: 'Tea', quantity: 1, station: 'grill' }] }, 'items'],
        [{ ...good, type: 'drive_through' }, 'type'],
        [{ ...good, total: '4.00' }, 'total'],
        [{ ...good, total: -1 }, 'total'],
        [{ ...good, order_number: '  ' }, 'order_number'],
      ]) {
        const res400 = await post(service, body);
        assert.equal(res400.status, 400, `${JSON.stringify(body)} -> ${res400.status} ${JSON.stringify(res400.body)}`);
        assert.equal(res400.body.error.code, 'BAD_REQUEST');
        assert.ok(res400.body.error.message.includes(field), `should name ${field}: ${JSON.stringify(res400.body)}`);
      }
      const noTable = await post(service);
      assert.equal(noTable.status, 201);
      assert.equal('table_number' in noTable.body, false, 'table_number: null means none, left out');
      assert.equal(noTable.body.order_number, 'A1');
      assert.deepEqual(await next(room, 'order:created'), noTable.body);
      assert.deepEqual(await next(bar, 'order:created'), noTable.body);
      await silent(room, 100);
    });

    test('REST DELETE /api/orders/:id (manager+): 204, order:deleted, gone from orders:sync', async () => {
      const r = await createRestaurant();
      const tok = kdsToken([r]);
      const [room, bar, dyn] = await Promise.all([
        tablet(mode, '/', tok), tablet(mode, '/', tok), tablet(mode, `/restaurants/${r}`, tok),
      ]);
      await join(room, r);
      await joinStation(bar, r, 'bar');
      const order = await createOrder(r, { stations: ['bar'] });
      const keep = await createOrder(r, { stations: ['kitchen'] });
      const plain = await createOrder(r, { stations: ['kitchen'] });
      const url = `/api/orders/${order.id}`;

      const denied = await api(server, 'DELETE', url, { auth: 'Bearer ' + kdsToken([r], ['staff']) });
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error.code, 'FORBIDDEN');
      // A manager (here with the single `role` claim) may delete.
      const managerToken = token(users(1)[0], undefined, { role: 'manager', restaurants: [r] });
      const res = await api(server, 'DELETE', url, { auth: 'Bearer ' + managerToken, body: { reason: '  customer left ' } });
      assert.equal(res.status, 204);
      assert.equal(res.body, '');
      for (const s of [room, bar, dyn]) {
        const deleted = await next(s, 'order:deleted');
        assert.deepEqual(Object.keys(deleted).sort(), ['orderId', 'reason', 'timestamp']);
        assert.equal(deleted.orderId, order.id);
        assert.equal(deleted.reason, 'customer left');
        assert.match(deleted.timestamp, RFC3339_MS);
      }
      // Without a reason, the field is left out.
      assert.equal((await api(server, 'DELETE', `/api/orders/${plain.id}`, service)).status, 204);
      const noReason = await next(room, 'order:deleted');
      assert.deepEqual(Object.keys(noReason).sort(), ['orderId', 'timestamp']);
      assert.equal(noReason.orderId, plain.id);
      assert.deepEqual(await next(dyn, 'order:deleted'), noReason); // /restaurants/<id>: in the room

      // Gone from the board; further changes are NOT_FOUND / 404.
      for (const statuses of [undefined, ['new']]) {
        const sync = assertSuccess(await emitAck(room, 'orders:sync', { restaurantId: r, statuses }));
        assert.deepEqual(sync.orders.map((o) => o.id), [keep.id]);
      }
      assertFailure(await updateStatus(room, r, order, 'ready'), 'NOT_FOUND');
      assert.equal((await api(server, 'DELETE', url, service)).status, 404);
      assert.equal((await api(server, 'PATCH', url, { ...service, body: { status: 'ready' } })).status, 404);
      await none(room, 'order:deleted');
      await none(bar, 'order:deleted', 0); // the kitchen order's deletion is not the bar's business
      await none(dyn, 'order:deleted', 0);
      await none(room, 'order:status_changed', 0);
    });
  });
}
