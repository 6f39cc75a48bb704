// What the restaurant-*.test.mjs files share: one server per file with batch windows
// of BATCH_MS, tablets on `/` reached the way Restaurant OS does, tokens, the ack, Order
// and `order:status_changed` shape checks (contract §6, §9), and restaurant and order
// fixtures over REST (§8).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { RFC3339_MS, UUID, api, assertStops, connect, connectOutcome, emitAck, none, startServer, token, users } from './harness.mjs';

export const BATCH_MS = 300;

/** This file's server: `useServer()` starts it before the file's tests. */
export let server;

/** Starts one server for the calling test file, and checks after its tests that it stops. */
export function useServer() {
  before(async () => {
    // One server for every test: batch mode only concerns sockets that ask for it.
    server = await startServer({ ORDER_BATCH_MS: String(BATCH_MS) });
  });
  after(() => assertStops(server));
}

export const SERVICE = 500;
export const service = { user: SERVICE, roles: ['service'] };
export const STATUS_CHANGED_KEYS = ['orderId', 'previousStatus', 'restaurant_id', 'status', 'timestamp'];

/** A principal's token: `roles` acting in `restaurants`. */
export const kdsToken = (restaurants, roles = ['staff'], user = users(1)[0]) => token(user, roles, { restaurants });

/**
 * A tablet on `ns`. The default namespace is reached the way Restaurant OS does it:
 * `io('ws://host:port', …)`, no path.
 */
export function tablet(mode, ns, tok) {
  if (ns === '/') return connect(server.url.replace(/^http/, 'ws'), '', { ...mode.opts, token: tok });
  return connect(server.url, ns, { ...mode.opts, token: tok });
}

/** Resolves with the connect_error message (the code), or 'connected'. */
export function refusal(mode, ns, opts) {
  return connectOutcome(server.url, ns, { ...mode.opts, ...opts });
}

export function assertSuccess(ack, what = '') {
  assert.equal(ack?.success, true, `${what} expected success, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error, undefined);
  return ack.data;
}

export function assertFailure(ack, code, field) {
  assert.equal(ack?.success, false, `expected ${code}, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error?.code, code, JSON.stringify(ack));
  assert.deepEqual(Object.keys(ack).sort(), ['error', 'success']);
  assert.deepEqual(Object.keys(ack.error).sort(), ['code', 'message']);
  assert.equal(typeof ack.error.message, 'string');
  if (field !== undefined) {
    assert.ok(ack.error.message.includes(field), `message should name "${field}": ${JSON.stringify(ack)}`);
  }
}

export function assertOrder(o, restaurantId) {
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

export function assertStatusChanged(e, { orderId, previousStatus, status, restaurantId }) {
  assert.deepEqual(Object.keys(e).sort(), STATUS_CHANGED_KEYS, JSON.stringify(e));
  assert.equal(e.orderId, orderId);
  assert.equal(e.previousStatus, previousStatus);
  assert.equal(e.status, status);
  assert.equal(e.restaurant_id, restaurantId);
  assert.match(e.timestamp, RFC3339_MS);
}

/** `POST /api/restaurants` with a service token; returns the new id. */
export async function createRestaurant(name = 'Bistro') {
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
export async function createOrder(restaurantId, { table, stations = ['kitchen'], type = 'dine_in', total = 23.5, who = service } = {}) {
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

export async function alert(restaurantId, body, who = service) {
  return api(server, 'POST', `/api/restaurants/${restaurantId}/alerts`, { ...who, body });
}

export const join = async (socket, payload) => assertSuccess(await emitAck(socket, 'join:restaurant', payload), 'join:restaurant');
export const joinStation = async (socket, restaurantId, station) =>
  assertSuccess(await emitAck(socket, 'join:station', { restaurantId, station }), 'join:station');
export const updateStatus = (socket, restaurantId, order, status) =>
  emitAck(socket, 'order:update_status', { orderId: order.id, status, restaurantId });

/** Records every event a connected socket gets from now on, in arrival order. */
export function record(socket) {
  const seen = [];
  socket.onAny((event, payload) => seen.push({ event, payload }));
  return seen;
}

/** Asserts that no order-related event at all is recorded or arrives within `ms`. */
export const ORDER_EVENTS = [
  'order:created', 'order:updated', 'order:status_changed', 'order:deleted', 'table:ready',
  'table:completed', 'kitchen:alert', 'orders:batch_update',
];
export async function silent(socket, ms = 300) {
  for (const [i, e] of ORDER_EVENTS.entries()) await none(socket, e, i === 0 ? ms : 0);
}
