// Node's engine.io options under their Switchboard names (issue #16 "client switches"):
// SOCKETIO_PATH (`path`), PING_INTERVAL_MS / PING_TIMEOUT_MS (`pingInterval`,
// `pingTimeout`), TRANSPORTS (`transports`), as the official client meets them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { api, assertStops, connect, startServer, token, users } from './harness.mjs';

describe('SOCKETIO_PATH=/rt, PING_INTERVAL_MS=3000, PING_TIMEOUT_MS=2000, TRANSPORTS=websocket', () => {
  let server;
  before(async () => {
    server = await startServer({
      SOCKETIO_PATH: '/rt/',
      PING_INTERVAL_MS: '3000',
      PING_TIMEOUT_MS: '2000',
      TRANSPORTS: 'websocket',
    });
  });
  after(() => assertStops(server));

  test('a client on path /rt connects over websocket, acks work, and sees the ping settings', async () => {
    const [u] = users(1);
    const s = await connect(server.url, '/notifications', { token: token(u), path: '/rt', transports: ['websocket'] });
    try {
      const engine = s.io.engine;
      assert.equal(engine.transport.name, 'websocket');
      assert.equal(engine._pingInterval, 3000);
      assert.equal(engine._pingTimeout, 2000);
      const pong = await s.timeout(5000).emitWithAck('notification:ping', {});
      assert.equal(pong.ok, true, JSON.stringify(pong));
      // The server pings every 3 s (not Node's default 25 s), and the client that
      // answers stays connected.
      let pings = 0;
      engine.on('ping', () => { pings += 1; });
      await new Promise((r) => setTimeout(r, 7000));
      assert.ok(pings >= 2, `${pings} pings in 7 s`);
      assert.ok(s.connected, 'dropped although it answered every ping');
    } finally {
      s.disconnect();
    }
  });

  test('the default path is not served, and long-polling is refused', async () => {
    const [u] = users(1);
    await assert.rejects(
      connect(server.url, '/notifications', { token: token(u), transports: ['websocket'], timeoutMs: 5000 }),
      (err) => err.type === 'TransportError' || /websocket error|timed out/.test(err.message),
    );
    await assert.rejects(
      connect(server.url, '/notifications', { token: token(u), path: '/rt', transports: ['polling'], timeoutMs: 5000 }),
      (err) => err.type === 'TransportError',
    );
    const handshake = await api(server, 'GET', '/rt/?EIO=4&transport=polling');
    assert.equal(handshake.status, 400, JSON.stringify(handshake.body));
    const old = await api(server, 'GET', '/socket.io/?EIO=4&transport=websocket');
    assert.equal(old.status, 404);
  });
});
