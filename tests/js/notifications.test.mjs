// /notifications as the web app uses it (contract §5, §8, §9), over each transport setup:
// the unread count, REST-created notifications reaching every device of their user on
// /notifications and /chat, list/get/read/read_all/delete, broadcasts, ping.
//
// Past 400 lines: one test per `/notifications` contract row, each run over every
// transport from one body; each test reads alone.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';

import {
  RFC3339_MS, TRANSPORTS, UUID, api, assertErr, assertOk, assertStops, connect, emitAck, next, none,
  startServer, test, token, users,
} from './harness.mjs';

// `server` holds personal notifications only, so counts and lists there are exact.
// Broadcasts reach every user, also those who connect later, so they get a server of
// their own (`bserver`) where the tests count relative to what a user sees at connect.
let server;
let bserver;
before(async () => {
  [server, bserver] = await Promise.all([startServer(), startServer()]);
});
after(() => assertStops(server, bserver));

const SERVICE = 900;
const ADMIN = 901;
const NOTIFICATION_KEYS = ['_id', 'content', 'created_at', 'is_read', 'related_id', 'title', 'type', 'user_id'];

function assertNotification(n) {
  assert.deepEqual(Object.keys(n).sort(), NOTIFICATION_KEYS, JSON.stringify(n));
  assert.match(n._id, UUID);
  assert.ok(n.user_id === null || Number.isInteger(n.user_id), JSON.stringify(n));
  assert.ok(['message', 'group_invite', 'system'].includes(n.type), n.type);
  assert.equal(typeof n.title, 'string');
  assert.equal(typeof n.content, 'string');
  assert.equal(typeof n.is_read, 'boolean');
  assert.ok(n.related_id === null || typeof n.related_id === 'string', JSON.stringify(n));
  assert.match(n.created_at, RFC3339_MS);
}

