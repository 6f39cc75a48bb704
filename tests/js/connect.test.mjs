// Connecting to /chat: every token source a web app uses, and every refusal.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import {
  JWT_AUDIENCE, JWT_ISSUER, TRANSPORTS, assertStops, chat, connect, createConversation, next, none,
  signJwt, startServer, test, token, users,
} from './harness.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => assertStops(server));

/** The socket really acts as `user`: a conversation made for that user reaches it. */
async function assertIdentity(socket, user) {
  const [owner] = users(1);
  const conv = await createConversation(server, owner, [user]);
  const created = await next(socket, 'conversation:created');
  assert.equal(created._id, conv._id);
  assert.deepEqual([...created.participants].sort((a, b) => a - b), [owner, user].sort((a, b) => a - b));
}

const now = () => Math.floor(Date.now() / 1000);

const refused = [
  ['no token at all', () => ({})],
  ['an empty auth.token', () => ({ auth: { token: '' } })],
  ['a token that is not a JWT', () => ({ auth: { token: 'not-a-jwt' } })],
  ['an expired token', () => ({ token: token(users(1)[0], ['user'], { exp: now() - 300 }) })],
  ['a token signed with another secret', () => ({
    token: signJwt({ sub: 1, roles: ['user'], iss: JWT_ISSUER, aud: JWT_AUDIENCE, exp: now() + 600 }, { secret: 'forged' }),
  })],
  ['an unsigned token (alg none)', () => ({
    token: signJwt({ sub: 1, roles: ['user'], iss: JWT_ISSUER, aud: JWT_AUDIENCE, exp: now() + 600 }, { alg: 'none' }),
  })],
  ['a token without exp', () => ({ token: token(1, ['user'], { exp: undefined }) })],
  ['a token for another issuer', () => ({ token: token(1, ['user'], { iss: 'someone-else' }) })],
  ['a token for another audience', () => ({ token: token(1, ['user'], { aud: 'other-app' }) })],
  ['a token whose sub is an empty string', () => ({ token: token('') })],
  ['a token whose sub is longer than 128 characters', () => ({ token: token('a'.repeat(129)) })],
  ['a bad auth.token even when the header carries a good one (first found wins)', () => ({
    auth: { token: 'Bearer garbage' },
    extraHeaders: { Authorization: 'Bearer ' + token(1) },
  })],
  ['a forged Authorization header', () => ({
    extraHeaders: { Authorization: 'Bearer ' + signJwt({ sub: 1, exp: now() + 600 }, { secret: 'forged' }) },
  })],
  ['an expired ?token=', () => ({ query: { token: token(1, ['user'], { exp: now() - 300 }) } })],
];

for (const mode of TRANSPORTS) {
  describe(`connect over ${mode.name}`, () => {
    test('auth: { token } connects and unread:count { total: 0, byConversation: {} } arrives', async () => {
      const [u] = users(1);
      const s = await connect(server.url, '/chat', { ...mode.opts, auth: { token: token(u) } });
      assert.equal(s.connected, true);
      assert.deepEqual(await next(s, 'unread:count'), { total: 0, byConversation: {} });
      await none(s, 'unread:count', 200);
      await assertIdentity(s, u);
    });

    test('auth: { token: "Bearer …" } connects as that user', async () => {
      const [u] = users(1);
      const s = await connect(server.url, '/chat', { ...mode.opts, auth: { token: 'Bearer ' + token(u) } });
      assert.deepEqual(await next(s, 'unread:count'), { total: 0, byConversation: {} });
      await assertIdentity(s, u);
    });

    test('Authorization: Bearer header (extraHeaders) connects as that user', async () => {
      const [u] = users(1);
      const s = await connect(server.url, '/chat', {
        ...mode.opts,
        extraHeaders: { Authorization: 'Bearer ' + token(u) },
      });
      assert.deepEqual(await next(s, 'unread:count'), { total: 0, byConversation: {} });
      await assertIdentity(s, u);
    });

    test('query: { token } connects as that user', async () => {
      const [u] = users(1);
      const s = await connect(server.url, '/chat', { ...mode.opts, query: { token: token(u) } });
      assert.deepEqual(await next(s, 'unread:count'), { total: 0, byConversation: {} });
      await assertIdentity(s, u);
    });

    test('auth.token wins over the header and the query', async () => {
      const [a, b, c] = users(3);
      const s = await connect(server.url, '/chat', {
        ...mode.opts,
        auth: { token: token(a) },
        extraHeaders: { Authorization: 'Bearer ' + token(b) },
        query: { token: token(c) },
      });
      await assertIdentity(s, a);
    });

    test('sub as a decimal string is accepted', async () => {
      const [u] = users(1);
      const s = await connect(server.url, '/chat', { ...mode.opts, token: token(String(u)) });
      await assertIdentity(s, u);
    });

    test('a token expired within the 30 s leeway is still accepted', async () => {
      const [u] = users(1);
      const s = await connect(server.url, '/chat', { ...mode.opts, token: token(u, ['user'], { exp: now() - 5 }) });
      assert.equal(s.connected, true);
    });

    test('a user id the client sends is ignored: identity comes from the token', async () => {
      const [u, other] = users(2);
      const s = await connect(server.url, '/chat', {
        ...mode.opts,
        auth: { token: token(u), userId: other, user_id: other, sender_id: other },
      });
      const conv = await createConversation(server, u, [other]);
      assert.equal((await next(s, 'conversation:created'))._id, conv._id);
      assert.deepEqual(await s.timeout(5000).emitWithAck('conversation:join', { conversationId: conv._id }), { ok: true });
      const ack = await s.timeout(5000).emitWithAck('message:send', {
        conversationId: conv._id, content: 'who am i', sender_id: other, user_id: other,
      });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.equal(ack.data.sender_id, u);
    });

    for (const [what, opts] of refused) {
      test(`refused with connect_error AUTH_INVALID: ${what}`, async () => {
        const err = await connect(server.url, '/chat', { ...mode.opts, ...opts(), expectUpgrade: false }).then(
          (s) => {
            s.disconnect();
            return null;
          },
          (e) => e,
        );
        assert.ok(err, 'the connection was accepted');
        assert.equal(err.message, 'AUTH_INVALID');
        // socketioxide sends only the message: nothing else rides along.
        assert.equal(err.data, undefined);
      });
    }

    test('a refused client does not stop the server from serving others', async () => {
      await assert.rejects(
        connect(server.url, '/chat', { ...mode.opts, auth: { token: 'x' }, expectUpgrade: false }),
        { message: 'AUTH_INVALID' },
      );
      const [u] = users(1);
      const s = await chat(server, u, mode);
      assert.deepEqual(await next(s, 'unread:count'), { total: 0, byConversation: {} });
    });
  });
}
