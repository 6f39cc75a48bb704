// Seed 002's check-in dashboard `/ws/dashboard/:sessionID` (contract §7.6, §7.7) and
// the check-in route that feeds it (§7.5), as a browser-like client using the `ws`
// package sees it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';

import {
  RFC3339_MS, api, assertStops, closeWebSockets, openWs, startServer, test, token, users,
} from './harness.mjs';

/** Seed 002's fields, in its order. */
const FIELDS = ['checkin_time', 'message', 'profile_url', 'session_id', 'success', 'user_id', 'user_name'];

/**
 * Opens `/ws/dashboard/<session>`; resolves with a client that records every message,
 * or rejects with the status and JSON body of a refused upgrade.
 */
function dashboard(server, session, { query = '', headers = {} } = {}) {
  return openWs(`${server.url.replace('http', 'ws')}/ws/dashboard/${session}${query}`, { headers });
}

async function post(server, session, body) {
  const res = await api(server, 'POST', `/api/sessions/${session}/checkins`, { user: 1, roles: ['service'], body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

/** What a dashboard shows of the stored check-in: every field but `id`, in seed 002's order. */
function shown(stored) {
  return Object.fromEntries(FIELDS.map((f) => [f, stored[f]]));
}

describe('/ws/dashboard/:sessionID', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    closeWebSockets();
    await assertStops(server);
  });

  test('a check-in reaches the session\'s dashboards in seed 002\'s shape, and no other session\'s', async () => {
    const [u] = users(1);
    const [session, other] = [randomUUID(), randomUUID()];
    const a = await dashboard(server, session);
    const b = await dashboard(server, session);
    const elsewhere = await dashboard(server, other);
    const stored = await post(server, session, { user_id: u, user_name: 'Ada', success: true, message: 'Check-in successful' });
    for (const d of [a, b]) {
      const got = await d.next();
      assert.deepEqual(Object.keys(got), FIELDS);
      assert.deepEqual(got, shown(stored));
      assert.match(got.checkin_time, RFC3339_MS);
      assert.equal(got.profile_url, null);
      assert.equal(got.user_id, u);
      await d.nothing();
    }
    await elsewhere.nothing(0);
  });

  test('refused before the upgrade: a session that is not a UUID is 404', async () => {
    await assert.rejects(dashboard(server, 'not-a-session'), (err) => {
      assert.equal(err.status, 404);
      assert.equal(err.body.error.code, 'NOT_FOUND');
      return true;
    });
  });

  test('every message is ignored; pings are answered', async () => {
    const session = randomUUID();
    const d = await dashboard(server, session);
    d.ws.send(JSON.stringify({ type: 'ping', id: '1' }));
    d.ws.send('not json');
    d.ws.send(Buffer.from([1, 2, 3]));
    const pong = new Promise((resolve) => d.ws.once('pong', (data) => resolve(data.toString())));
    d.ws.ping('there?');
    assert.equal(await pong, 'there?');
    await d.nothing();
    const stored = await post(server, session, { user_id: 7, user_name: 'Bob', profile_url: 'https://img.example/b.png', success: false, message: 'Not registered' });
    assert.deepEqual(await d.next(), shown(stored));
  });
});

describe('/ws/dashboard/:sessionID with DASHBOARD_REQUIRE_TOKEN=true', () => {
  let server;
  before(async () => {
    server = await startServer({ DASHBOARD_REQUIRE_TOKEN: 'true' });
  });
  after(async () => {
    closeWebSockets();
    await server.stop();
  });

  test('no token or a bad one is 401, a user token 403, staff by header or ?token= get check-ins', async () => {
    const session = randomUUID();
    const [user, staff, manager] = users(3);
    const refused = async (options, status, code) => {
      await assert.rejects(dashboard(server, session, options), (err) => {
        assert.equal(err.status, status);
        assert.equal(err.body.error.code, code);
        return true;
      });
    };
    await refused({}, 401, 'AUTH_INVALID');
    await refused({ query: '?token=forged' }, 401, 'AUTH_INVALID');
    await refused({ headers: { Authorization: `Bearer ${token(user)}` } }, 403, 'FORBIDDEN');
    const byQuery = await dashboard(server, session, { query: `?token=${token(staff, ['staff'])}` });
    const byHeader = await dashboard(server, session, { headers: { Authorization: `Bearer ${token(manager, ['manager'])}` } });
    const stored = await post(server, session, { user_id: 1, user_name: 'Ada', success: true, message: 'ok' });
    for (const d of [byQuery, byHeader]) assert.deepEqual(await d.next(), shown(stored));
  });
});