/** `POST /api/notifications` as a backend (service token); asserts 201 and returns it. */
async function notify(srv, userId, title, extra = {}) {
  const res = await api(srv, 'POST', '/api/notifications', {
    user: SERVICE,
    roles: ['service'],
    body: { user_id: userId, type: 'message', title, content: 'body', related_id: 'conv-1', ...extra },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

/** `POST /api/notifications/broadcast` as an admin; asserts 201 and returns it. */
async function broadcast(srv, title) {
  const res = await api(srv, 'POST', '/api/notifications/broadcast', {
    user: ADMIN,
    roles: ['admin'],
    body: { type: 'system', title, content: 'maintenance' },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

const notifications = (srv, userId, mode) =>
  connect(srv.url, '/notifications', { ...mode.opts, token: token(userId) });
const chatSocket = (srv, userId, mode) => connect(srv.url, '/chat', { ...mode.opts, token: token(userId) });

/** The next `notification:count`'s number. */
const count = async (socket) => {
  const c = await next(socket, 'notification:count');
  assert.deepEqual(Object.keys(c), ['count'], JSON.stringify(c));
  assert.ok(Number.isInteger(c.count), JSON.stringify(c));
  return c.count;
};

/** Records every event a connected socket gets from now on, in arrival order. */
function record(socket) {
  const seen = [];
  socket.onAny((event) => seen.push(event));
  return seen;
}

const list = async (socket, payload = {}) => {
  const ack = await emitAck(socket, 'notification:list', payload);
  assertOk(ack, `notification:list ${JSON.stringify(payload)}`);
  assert.ok(Array.isArray(ack.data), JSON.stringify(ack));
  for (const n of ack.data) assertNotification(n);
  return ack.data;
};
const titles = (page) => page.map((n) => n.title);

for (const mode of TRANSPORTS) {
  describe(`/notifications over ${mode.name}`, () => {
    test('connect emits notification:count { count }: 0 for a new user, the unread count otherwise', async () => {
      const [u, other] = users(2);
      const fresh = await notifications(server, u, mode);
      assert.deepEqual(await next(fresh, 'notification:count'), { count: 0 });
      await notify(server, u, 'one');
      await notify(server, u, 'two');
      await notify(server, other, 'not yours');
      assert.equal(await count(fresh), 1);
      assert.equal(await count(fresh), 2);
      const later = await notifications(server, u, mode);
      assert.deepEqual(await next(later, 'notification:count'), { count: 2 });
      await none(later, 'notification:count', 200); // once per connect
      // A bad token is refused with AUTH_INVALID.
      await assert.rejects(
        connect(server.url, '/notifications', { ...mode.opts, token: 'not-a-jwt' }),
        (err) => err.message === 'AUTH_INVALID',
      );
      await assert.rejects(connect(server.url, '/notifications', { ...mode.opts }), (err) => err.message === 'AUTH_INVALID');
    });

    test('POST /api/notifications: notification:created on every socket of the user on /notifications and /chat, then notification:count', async () => {
      const [u, other] = users(2);
      const [phone, laptop, chat, otherPhone, otherChat] = await Promise.all([
        notifications(server, u, mode),
        notifications(server, u, mode),
        chatSocket(server, u, mode),
        notifications(server, other, mode),
        chatSocket(server, other, mode),
      ]);
      for (const s of [phone, laptop, otherPhone]) assert.equal(await count(s), 0);
      const seen = record(phone);

      // user_id as a decimal string is accepted; strings are trimmed.
      const res = await api(server, 'POST', '/api/notifications', {
        user: SERVICE,
        roles: ['service'],
        body: { user_id: String(u), type: 'group_invite', title: '  Join us  ', content: ' You were invited ', related_id: 'group-7' },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const created = res.body;
      assertNotification(created);
      assert.equal(created.user_id, u);
      assert.equal(created.type, 'group_invite');
      assert.equal(created.title, 'Join us');
      assert.equal(created.content, 'You were invited');
      assert.equal(created.is_read, false);
      assert.equal(created.related_id, 'group-7');
      assert.ok(Math.abs(Date.parse(created.created_at) - Date.now()) < 60_000, created.created_at);

      for (const s of [phone, laptop, chat]) assert.deepEqual(await next(s, 'notification:created'), created);
      assert.equal(await count(phone), 1);
      assert.equal(await count(laptop), 1);
      assert.deepEqual(seen, ['notification:created', 'notification:count'], 'created comes before the count');

      // Without related_id: null.
      const plain = await notify(server, u, 'plain', { related_id: undefined, type: 'system' });
      assert.equal(plain.related_id, null);
      for (const s of [phone, laptop, chat]) assert.deepEqual(await next(s, 'notification:created'), plain);
      assert.equal(await count(phone), 2);
      assert.equal(await count(laptop), 2);

      // Nothing reaches the other user, on either namespace.
      await none(otherPhone, 'notification:created');
      await none(otherPhone, 'notification:count', 0);
      await none(otherChat, 'notification:created', 0);
      // Each socket got each notification once.
      for (const s of [phone, laptop, chat]) await none(s, 'notification:created', 0);
    });

    test('notification:list: newest first, before paging, unreadOnly, limit 1..=200', async () => {
      const [u, other] = users(2);
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await notify(server, u, `n${i}`));
      const theirs = await notify(server, other, 'theirs');
      const s = await notifications(server, u, mode);
      assert.equal(await count(s), 5);

      const all = await list(s);
      assert.deepEqual(titles(all), ['n4', 'n3', 'n2', 'n1', 'n0']);
      assert.deepEqual(all[0], made[4], 'list items are the Notification objects');
      assert.deepEqual(titles(await list(s, { limit: 2 })), ['n4', 'n3']);
      assert.deepEqual(titles(await list(s, { before: made[3]._id, limit: 2 })), ['n2', 'n1']);
      assert.deepEqual(titles(await list(s, { before: made[1]._id })), ['n0']);
      assert.deepEqual(await list(s, { before: made[0]._id }), []);

      // unreadOnly after reading n1 and n3.
      for (const i of [1, 3]) assertOk(await emitAck(s, 'notification:read', { notificationId: made[i]._id }));
      assert.deepEqual(titles(await list(s, { unreadOnly: true })), ['n4', 'n2', 'n0']);
      assert.deepEqual(titles(await list(s, { unreadOnly: true, before: made[2]._id })), ['n0']);
      assert.deepEqual(titles(await list(s, { unreadOnly: false, limit: 3 })), ['n4', 'n3', 'n2']);
      const page = await list(s);
      assert.deepEqual(page.map((n) => n.is_read), [false, true, false, true, false]);

      // Bounds and malformed payloads.
      assertErr(await emitAck(s, 'notification:list', { limit: 0 }), 'BAD_REQUEST', 'limit');
      assertErr(await emitAck(s, 'notification:list', { limit: 201 }), 'BAD_REQUEST', 'limit');
      assertErr(await emitAck(s, 'notification:list', { limit: 'ten' }), 'BAD_REQUEST', 'limit');
      assertErr(await emitAck(s, 'notification:list', { unreadOnly: 'yes' }), 'BAD_REQUEST', 'unreadOnly');
      assertErr(await emitAck(s, 'notification:list', { before: 'x' }), 'BAD_REQUEST', 'before');
      assertErr(await emitAck(s, 'notification:list', [{ limit: 2 }]), 'BAD_REQUEST');
      assert.equal((await list(s, { limit: 200 })).length, 5);
      assert.equal((await list(s, { limit: 1 })).length, 1);
      // A cursor that is unknown or another user's is NOT_FOUND.
      assertErr(await emitAck(s, 'notification:list', { before: randomUUID() }), 'NOT_FOUND');
      assertErr(await emitAck(s, 'notification:list', { before: theirs._id }), 'NOT_FOUND');
    });

    test('notification:get and notification:read: is_read true in the ack; notification:read and the lower count reach the other device', async () => {
      const [u] = users(1);
      const a = await notify(server, u, 'a');
      const b = await notify(server, u, 'b');
      const [phone, laptop] = await Promise.all([notifications(server, u, mode), notifications(server, u, mode)]);
      assert.equal(await count(phone), 2);
      assert.equal(await count(laptop), 2);

      const got = await emitAck(phone, 'notification:get', { notificationId: a._id });
      assertOk(got);
      assert.deepEqual(got.data, a);

      const read = await emitAck(phone, 'notification:read', { notificationId: a._id });
      assertOk(read);
      assert.deepEqual(read.data, { ...a, is_read: true });
      for (const s of [laptop, phone]) {
        assert.deepEqual(await next(s, 'notification:read'), { notificationId: a._id, is_read: true });
        assert.equal(await count(s), 1);
      }
      assert.equal((await emitAck(laptop, 'notification:get', { notificationId: a._id })).data.is_read, true);
      assert.equal((await emitAck(laptop, 'notification:get', { notificationId: b._id })).data.is_read, false);
      // A new device starts from the new count.
      const tablet = await notifications(server, u, mode);
      assert.equal(await count(tablet), 1);

      assertErr(await emitAck(phone, 'notification:get', { notificationId: randomUUID() }), 'NOT_FOUND');
      assertErr(await emitAck(phone, 'notification:get', {}), 'BAD_REQUEST', 'notificationId');
      assertErr(await emitAck(phone, 'notification:read', { notificationId: 'nope' }), 'BAD_REQUEST', 'notificationId');
      await none(laptop, 'notification:read', 200);
      await none(laptop, 'notification:count', 0);
    });

    test('notification:read_all acks { count }; notification:delete emits notification:deleted', async () => {
      const [u] = users(1);
      const made = [];
      for (let i = 0; i < 3; i++) made.push(await notify(server, u, `d${i}`));
      const [phone, laptop] = await Promise.all([notifications(server, u, mode), notifications(server, u, mode)]);
      assert.equal(await count(phone), 3);
      assert.equal(await count(laptop), 3);

      const del = await emitAck(phone, 'notification:delete', { notificationId: made[1]._id });
      assertOk(del);
      assert.equal(del.data, undefined);
      for (const s of [laptop, phone]) {
        assert.deepEqual(await next(s, 'notification:deleted'), { notificationId: made[1]._id });
        assert.equal(await count(s), 2);
      }
      assertErr(await emitAck(laptop, 'notification:get', { notificationId: made[1]._id }), 'NOT_FOUND');
      assertErr(await emitAck(laptop, 'notification:delete', { notificationId: made[1]._id }), 'NOT_FOUND');
      assert.deepEqual(titles(await list(laptop)), ['d2', 'd0']);

      const all = await emitAck(laptop, 'notification:read_all', {});
      assertOk(all);
      assert.deepEqual(all.data, { count: 2 });
      for (const s of [phone, laptop]) {
        assert.deepEqual(await next(s, 'notification:read_all'), {});
        assert.equal(await count(s), 0);
      }
      assert.deepEqual(await list(phone, { unreadOnly: true }), []);
      assert.deepEqual((await list(phone)).map((n) => n.is_read), [true, true]);
      // Nothing left to mark.
      assert.deepEqual((await emitAck(phone, 'notification:read_all', {})).data, { count: 0 });
      // Deleting a read notification keeps the count at 0.
      assertOk(await emitAck(phone, 'notification:delete', { notificationId: made[0]._id }));
      assert.deepEqual(await next(laptop, 'notification:deleted'), { notificationId: made[0]._id });
      assert.deepEqual(titles(await list(laptop)), ['d2']);
    });

    test('another user\'s notification is NOT_FOUND for get/read/delete and stays unchanged', async () => {
      const [me, owner] = users(2);
      const theirs = await notify(server, owner, 'private');
      const [mine, ownerSock] = await Promise.all([notifications(server, me, mode), notifications(server, owner, mode)]);
      assert.equal(await count(mine), 0);
      assert.equal(await count(ownerSock), 1);
      for (const event of ['notification:get', 'notification:read', 'notification:delete']) {
        assertErr(await emitAck(mine, event, { notificationId: theirs._id }), 'NOT_FOUND');
      }
      assert.deepEqual((await emitAck(mine, 'notification:read_all', {})).data, { count: 0 });
      assert.deepEqual(await list(mine), []);
      // Without an ack the failure comes as an `error` event to that socket only.
      mine.emit('notification:read', { notificationId: theirs._id });
      const err = await next(mine, 'error');
      assert.deepEqual(Object.keys(err).sort(), ['code', 'message']);
      assert.equal(err.code, 'NOT_FOUND');
      // The owner's notification is untouched: no events, still unread, still listed.
      await none(ownerSock, 'notification:read', 200);
      await none(ownerSock, 'notification:deleted', 0);
      await none(ownerSock, 'notification:count', 0);
      await none(ownerSock, 'error', 0);
      const got = await emitAck(ownerSock, 'notification:get', { notificationId: theirs._id });
      assertOk(got);
      assert.deepEqual(got.data, theirs);
      const again = await notifications(server, owner, mode);
      assert.equal(await count(again), 1);
    });

    test('broadcast: notification:created on every connected user\'s sockets (both namespaces), count +1, per-user read and delete, late users list it', async () => {
      const [alice, bob, carol] = users(3);
      const [aliceN, aliceChat, bobN, carolChat, aliceN2] = await Promise.all([
        notifications(bserver, alice, mode),
        chatSocket(bserver, alice, mode),
        notifications(bserver, bob, mode),
        chatSocket(bserver, carol, mode), // only on /chat
        notifications(bserver, alice, mode), // Alice's second device
      ]);
      const aliceCount = await count(aliceN);
      const bobCount = await count(bobN);
      // Earlier broadcasts on this server are unread for a user who never saw them.
      assert.equal(aliceCount, bobCount);
      // Every socket's connect-time count must be in before the broadcast: it is computed
      // when it is sent, so one still pending would already include the broadcast.
      assert.equal(await count(aliceN2), aliceCount);

      const b = await broadcast(bserver, 'maintenance tonight');
      assertNotification(b);
      assert.equal(b.user_id, null);
      assert.equal(b.type, 'system');
      assert.equal(b.is_read, false);
      for (const s of [aliceN, aliceChat, bobN, carolChat, aliceN2]) assert.deepEqual(await next(s, 'notification:created'), b);
      assert.equal(await count(aliceN), aliceCount + 1);
      assert.equal(await count(aliceN2), aliceCount + 1);
      assert.equal(await count(bobN), bobCount + 1);

      // Each user sees it in its list, unread.
      for (const s of [aliceN, bobN]) {
        const [first] = await list(s, { limit: 1 });
        assert.deepEqual(first, b);
      }

      // Alice reads it: her count drops, Bob's view is unchanged.
      const read = await emitAck(aliceN, 'notification:read', { notificationId: b._id });
      assertOk(read);
      assert.deepEqual(read.data, { ...b, is_read: true });
      assert.deepEqual(await next(aliceN, 'notification:read'), { notificationId: b._id, is_read: true });
      assert.equal(await count(aliceN), aliceCount);
      const bobGot = await emitAck(bobN, 'notification:get', { notificationId: b._id });
      assertOk(bobGot);
      assert.equal(bobGot.data.is_read, false);

      // Alice deletes it: gone for her only.
      assertOk(await emitAck(aliceN, 'notification:delete', { notificationId: b._id }));
      assert.deepEqual(await next(aliceN, 'notification:deleted'), { notificationId: b._id });
      assert.ok(!(await list(aliceN, { limit: 200 })).some((n) => n._id === b._id), 'deleted for alice');
      assertErr(await emitAck(aliceN, 'notification:get', { notificationId: b._id }), 'NOT_FOUND');
      const bobsUnread = await list(bobN, { unreadOnly: true });
      assert.deepEqual(bobsUnread[0], b);

      // Bob's other events are not Alice's.
      await none(bobN, 'notification:read', 0);
      await none(bobN, 'notification:deleted', 0);
      await none(bobN, 'notification:count', 0);

      // Dave connects later: he counts it and lists it first.
      const [dave] = users(1);
      const daveN = await notifications(bserver, dave, mode);
      const daveCount = await count(daveN);
      assert.equal(daveCount, bobCount + 1);
      const daves = await list(daveN, { limit: 200 });
      assert.deepEqual(daves[0], b);
      assert.equal(daves.filter((n) => !n.is_read).length, daveCount);
      // He reads all: the broadcast is among them.
      const all = await emitAck(daveN, 'notification:read_all', {});
      assertOk(all);
      assert.deepEqual(all.data, { count: daveCount });
      assert.equal(await count(daveN), 0);
      // Bob still has it unread.
      assert.equal((await emitAck(bobN, 'notification:get', { notificationId: b._id })).data.is_read, false);
      // Each socket got the broadcast once.
      for (const s of [aliceN, aliceChat, bobN, carolChat]) await none(s, 'notification:created', 0);
    });

    test('the list merges personal notifications and broadcasts newest first; before and unreadOnly page across both', async () => {
      const [u] = users(1);
      const s = await notifications(bserver, u, mode);
      const c0 = await count(s); // the broadcasts of earlier tests
      const p1 = await notify(bserver, u, 'p1');
      assert.equal(await count(s), c0 + 1);
      const b1 = await broadcast(bserver, 'b1');
      assert.equal(await count(s), c0 + 2);
      const p2 = await notify(bserver, u, 'p2');
      assert.equal(await count(s), c0 + 3);
      const b2 = await broadcast(bserver, 'b2');
      assert.equal(await count(s), c0 + 4);
      for (const n of [p1, b1, p2, b2]) assert.deepEqual(await next(s, 'notification:created'), n);

      const ids = (page) => page.map((n) => n.title);
      assert.deepEqual(ids(await list(s, { limit: 4 })), ['b2', 'p2', 'b1', 'p1']);
      assert.deepEqual(ids(await list(s, { before: b2._id, limit: 2 })), ['p2', 'b1']);
      assert.deepEqual(ids(await list(s, { before: p2._id, limit: 2 })), ['b1', 'p1']);
      assert.deepEqual(ids(await list(s, { before: b1._id, limit: 1 })), ['p1']);

      for (const n of [b1, p2]) assertOk(await emitAck(s, 'notification:read', { notificationId: n._id }));
      assert.equal(await count(s), c0 + 3);
      assert.equal(await count(s), c0 + 2);
      assert.deepEqual(ids(await list(s, { unreadOnly: true, limit: 2 })), ['b2', 'p1']);
      assert.deepEqual(ids(await list(s, { unreadOnly: true, before: b2._id, limit: 1 })), ['p1']);
      assert.deepEqual((await list(s, { limit: 4 })).map((n) => n.is_read), [false, true, true, false]);

      // Deleting an unread broadcast lowers the count; it is gone from my pages only.
      assertOk(await emitAck(s, 'notification:delete', { notificationId: b2._id }));
      assert.deepEqual(await next(s, 'notification:deleted'), { notificationId: b2._id });
      assert.equal(await count(s), c0 + 1);
      assert.deepEqual(ids(await list(s, { limit: 3 })), ['p2', 'b1', 'p1']);
      assertErr(await emitAck(s, 'notification:list', { before: b2._id }), 'NOT_FOUND', 'before');
    });

    test('notification:ping { action: "ping" }: ack { ok, data: { timestamp } } equals pong { timestamp }, epoch ms, this socket only', async () => {
      const [u] = users(1);
      const [s, other] = await Promise.all([notifications(server, u, mode), notifications(server, u, mode)]);
      const before = Date.now();
      const ack = await emitAck(s, 'notification:ping', { action: 'ping' });
      const afterAck = Date.now();
      assert.deepEqual(Object.keys(ack).sort(), ['data', 'ok']);
      assert.equal(ack.ok, true);
      assert.deepEqual(Object.keys(ack.data), ['timestamp']);
      const pong = await next(s, 'pong', 1000);
      assert.deepEqual(pong, ack.data);
      assert.ok(Number.isInteger(pong.timestamp), JSON.stringify(pong));
      assert.ok(pong.timestamp >= before && pong.timestamp <= afterAck, `${before} <= ${pong.timestamp} <= ${afterAck}`);
      // The action may be left out; any other action is BAD_REQUEST.
      assertOk(await emitAck(s, 'notification:ping', {}));
      await next(s, 'pong', 1000);
      assertErr(await emitAck(s, 'notification:ping', { action: 'pong' }), 'BAD_REQUEST', 'action');
      await none(s, 'pong', 200);
      await none(other, 'pong', 0);
      // An unknown event is BAD_REQUEST "unknown event".
      assertErr(await emitAck(s, 'notification:explode', {}), 'BAD_REQUEST', 'unknown event');
    });

    test('REST: 401 without a token, 403 for user tokens (before the body), 400 naming the field; nothing is created', async () => {
      const [u] = users(1);
      const [s, c] = await Promise.all([notifications(server, u, mode), chatSocket(server, u, mode)]);
      assert.equal(await count(s), 0);
      const good = { user_id: u, type: 'system', title: 't', content: 'c' };
      const post = (route, body, who = {}) => api(server, 'POST', route, { body, ...who });
      const service = { user: SERVICE, roles: ['service'] };

      for (const route of ['/api/notifications', '/api/notifications/broadcast']) {
        const none401 = await post(route, good);
        assert.equal(none401.status, 401, route);
        assert.equal(none401.body.error.code, 'AUTH_INVALID');
        const bad401 = await post(route, good, { auth: 'Bearer not-a-jwt' });
        assert.equal(bad401.status, 401, route);
        for (const roles of [['user'], ['staff'], ['manager']]) {
          const res = await post(route, good, { user: u, roles });
          assert.equal(res.status, 403, `${route} as ${roles}`);
          assert.deepEqual(Object.keys(res.body), ['error']);
          assert.equal(res.body.error.code, 'FORBIDDEN');
        }
        // Rights come before the body: a user with garbage still gets 403.
        assert.equal((await post(route, { nonsense: 1 }, { user: u, roles: ['user'] })).status, 403);
      }

      const cases = [
        [{ ...good, type: 'spam' }, 'type'],
        [{ ...good, title: '' }, 'title'],
        [{ ...good, title: '   ' }, 'title'],
        [{ ...good, title: 'x'.repeat(201) }, 'title'],
        [{ ...good, content: 'x'.repeat(4001) }, 'content'],
        [{ ...good, content: undefined }, 'content'],
        [{ ...good, user_id: undefined }, 'user_id'],
        [{ ...good, user_id: '' }, 'user_id'],
        [{ ...good, related_id: 'r'.repeat(201) }, 'related_id'],
        [[good], 'payload'],
      ];
      for (const [body, field] of cases) {
        const res = await post('/api/notifications', body, service);
        assert.equal(res.status, 400, `${JSON.stringify(body)} -> ${res.status} ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'BAD_REQUEST');
        assert.ok(res.body.error.message.includes(field), `message should name "${field}": ${JSON.stringify(res.body)}`);
      }
      const bbad = await post('/api/notifications/broadcast', { type: 'system', title: '', content: 'c' }, service);
      assert.equal(bbad.status, 400);
      assert.ok(bbad.body.error.message.includes('title'), JSON.stringify(bbad.body));

      await none(s, 'notification:created', 300);
      await none(c, 'notification:created', 0);
      await none(s, 'notification:count', 0);
      assert.deepEqual(await list(s), []);

      // The good body passes, as admin too.
      const ok = await post('/api/notifications', good, { user: ADMIN, roles: ['admin'] });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.deepEqual(await next(s, 'notification:created'), ok.body);
      assert.equal(await count(s), 1);
    });
  });
}
