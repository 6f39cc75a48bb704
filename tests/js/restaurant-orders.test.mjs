// `orders:sync` and `order:update_status` with the official socket.io-client over each
// transport setup (contract §6's statuses and events, §9's oldest first): the sync event
// and ack, moves forward only, a retried move a quiet success, and five tablets moving
// one order at once.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';

import { RFC3339_MS, TRANSPORTS, emitAck, next, none, test } from './harness.mjs';
import { assertFailure, assertStatusChanged, assertSuccess, createOrder, createRestaurant, join, joinStation, kdsToken, tablet, updateStatus, useServer } from './restaurant.mjs';

useServer();

for (const mode of TRANSPORTS) {
  describe(`restaurant orders over ${mode.name}`, () => {
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
  });
}
