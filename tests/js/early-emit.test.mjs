// The normal socket.io-client usage: emit right after io(), before the connection is
// up. The client buffers the emit and flushes it the moment CONNECT arrives; the
// contract (§3) says not one of these may go unanswered.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import {
  TRANSPORTS, assertStops, createConversation, makeSocket, startServer, test, token, users,
} from './harness.mjs';

const CYCLES = Number(process.env.EARLY_EMIT_CYCLES || 1000);
const PARALLEL = Number(process.env.EARLY_EMIT_PARALLEL || 10);
const ACK_TIMEOUT_MS = 10_000;

let server;
let conversationId;
let members;
before(async () => {
  server = await startServer({ RATE_LIMIT_BURST: '100000' });
  members = users(PARALLEL);
  conversationId = (await createConversation(server, members[0], members.slice(1)))._id;
});
after(() => assertStops(server));

/** One cycle: io(), emit at once, wait for the ack, disconnect. Resolves with the outcome. */
function cycle(mode, userId) {
  return new Promise((resolve) => {
    const s = makeSocket(server.url, '/chat', { ...mode.opts, token: token(userId) });
    let done = false;
    const finish = (outcome) => {
      if (done) return;
      done = true;
      s.disconnect();
      resolve(outcome);
    };
    s.once('connect_error', (err) => finish({ kind: 'connect_error', detail: err.message }));
    s.once('disconnect', (reason) => finish({ kind: 'disconnected before the ack', detail: reason }));
    // Emitted synchronously after io(): the socket is not connected yet.
    assert.equal(s.connected, false);
    s.timeout(ACK_TIMEOUT_MS).emit('conversation:join', { conversationId }, (err, ack) => {
      if (err) finish({ kind: 'lost (no ack)', detail: err.message });
      else if (ack?.ok !== true) finish({ kind: 'not ok', detail: JSON.stringify(ack) });
      else finish({ kind: 'ok' });
    });
  });
}

for (const mode of TRANSPORTS) {
  describe(`early emit over ${mode.name}`, () => {
    test(`${CYCLES} connect-then-emit cycles, ${PARALLEL} at a time: every ack arrives with ok:true`, async () => {
      const outcomes = new Map();
      const failures = [];
      let started = 0;
      const worker = async (w) => {
        while (started < CYCLES) {
          const n = started++;
          const outcome = await cycle(mode, members[w % members.length]);
          outcomes.set(outcome.kind, (outcomes.get(outcome.kind) ?? 0) + 1);
          if (outcome.kind !== 'ok' && failures.length < 10) failures.push({ cycle: n, ...outcome });
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, (_, w) => worker(w)));
      const summary = Object.fromEntries(outcomes);
      assert.deepEqual(summary, { ok: CYCLES }, `outcomes ${JSON.stringify(summary)}; first failures ${JSON.stringify(failures)}`);
    });
  });
}
