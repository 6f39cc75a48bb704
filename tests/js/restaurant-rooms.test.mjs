// Where restaurant events go, with the official socket.io-client over each transport
// setup (contract §6's rooms and server-side events, §9's routing): station routing with
// each order event once per socket, `kitchen:alert` to the room and station tablets, and
// restaurants isolated from each other.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';

import { TRANSPORTS, api, emitAck, next, none, test } from './harness.mjs';
import { alert, assertFailure, assertSuccess, createOrder, createRestaurant, join, joinStation, kdsToken, record, server, service, silent, tablet, updateStatus, useServer } from './restaurant.mjs';

useServer();

for (const mode of TRANSPORTS) {
  describe(`restaurant rooms over ${mode.name}`, () => {
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
  });
}
