// SIGTERM: connected clients are told, the process exits 0 within 10 s (contract §1).
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { once } from 'node:events';
import { Manager } from 'socket.io-client';

import {
  TRANSPORTS, chat, disconnected, emitAck, next, startServer, test, users,
} from './harness.mjs';

for (const mode of TRANSPORTS) {
  describe(`shutdown with a client over ${mode.name}`, () => {
    test('SIGTERM disconnects the client and the process exits 0 within 10 s', async (t) => {
      const server = await startServer();
      let stopped;
      try {
        const [u] = users(1);
        const s = await chat(server, u, mode);
        assert.deepEqual(await next(s, 'unread:count'), { total: 0, byConversation: {} });
        // The session is live before the signal.
        const ack = await emitAck(s, 'no:such:event', {});
        assert.equal(ack.error?.code, 'BAD_REQUEST');

        const sentAt = server.terminate();
        const reason = await disconnected(s, 10_000);
        t.diagnostic(`disconnect reason: ${reason}, ${Date.now() - sentAt} ms after SIGTERM`);
        // Long-polling: when no GET is pending at the moment of the signal, engineioxide
        // drops the session without delivering its CLOSE packet, and the client's next
        // poll is answered 400 ("xhr poll error"): the client still learns at once and
        // reconnects, so that is accepted there (about 1 run in 10).
        const accepted = ['io server disconnect', 'transport close'];
        if (mode.name === 'polling') accepted.push('transport error');
        assert.ok(accepted.includes(reason), `disconnect reason: ${reason}`);
        assert.ok(Date.now() - sentAt < 10_000);
        assert.equal(s.connected, false);
      } finally {
        stopped = await server.stop({ timeoutMs: 10_000 });
      }
      assert.equal(stopped.signal, null, `killed by ${stopped.signal}`);
      assert.equal(stopped.code, 0, `exit code ${stopped.code}`);
      assert.ok(stopped.ms < 10_000, `exited ${stopped.ms} ms after SIGTERM`);
      t.diagnostic(`exit code ${stopped.code}, ${stopped.ms} ms after SIGTERM`);
    });
  });
}

// An engine.io connection with no namespace socket: socket.io-client's public
// `Manager#open()` (apps that open the connection first), a client whose namespace
// CONNECT is still in flight, or one that just disconnected its last namespace as the
// signal arrives. SIGTERM must close it too, and not wait for it.
for (const mode of TRANSPORTS) {
  describe(`shutdown with an engine.io connection but no namespace socket over ${mode.name}`, () => {
    test('SIGTERM closes it promptly and the process exits 0 within 10 s', async (t) => {
      const server = await startServer();
      let stopped;
      let closedAfter = null;
      const manager = new Manager(server.url, { ...mode.opts, reconnection: false, autoConnect: false });
      try {
        await new Promise((resolve, reject) => manager.open((err) => (err ? reject(err) : resolve())));
        if (mode.name === 'polling+upgrade') {
          const engine = manager.engine;
          if (engine.transport.name !== 'websocket') await once(engine, 'upgrade');
        }
        assert.equal(manager.engine.readyState, 'open');
        // Let the first ping/pong pass so a long-poll GET is pending.
        await delay(300);
        const closed = new Promise((resolve) => manager.once('close', resolve));
        const sentAt = server.terminate();
        const reason = await Promise.race([closed, delay(12_000, 'no close within 12 s', { ref: false })]);
        closedAfter = Date.now() - sentAt;
        t.diagnostic(`engine closed (${reason}) ${closedAfter} ms after SIGTERM`);
      } finally {
        manager.engine?.close();
        stopped = await server.stop({ timeoutMs: 15_000 });
      }
      t.diagnostic(`exit code ${stopped.code}, ${stopped.ms} ms after SIGTERM`);
      assert.equal(stopped.code, 0);
      assert.ok(stopped.ms < 10_000, `exited ${stopped.ms} ms after SIGTERM`);
      assert.ok(closedAfter < 5_000, `the client learned of the shutdown ${closedAfter} ms after SIGTERM`);
    });
  });
}
