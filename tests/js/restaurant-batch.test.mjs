// Batch mode with the official socket.io-client over each transport setup (contract §6's
// `batch: true`, §9's batch details): `orders:batch_update` arrays in order, alerts at
// once, `table:ready` and `table:completed` batched too, the queue flushed when batch
// mode is turned off.
import assert from 'node:assert/strict';
import { describe } from 'node:test';

import { TRANSPORTS, emitAck, next, none, test } from './harness.mjs';
import { BATCH_MS, alert, assertStatusChanged, assertSuccess, createOrder, createRestaurant, join, joinStation, kdsToken, record, tablet, updateStatus, useServer } from './restaurant.mjs';

useServer();

for (const mode of TRANSPORTS) {
  describe(`restaurant batch over ${mode.name}`, () => {
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
  });
}
