// The REST order routes as the tablets hear them, with the official socket.io-client over
// each transport setup (contract §8's restaurant rows, §9's REST and restaurant details):
// PATCH with `order:updated` and `order:status_changed`, DELETE for managers with
// `order:deleted`, the order gone from `orders:sync`.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';

import { RFC3339_MS, TRANSPORTS, api, emitAck, next, none, test, token, users } from './harness.mjs';
import { SERVICE, assertFailure, assertOrder, assertStatusChanged, assertSuccess, createOrder, createRestaurant, join, joinStation, kdsToken, record, server, service, silent, tablet, updateStatus, useServer } from './restaurant.mjs';

useServer();

for (const mode of TRANSPORTS) {
  describe(`restaurant rest over ${mode.name}`, () => {
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
