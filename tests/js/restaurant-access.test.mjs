// Who gets in on the restaurant namespaces, with the official socket.io-client over each
// transport setup (contract §6's access, §9's access before existence): `join:restaurant`
// on `/` (reached as Restaurant OS does, `io('ws://host:port', { auth: { token } })`) and
// `/restaurant`, its refusals in the restaurant dialect, and `/restaurants/<id>`'s
// connect_error codes and sockets in the room at connect.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';

import { TRANSPORTS, emitAck, next, none, test, token } from './harness.mjs';
import { assertFailure, createOrder, createRestaurant, kdsToken, refusal, tablet, useServer } from './restaurant.mjs';

useServer();

for (const mode of TRANSPORTS) {
  describe(`restaurant access over ${mode.name}`, () => {
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
  });
}
