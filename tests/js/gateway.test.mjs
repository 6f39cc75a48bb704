// Seed 000's entity gateway `/ws/:entity/:section[/:token]` (contract §7.4, §7.7) as a
// floor-plan screen written with the `ws` package uses it: connect to its section,
// list the tables, follow snapshots as the host stand and the POS change the floor.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';

import {
  RFC3339_MS, api, assertStops, closeWebSockets, connect, emitAck, openWs, startServer, test, token,
  users,
} from './harness.mjs';

/**
 * Opens a gateway path; resolves with a client that records every message once
 * `system.connected` arrived, or rejects with the status and JSON body of a refused
 * upgrade.
 */
function gateway(server, path, { headers = {} } = {}) {
  const check = (message) => {
    assert.deepEqual(Object.keys(message).sort(), ['data', 'entity', 'event', 'metadata', 'section']);
    assert.match(message.metadata.timestamp, RFC3339_MS);
  };
  const onOpen = async (client) => {
    client.hello = await client.next();
    assert.equal(client.hello.event, 'system.connected');
    /** Sends a command and waits for its reply (matched by request_id). */
    client.command = async (action, payload) => {
      const requestId = randomUUID();
      client.send({ action, payload, request_id: requestId });
      const reply = await client.next();
      assert.equal(reply.metadata.request_id, requestId, JSON.stringify(reply));
      assert.equal(reply.metadata.action, action);
      return reply;
    };
  };
  return openWs(`${server.url.replace('http', 'ws')}${path}`, { headers }, { check, onOpen });
}

async function rest(server, method, route, auth, body, expected) {
  const res = await api(server, method, route, { auth: `Bearer ${auth}`, body });
  assert.equal(res.status, expected, `${method} ${route}: ${JSON.stringify(res.body)}`);
  return res.body;
}

