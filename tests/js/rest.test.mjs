// REST conversations and health as another backend (or a test) sees them (contract §8, §9).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';

import {
  RFC3339_MS, UUID, api, assertStops, connect, none, signJwt, startServer, test, token, users,
} from './harness.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => assertStops(server));

function assertError(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(res.body?.error?.code, code, JSON.stringify(res.body));
  assert.equal(typeof res.body.error.message, 'string');
}

describe('health', () => {
  test('GET /healthz 200 { status: "ok" }', async () => {
    const res = await api(server, 'GET', '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ok');
  });

  test('GET /readyz 200 while the database answers', async () => {
    const res = await api(server, 'GET', '/readyz');
    assert.equal(res.status, 200);
    assert.equal(typeof res.body, 'object');
  });
});

describe('POST /api/conversations', () => {
  test('a group: 201 with the Conversation, the caller is a participant', async () => {
    const [me, a, b] = users(3);
    const res = await api(server, 'POST', '/api/conversations', {
      user: me,
      body: { type: 'group', name: 'Kitchen crew', participants: [a, b, a] },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const c = res.body;
    assert.deepEqual(Object.keys(c).sort(), ['_id', 'created_at', 'name', 'participants', 'type']);
    assert.match(c._id, UUID);
    assert.equal(c.type, 'group');
    assert.equal(c.name, 'Kitchen crew');
    assert.deepEqual([...c.participants].sort((x, y) => x - y), [me, a, b].sort((x, y) => x - y));
    assert.match(c.created_at, RFC3339_MS);
  });

  test('a private conversation has exactly one other participant', async () => {
    const [me, a, b] = users(3);
    const ok = await api(server, 'POST', '/api/conversations', {
      user: me,
      body: { type: 'private', participants: [a] },
    });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.type, 'private');
    assert.equal(ok.body.name ?? null, null);
    const bad = await api(server, 'POST', '/api/conversations', {
      user: me,
      body: { type: 'private', participants: [a, b] },
    });
    assertError(bad, 400, 'BAD_REQUEST');
    assert.ok(bad.body.error.message.includes('participants'), bad.body.error.message);
  });

  test('401 AUTH_INVALID without a valid Bearer token', async () => {
    const body = { type: 'group', name: 'x', participants: [1] };
    assertError(await api(server, 'POST', '/api/conversations', { body }), 401, 'AUTH_INVALID');
    assertError(await api(server, 'POST', '/api/conversations', { body, auth: 'Bearer nope' }), 401, 'AUTH_INVALID');
    const forged = signJwt({ sub: 1, exp: Math.floor(Date.now() / 1000) + 600 }, { secret: 'forged' });
    assertError(await api(server, 'POST', '/api/conversations', { body, auth: 'Bearer ' + forged }), 401, 'AUTH_INVALID');
    const expired = token(1, ['user'], { exp: Math.floor(Date.now() / 1000) - 300 });
    assertError(await api(server, 'POST', '/api/conversations', { body, auth: 'Bearer ' + expired }), 401, 'AUTH_INVALID');
  });

  test('400 BAD_REQUEST naming the field for a malformed body', async () => {
    const [me] = users(1);
    const cases = [
      [{ type: 'channel', participants: [1] }, 'type'],
      [{ type: 'group', participants: 'everyone' }, 'participants'],
      [{ type: 'group', participants: [''] }, 'participants'],
      [{ type: 'group', name: 'n'.repeat(201), participants: [1] }, 'name'],
      [{ name: 'no type', participants: [1] }, 'type'],
    ];
    for (const [body, field] of cases) {
      const res = await api(server, 'POST', '/api/conversations', { user: me, body });
      assertError(res, 400, 'BAD_REQUEST');
      assert.ok(res.body.error.message.includes(field), `${field}: ${res.body.error.message}`);
    }
    const notJson = await api(server, 'POST', '/api/conversations', { user: me, body: '{"type":' });
    assertError(notJson, 400, 'BAD_REQUEST');
  });

  // serde reads a JSON array positionally into a struct; the server must refuse it.
  test('a JSON array instead of the body object is 400 and creates nothing', async () => {
    const [me, other] = users(2);
    const s = await connect(server.url, '/chat', { transports: ['websocket'], token: token(other) });
    const res = await api(server, 'POST', '/api/conversations', { user: me, body: ['group', 'n', [other]] });
    assertError(res, 400, 'BAD_REQUEST');
    await none(s, 'conversation:created');
  });
});

describe('DELETE /api/conversations/:id', () => {
  test('204 for the owner, 403 for a member, 404 afterwards and for unknown ids', async () => {
    const [owner, member] = users(2);
    const created = await api(server, 'POST', '/api/conversations', {
      user: owner,
      body: { type: 'group', name: 'temp', participants: [member] },
    });
    assert.equal(created.status, 201);
    const id = created.body._id;
    assertError(await api(server, 'DELETE', `/api/conversations/${id}`, { user: member }), 403, 'FORBIDDEN');
    assertError(await api(server, 'DELETE', `/api/conversations/${id}`), 401, 'AUTH_INVALID');
    const del = await api(server, 'DELETE', `/api/conversations/${id}`, { user: owner });
    assert.equal(del.status, 204);
    assert.equal(del.body, '');
    assertError(await api(server, 'DELETE', `/api/conversations/${id}`, { user: owner }), 404, 'NOT_FOUND');
    assertError(await api(server, 'DELETE', `/api/conversations/${randomUUID()}`, { user: owner }), 404, 'NOT_FOUND');
    assertError(await api(server, 'DELETE', '/api/conversations/not-a-uuid', { user: owner }), 400, 'BAD_REQUEST');
  });

  test('an admin (roles: ["admin"] or role: "admin") may delete a conversation it is not in', async () => {
    const [owner, member, admin] = users(3);
    for (const auth of ['Bearer ' + token(admin, ['admin']), 'Bearer ' + token(admin, [], { role: 'admin' })]) {
      const created = await api(server, 'POST', '/api/conversations', {
        user: owner,
        body: { type: 'group', name: 'moderated', participants: [member] },
      });
      assert.equal(created.status, 201);
      const res = await api(server, 'DELETE', `/api/conversations/${created.body._id}`, { auth });
      assert.equal(res.status, 204, JSON.stringify(res.body));
    }
  });
});
