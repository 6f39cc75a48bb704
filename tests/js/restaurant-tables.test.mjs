// Tables with the official socket.io-client over each transport setup (contract §6's
// `table:complete` and `table:ready`, §9's restaurant details): `table:ready` once for a
// table's last active order, `table:complete` and its events, bad table numbers.
import assert from 'node:assert/strict';
import { describe } from 'node:test';

import { RFC3339_MS, TRANSPORTS, emitAck, next, none, test } from './harness.mjs';
import { assertFailure, assertStatusChanged, assertSuccess, createOrder, createRestaurant, join, joinStation, kdsToken, record, silent, tablet, updateStatus, useServer } from './restaurant.mjs';

useServer();

for (const mode of TRANSPORTS) {
  describe(`restaurant tables over ${mode.name}`, () => {
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
  });
}