describe('/ws/:entity/:section[/:token], as a floor-plan screen', () => {
  let server;
  let restaurant;
  let service;
  let staff;
  before(async () => {
    server = await startServer({ WEBSOCKET_ALLOWED_ACTIONS: 'seat_guest' });
    const [svc, host] = users(2);
    service = token(svc, ['service']);
    restaurant = (await rest(server, 'POST', '/api/restaurants', service, { name: 'Noodle Bar', section: 'downtown' }, 201)).id;
    staff = token(host, ['staff'], { restaurants: [restaurant] });
    for (const [id, name] of [['table-1', 'Window'], ['table-2', 'Booth'], ['table-3', 'Bar']]) {
      await rest(server, 'POST', `/api/restaurants/${restaurant}/tables`, service, { id, name, section: 'main-hall', seats: 4 }, 201);
    }
  });
  after(async () => {
    closeWebSockets();
    await assertStops(server);
  });

  test('the screen connects, lists its tables and follows every change', async () => {
    const floor = await gateway(server, `/ws/tables/main-hall/${staff}`);
    assert.deepEqual(floor.hello.data, {
      entity: 'tables',
      section: 'main-hall',
      topics: ['tables.snapshot', 'tables.list', 'tables.detail', 'tables.error', 'tables.seat_guest'],
    });
    const list = await floor.command('list_tables', { page: 1, limit: 20 });
    assert.equal(list.event, 'tables.list');
    assert.deepEqual(list.data.items.map((t) => t.name), ['Bar', 'Booth', 'Window']);
    assert.deepEqual([list.data.page, list.data.limit, list.data.total], [1, 20, 3]);
    const detail = await floor.command('get_table', { id: 'table-1' });
    assert.equal(detail.event, 'tables.detail');
    assert.deepEqual(Object.keys(detail.data).sort(), ['id', 'name', 'restaurant_id', 'seats', 'section', 'status', 'updated_at']);

    // The host seats a party: the table is occupied on the screen.
    await rest(server, 'PATCH', `/api/restaurants/${restaurant}/tables/table-1`, service, { status: 'occupied' }, 200);
    const seated = await floor.next();
    assert.equal(seated.event, 'tables.snapshot');
    assert.equal(seated.data.op, 'updated');
    assert.deepEqual([seated.data.item.id, seated.data.item.status], ['table-1', 'occupied']);

    // The POS completes the table over socket.io: the screen shows it available again.
    const pos = await connect(server.url, `/restaurants/${restaurant}`, { auth: { token: staff } });
    const ack = await emitAck(pos, 'table:complete', { tableNumber: 'table-1', restaurantId: restaurant });
    assert.equal(ack.success, true, JSON.stringify(ack));
    const freed = await floor.next();
    assert.deepEqual([freed.event, freed.data.op, freed.data.item.status], ['tables.snapshot', 'updated', 'available']);
    pos.disconnect();

    // A new table and a removed one.
    await rest(server, 'POST', `/api/restaurants/${restaurant}/tables`, service, { id: 'table-4', name: 'Patio', section: 'main-hall', seats: 2 }, 201);
    assert.deepEqual([(await floor.next()).data.op], ['created']);
    await rest(server, 'DELETE', `/api/restaurants/${restaurant}/tables/table-4`, service, undefined, 204);
    const gone = await floor.next();
    assert.deepEqual([gone.data.op, gone.data.item.id], ['deleted', 'table-4']);
    await floor.nothing();
  });

  test('bad commands are answered with a reason; the connection stays', async () => {
    const floor = await gateway(server, `/ws/Tables/main-hall?token=${staff}`);
    for (const [action, payload, reason] of [
      ['drop_tables', {}, 'unknown_action'],
      ['list', { limit: 101 }, 'invalid_payload'],
      ['get_table', {}, 'invalid_payload'],
      ['get_table', { id: 'table-404' }, 'not_found'],
    ]) {
      const reply = await floor.command(action, payload);
      assert.equal(reply.event, 'tables.error');
      assert.equal(reply.data.reason, reason, action);
      assert.equal(reply.metadata.reason, reason);
    }
    floor.ws.send('not json');
    assert.equal((await floor.next()).data.reason, 'invalid_payload');
    assert.equal((await floor.command('fetch_all', {})).event, 'tables.list');
  });

  test('a host stand on section all sees reservations of every section, by header token', async () => {
    const stand = await gateway(server, '/ws/reservations/all', { headers: { Authorization: `Bearer ${staff}` } });
    const booked = await rest(server, 'POST', `/api/restaurants/${restaurant}/reservations`, staff, {
      guest_name: 'Ada', party_size: 4, starts_at: '2030-05-01T19:00:00Z', table_id: 'table-2',
    }, 201);
    const snapshot = await stand.next();
    assert.deepEqual([snapshot.event, snapshot.section, snapshot.data.op], ['reservations.snapshot', 'main-hall', 'created']);
    assert.deepEqual(snapshot.data.item, booked);
    assert.equal(booked.section, 'main-hall');
    const found = await stand.command('list_reservation', { search: 'ADA' });
    assert.deepEqual(found.data.items, [booked]);
    // Someone without the restaurant in the token sees none of it, and no snapshot.
    const [stranger] = users(1);
    const other = await gateway(server, `/ws/reservations/all/${token(stranger, ['staff'], { restaurants: [randomUUID()] })}`);
    assert.equal((await other.command('list', {})).data.total, 0);
    await rest(server, 'PATCH', `/api/reservations/${booked.id}`, staff, { status: 'seated' }, 200);
    assert.equal((await stand.next()).data.item.status, 'seated');
    await other.nothing();
  });

  test('the restaurant list, on the legacy route', async () => {
    const [u] = users(1);
    const list = await gateway(server, `/ws/restaurant/downtown/${token(u)}`);
    assert.equal(list.hello.data.entity, 'restaurants');
    const page = await list.command('list_restaurants', { search: 'noodle' });
    assert.deepEqual(page.data.items.map((r) => r.id), [restaurant]);
  });

  test('refused before the upgrade: unknown entity 404, bad section 400, bad token 401', async () => {
    for (const [path, status, code] of [
      ['/ws/menus/main', 404, 'NOT_FOUND'],
      [`/ws/tables/${'s'.repeat(65)}`, 400, 'BAD_REQUEST'],
      ['/ws/tables/main-hall/forged', 401, 'AUTH_INVALID'],
      ['/ws/tables/main-hall', 401, 'AUTH_INVALID'],
    ]) {
      await assert.rejects(gateway(server, path), (err) => {
        assert.equal(err.status, status, path);
        assert.equal(err.body.error.code, code);
        return true;
      });
    }
  });
});
