// Admission to `/restaurants/<id>` when the database fails (contract §6, issue #12 item 7):
// a fault of ours is not a refusal. socket.io-client never retries after connect_error,
// so a database blip during a reconnect wave would strand every tablet; the server
// closes the transport instead, and the official client (default reconnection) comes
// back by itself once the database does, then receives events again.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import {
  TRANSPORTS, api, assertStops, makeSocket, next, sqlOn, startServer, test, token, users,
} from './harness.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => assertStops(server));

const service = { user: 500, roles: ['service'] };

/** Resolves once `emitter` has emitted `event` `count` times in all (from now on). */
function times(emitter, event, count, timeoutMs) {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(
      () => reject(new Error(`"${event}" ${seen} times, expected ${count} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const on = () => {
      seen += 1;
      if (seen >= count) {
        clearTimeout(timer);
        emitter.off(event, on);
        resolve();
      }
    };
    emitter.on(event, on);
  });
}

describe('a database fault while admitting a tablet', () => {
  for (const mode of TRANSPORTS) {
    test(`closes the transport, and tablets come back by themselves (${mode.name})`, async () => {
      const created = await api(server, 'POST', '/api/restaurants', { ...service, body: { name: 'Blip Bistro' } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const r = created.body.id;
      const tok = token(users(1)[0], ['staff'], { restaurants: [r] });
      // Default reconnection, as the tablets run it.
      const tablets = [0, 1, 2].map(() =>
        makeSocket(server.url, `/restaurants/${r}`, { ...mode.opts, token: tok, reconnection: true }));
      // socket.io-client reports its own transport failures while connecting as
      // `connect_error` too (a TransportError, after which it retries); a refusal by the
      // server (a CONNECT_ERROR packet, after which it never retries) is any other.
      const refusals = [];
      for (const t of tablets) {
        t.on('connect_error', (err) => {
          if (err.type !== 'TransportError') refusals.push(err.message);
        });
      }
      try {
        await admitThroughAFault(r, tablets, refusals);
      } finally {
        // A failed check must not leave tablets reconnecting forever (the run would hang).
        for (const t of tablets) t.disconnect();
      }
    });
  }
});

/** Connects the tablets, cuts them while the existence check fails, then sees them back. */
async function admitThroughAFault(r, tablets, refusals) {
  await Promise.all(tablets.map((t) => times(t, 'connect', 1, 10_000)));

  await sqlOn(server, 'alter table restaurants rename to restaurants_away');
  try {
    // The transport drops (a network blip, a server restart): every tablet reconnects
    // while the existence check fails. Each reaches the server twice at least (the
    // engine opens, the admission is cut) without being refused.
    const cutTwice = tablets.map((t) => times(t.io, 'reconnect', 2, 30_000));
    for (const t of tablets) t.io.engine.close();
    await Promise.all(cutTwice);
    assert.deepEqual(refusals, [], 'a database fault answered connect_error');
    assert.ok(tablets.every((t) => !t.connected), 'admitted without the existence check');
  } finally {
    await sqlOn(server, 'alter table restaurants_away rename to restaurants');
  }
  await Promise.all(tablets.map((t) => (t.connected ? null : times(t, 'connect', 1, 20_000))));
  assert.deepEqual(refusals, []);

  const order = await api(server, 'POST', `/api/restaurants/${r}/orders`, {
    ...service,
    body: { order_number: 1, type: 'takeout', total: 3, items: [{ name: 'Tea', quantity: 1, station: 'bar' }] },
  });
  assert.equal(order.status, 201, JSON.stringify(order.body));
  for (const t of tablets) assert.equal((await next(t, 'order:created')).id, order.body.id);
}
