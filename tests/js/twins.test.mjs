// The REST twins (contract §6 "REST twins") as a web app sees them: each route's
// answer, and the broadcast it causes as the official socket.io-client receives it.
// A twin runs the socket event's own operation with no socket acting, so every socket
// of the room hears the change, the caller's own included. Each broadcast is checked
// on the sockets that must get it (exactly once) and on sockets that must not (another
// user, a device outside the room). Reads are checked against the socket event they
// twin (same user, same answer), and writes by doing one operation both ways on two
// identical setups and comparing what is left.
//
// Past 400 lines: one test per REST twin of /chat, /notifications and `orders:sync` (and
// per write done both ways), sharing the two servers below; each test reads alone.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';

import {
  RFC3339_MS, TRANSPORTS, UUID, api, assertOk, assertStops, connect, createConversation, emitAck,
  next, none, sleep, startServer, test, token, users,
} from './harness.mjs';

// The web app's setup: websocket only. The transports themselves are covered by the
// other files; here the point is the broadcast a REST call causes.
const mode = TRANSPORTS.find((t) => t.name === 'websocket');

// `server` has personal notifications only, so notification counts there are exact.
// Broadcast notifications reach every user, also later ones: they get `bserver`.
let server;
let bserver;
before(async () => {
  [server, bserver] = await Promise.all([startServer(), startServer()]);
});
after(() => assertStops(server, bserver));

const SERVICE = 900;
const service = { user: SERVICE, roles: ['service'] };
const QUIET_MS = 300;

function assertStatus(res, status, what) {
  assert.equal(res.status, status, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** `unread:count` for `total` unread messages all in `conv` (zeros may be omitted). */
function assertUnread(count, total, conv) {
  assert.equal(count.total, total, JSON.stringify(count));
  const by = Object.fromEntries(Object.entries(count.byConversation).filter(([, n]) => n !== 0));
  assert.deepEqual(by, total ? { [conv]: total } : {});
}

/**
 * After one quiet window, asserts that none of `[socket, event]` arrived (again): with
 * the expected copies taken by `next` before, this makes "exactly once".
 */
async function quiet(pairs, ms = QUIET_MS) {
  await sleep(ms);
  for (const [socket, event] of pairs) await none(socket, event, 0);
}

const chatSocket = async (srv, userId) => {
  const s = await connect(srv.url, '/chat', { ...mode.opts, token: token(userId) });
  await next(s, 'unread:count'); // the connect-time count
  return s;
};
const notifSocket = async (srv, userId) => {
  const s = await connect(srv.url, '/notifications', { ...mode.opts, token: token(userId) });
  s.connectCount = (await next(s, 'notification:count')).count;
  return s;
};
const joinConv = async (socket, conversationId) =>
  assertOk(await emitAck(socket, 'conversation:join', { conversationId }), 'conversation:join');

/**
 * A group owned by `owner` with `member`; sockets: `so` (owner, in the room), `sob`
 * (the owner's other device, in the room), `sm` (member, in the room), `smb` (the
 * member's other device, not in the room), `sx` (an outsider).
 */
async function room(srv = server) {
  const [owner, member, outsider] = users(3);
  const [so, sob, sm, smb, sx] = await Promise.all(
    [owner, owner, member, member, outsider].map((u) => chatSocket(srv, u)),
  );
  const conv = await createConversation(srv, owner, [member]);
  for (const s of [so, sob, sm, smb]) assert.equal((await next(s, 'conversation:created'))._id, conv._id);
  for (const s of [so, sob, sm]) await joinConv(s, conv._id);
  return { owner, member, outsider, so, sob, sm, smb, sx, id: conv._id };
}

const post = (srv, user, id, body) => api(srv, 'POST', `/api/conversations/${id}/messages`, { user, body });

describe('REST twins of /chat', () => {
  test('POST /api/conversations/:id/messages: message:created to the whole room (sender too), unread:count to the others', async () => {
    const { owner, member, so, sob, sm, smb, sx, id } = await room();
    const m = assertStatus(await post(server, owner, id, { content: '  from a backend  ', clientId: 'k-1' }), 201, 'POST messages');
    assert.match(m._id, UUID);
    assert.equal(m.conversation_id, id);
    assert.equal(m.sender_id, owner);
    assert.equal(m.content, 'from a backend');
    assert.equal(m.client_id, 'k-1');
    assert.deepEqual(m.attachments, []);
    assert.deepEqual(m.seen_by, []);
    assert.equal(m.updated_at, null);
    assert.match(m.created_at, RFC3339_MS);
    // No socket acted: the sender's own sockets in the room hear it as well.
    for (const s of [so, sob, sm]) assert.deepEqual(await next(s, 'message:created'), m);
    for (const s of [sm, smb]) assertUnread(await next(s, 'unread:count'), 1, id);
    await quiet([
      [so, 'message:created'], [sob, 'message:created'], [sm, 'message:created'],
      [smb, 'message:created'], [sx, 'message:created'],
      [so, 'unread:count'], [sob, 'unread:count'], [sm, 'unread:count'], [smb, 'unread:count'], [sx, 'unread:count'],
    ]);

    // The same clientId again: the first message, nothing stored or announced.
    const again = assertStatus(await post(server, owner, id, { content: 'ignored', clientId: 'k-1' }), 201, 'repeat');
    assert.deepEqual(again, m);
    await quiet([
      [so, 'message:created'], [sob, 'message:created'], [sm, 'message:created'],
      [sm, 'unread:count'], [smb, 'unread:count'],
    ]);
    const page = assertOk(await emitAck(sm, 'message:list', { conversationId: id }), 'message:list');
    assert.deepEqual(page.map((x) => x._id), [m._id]);
    const rest = assertStatus(await api(server, 'GET', `/api/conversations/${id}/messages`, { user: member }), 200, 'GET messages');
    assert.deepEqual(rest, page);

    // A member's post is announced the same way, and only the others' counts move.
    const m2 = assertStatus(await post(server, member, id, { content: 'reply' }), 201, 'member POST');
    for (const s of [so, sob, sm]) assert.deepEqual(await next(s, 'message:created'), m2);
    for (const s of [so, sob]) assertUnread(await next(s, 'unread:count'), 1, id);
    await quiet([[sm, 'unread:count'], [smb, 'unread:count'], [sx, 'message:created'], [smb, 'message:created']]);
  });

  test('POST /api/conversations/:id/messages by a non-member: 403, nothing announced', async () => {
    const { outsider, so, sm, id } = await room();
    assertStatus(await post(server, outsider, id, { content: 'let me in' }), 403, 'outsider POST');
    assertStatus(await post(server, outsider, randomUUID(), { content: 'nowhere' }), 404, 'unknown conversation');
    await quiet([[so, 'message:created'], [sm, 'message:created'], [sm, 'unread:count']]);
  });

  test('PATCH /api/messages/:id: message:updated to the room; DELETE: message:deleted and unread:count', async () => {
    const { owner, member, so, sob, sm, smb, sx, id } = await room();
    const m = assertStatus(await post(server, owner, id, { content: 'draft' }), 201, 'POST');
    for (const s of [so, sob, sm]) await next(s, 'message:created');
    for (const s of [sm, smb]) assertUnread(await next(s, 'unread:count'), 1, id);

    // Only the sender edits: the member's PATCH is 403 and announces nothing.
    assertStatus(await api(server, 'PATCH', `/api/messages/${m._id}`, { user: member, body: { content: 'hijack' } }), 403, 'member PATCH');
    const edited = assertStatus(
      await api(server, 'PATCH', `/api/messages/${m._id}`, { user: owner, body: { content: '  final  ' } }),
      200,
      'PATCH',
    );
    assert.equal(edited._id, m._id);
    assert.equal(edited.content, 'final');
    assert.equal(edited.created_at, m.created_at);
    assert.match(edited.updated_at, RFC3339_MS);
    for (const s of [so, sob, sm]) assert.deepEqual(await next(s, 'message:updated'), edited);
    await quiet([[so, 'message:updated'], [sob, 'message:updated'], [sm, 'message:updated'], [smb, 'message:updated'], [sx, 'message:updated']]);

    const del = await api(server, 'DELETE', `/api/messages/${m._id}`, { user: owner });
    assertStatus(del, 204, 'DELETE');
    assert.equal(del.body, '');
    for (const s of [so, sob, sm]) assert.deepEqual(await next(s, 'message:deleted'), { messageId: m._id, conversationId: id });
    // unread:count to every member but the message's sender: the message no longer counts.
    for (const s of [sm, smb]) assertUnread(await next(s, 'unread:count'), 0, id);
    await quiet([
      [so, 'message:deleted'], [sob, 'message:deleted'], [sm, 'message:deleted'], [smb, 'message:deleted'], [sx, 'message:deleted'],
      [so, 'unread:count'], [sob, 'unread:count'], [sm, 'unread:count'], [smb, 'unread:count'],
    ]);
    // Gone: a second DELETE and a PATCH are 404, and nothing is announced.
    assertStatus(await api(server, 'DELETE', `/api/messages/${m._id}`, { user: owner }), 404, 'DELETE again');
    assertStatus(await api(server, 'PATCH', `/api/messages/${m._id}`, { user: owner, body: { content: 'x' } }), 404, 'PATCH deleted');
    await quiet([[so, 'message:deleted'], [sm, 'message:updated']]);
  });

  test('POST /api/messages/:id/read: message:read to the room with the answer\'s readerId/readAt, unread:count to the reader', async () => {
    const { owner, member, outsider, so, sob, sm, smb, sx, id } = await room();
    const m1 = assertStatus(await post(server, owner, id, { content: 'one' }), 201, 'POST');
    const m2 = assertStatus(await post(server, owner, id, { content: 'two' }), 201, 'POST');
    for (const s of [so, sob, sm]) { await next(s, 'message:created'); await next(s, 'message:created'); }
    for (const s of [sm, smb]) { await next(s, 'unread:count'); assertUnread(await next(s, 'unread:count'), 2, id); }

    assertStatus(await api(server, 'POST', `/api/messages/${m2._id}/read`, { user: outsider }), 403, 'outsider read');
    const read = assertStatus(await api(server, 'POST', `/api/messages/${m1._id}/read`, { user: member }), 200, 'read');
    assert.deepEqual(Object.keys(read).sort(), ['messageId', 'readAt', 'readerId']);
    assert.equal(read.messageId, m1._id);
    assert.equal(read.readerId, member);
    assert.match(read.readAt, RFC3339_MS);
    for (const s of [so, sob, sm]) {
      assert.deepEqual(await next(s, 'message:read'), { messageId: m1._id, conversationId: id, readerId: member, readAt: read.readAt });
    }
    for (const s of [sm, smb]) assertUnread(await next(s, 'unread:count'), 1, id);
    await quiet([
      [so, 'message:read'], [sob, 'message:read'], [sm, 'message:read'], [smb, 'message:read'], [sx, 'message:read'],
      [so, 'unread:count'], [sob, 'unread:count'], [sm, 'unread:count'], [smb, 'unread:count'], [sx, 'unread:count'],
    ]);
    // The cursor is where the REST read put it: m1 seen by the member, m2 not.
    const page = assertOk(await emitAck(so, 'message:list', { conversationId: id }), 'message:list');
    assert.deepEqual(page.map((x) => [x._id, x.seen_by]), [[m2._id, []], [m1._id, [member]]]);
  });

  test('POST/DELETE /api/conversations/:id/members: members:added and members:removed, then the removed user hears nothing', async () => {
    const { owner, member, so, sob, sm, smb, sx, id } = await room();
    const [newbie] = users(1);
    const [sn, snb] = await Promise.all([chatSocket(server, newbie), chatSocket(server, newbie)]);
    const path = `/api/conversations/${id}/members`;

    // Only the owner (or admin) adds: a member's add is 403 and announces nothing.
    assertStatus(await api(server, 'POST', path, { user: member, body: { userId: newbie } }), 403, 'member add');
    const added = assertStatus(await api(server, 'POST', path, { user: owner, body: { userId: newbie } }), 201, 'add');
    assert.deepEqual(added, { conversationId: id, userId: newbie });
    // The room, and the new member's own sockets (not in the room yet).
    for (const s of [so, sob, sm, sn, snb]) assert.deepEqual(await next(s, 'members:added'), added);
    await quiet([
      [so, 'members:added'], [sob, 'members:added'], [sm, 'members:added'], [sn, 'members:added'], [snb, 'members:added'],
      [smb, 'members:added'], [sx, 'members:added'],
    ]);
    // Again: 200, the same answer, nothing announced.
    const again = assertStatus(await api(server, 'POST', path, { user: owner, body: { userId: String(newbie) } }), 200, 'add again');
    assert.deepEqual(again, added);
    await quiet([[so, 'members:added'], [sm, 'members:added'], [sn, 'members:added'], [snb, 'members:added']]);

    // The newcomer joins on one device and gets the room's messages there.
    await joinConv(sn, id);
    const m = assertStatus(await post(server, owner, id, { content: 'welcome' }), 201, 'POST');
    for (const s of [so, sob, sm, sn]) assert.deepEqual(await next(s, 'message:created'), m);
    for (const s of [sm, smb, sn, snb]) assertUnread(await next(s, 'unread:count'), 1, id);

    const removed = await api(server, 'DELETE', `${path}?userId=${newbie}`, { user: owner });
    assertStatus(removed, 204, 'remove');
    const payload = { conversationId: id, userId: newbie };
    for (const s of [so, sob, sm, sn, snb]) assert.deepEqual(await next(s, 'members:removed'), payload);
    // The removed user's count no longer includes the conversation.
    for (const s of [sn, snb]) assertUnread(await next(s, 'unread:count'), 0, id);
    await quiet([
      [so, 'members:removed'], [sob, 'members:removed'], [sm, 'members:removed'], [sn, 'members:removed'], [snb, 'members:removed'],
      [smb, 'members:removed'], [sx, 'members:removed'],
      [so, 'unread:count'], [sm, 'unread:count'], [sn, 'unread:count'], [snb, 'unread:count'],
    ]);
    // Not a member any more: a second remove is 404.
    assertStatus(await api(server, 'DELETE', `${path}?userId=${newbie}`, { user: owner }), 404, 'remove again');

    // The removed user's socket left the room: the next message reaches the others only.
    const later = assertStatus(await post(server, owner, id, { content: 'after the removal' }), 201, 'POST');
    for (const s of [so, sob, sm]) assert.deepEqual(await next(s, 'message:created'), later);
    assertUnread(await next(sm, 'unread:count'), 2, id);
    await quiet([[sn, 'message:created'], [snb, 'message:created'], [sn, 'unread:count'], [snb, 'unread:count'], [sx, 'message:created']]);
    // And over REST it is refused.
    assertStatus(await api(server, 'GET', `/api/conversations/${id}/messages`, { user: newbie }), 403, 'GET as removed');
  });

  test('a member removes itself over REST: members:removed to the room and its sockets, which leave the room', async () => {
    const { owner, member, so, sob, sm, smb, id } = await room();
    assertStatus(await api(server, 'DELETE', `/api/conversations/${id}/members?userId=${member}`, { user: member }), 204, 'leave');
    for (const s of [so, sob, sm, smb]) assert.deepEqual(await next(s, 'members:removed'), { conversationId: id, userId: member });
    for (const s of [sm, smb]) assertUnread(await next(s, 'unread:count'), 0, id);
    await quiet([[so, 'members:removed'], [sm, 'members:removed'], [smb, 'members:removed'], [so, 'unread:count']]);
    const m = assertStatus(await post(server, owner, id, { content: 'still here?' }), 201, 'POST');
    for (const s of [so, sob]) assert.deepEqual(await next(s, 'message:created'), m);
    await quiet([[sm, 'message:created'], [sm, 'unread:count'], [smb, 'unread:count']]);
  });
});

describe('REST twins of /chat: the same write over the socket and over REST leaves the same state', () => {
  test('message:send / POST messages, message:read / POST read: same messages, cursors, seen_by and unread counts', async () => {
    const [owner, member] = users(2);
    const [so, sm] = await Promise.all([chatSocket(server, owner), chatSocket(server, member)]);
    const a = await createConversation(server, owner, [member]); // done over the socket
    const b = await createConversation(server, owner, [member]); // done over REST
    for (const s of [so, sm]) { await next(s, 'conversation:created'); await next(s, 'conversation:created'); }
    for (const s of [so, sm]) { await joinConv(s, a._id); await joinConv(s, b._id); }

    const sentA = [];
    const sentB = [];
    for (const content of ['one', 'two', 'three']) {
      const extra = { attachments: ['https://cdn.example/x.png'], clientId: `c-${content}` };
      sentA.push(assertOk(await emitAck(so, 'message:send', { conversationId: a._id, content, ...extra }), 'send'));
      sentB.push(assertStatus(await post(server, owner, b._id, { content, ...extra }), 201, 'POST'));
    }
    const strip = (m) => ({ ...m, _id: '-', conversation_id: '-', created_at: '-' });
    assert.deepEqual(sentB.map(strip), sentA.map(strip));
    // message:created reached the member for both, the same message as answered.
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await next(sm, 'message:created'), sentA[i]);
      assert.deepEqual(await next(sm, 'message:created'), sentB[i]);
    }
    // The acting socket is skipped over the socket, not over REST.
    for (const m of sentB) assert.deepEqual(await next(so, 'message:created'), m);
    await quiet([[so, 'message:created'], [sm, 'message:created']]);
    for (let i = 0; i < 6; i++) await next(sm, 'unread:count');
    const unread = (s) => next(s, 'unread:count');

    // Read the second message of each; then an older one (the cursor never moves back).
    assertOk(await emitAck(sm, 'message:read', { messageId: sentA[1]._id }), 'message:read');
    const overSocket = await unread(sm);
    const r = assertStatus(await api(server, 'POST', `/api/messages/${sentB[1]._id}/read`, { user: member }), 200, 'read');
    const overRest = await unread(sm);
    assert.deepEqual(overSocket.byConversation, { [a._id]: 1, [b._id]: 3 });
    assert.deepEqual(overRest.byConversation, { [a._id]: 1, [b._id]: 1 });
    const evA = await next(so, 'message:read');
    const evB = await next(so, 'message:read');
    assert.deepEqual({ ...evA, readAt: '-', messageId: '-', conversationId: '-' }, { ...evB, readAt: '-', messageId: '-', conversationId: '-' });
    assert.deepEqual([evB.messageId, evB.readerId, evB.readAt], [r.messageId, r.readerId, r.readAt]);
    assertOk(await emitAck(sm, 'message:read', { messageId: sentA[0]._id }), 'message:read older');
    assertStatus(await api(server, 'POST', `/api/messages/${sentB[0]._id}/read`, { user: member }), 200, 'read older');
    assert.deepEqual((await unread(sm)).byConversation, { [a._id]: 1, [b._id]: 1 });
    assert.deepEqual((await unread(sm)).byConversation, { [a._id]: 1, [b._id]: 1 });

    // The stored state: seen_by per message (over either channel), unread_count per conversation.
    const pageA = assertOk(await emitAck(so, 'message:list', { conversationId: a._id }), 'list A');
    const pageB = assertStatus(await api(server, 'GET', `/api/conversations/${b._id}/messages`, { user: owner }), 200, 'GET B');
    assert.deepEqual(pageA.map((m) => m.seen_by), [[], [member], [member]]);
    assert.deepEqual(pageB.map((m) => m.seen_by), pageA.map((m) => m.seen_by));
    assert.deepEqual(pageB.map(strip), pageA.map(strip));
    const convs = assertStatus(await api(server, 'GET', '/api/conversations', { user: member }), 200, 'GET conversations');
    const count = (id) => convs.items.find((c) => c._id === id)?.unread_count;
    assert.equal(count(a._id), 1);
    assert.equal(count(b._id), count(a._id));
  });

  test('members:add / POST members and members:remove / DELETE members: same participants and announcements', async () => {
    const [owner, x, y] = users(3);
    const [so, sx, sy] = await Promise.all([owner, x, y].map((u) => chatSocket(server, u)));
    const a = await createConversation(server, owner, []);
    const b = await createConversation(server, owner, []);
    await next(so, 'conversation:created'); await next(so, 'conversation:created');
    await joinConv(so, a._id); await joinConv(so, b._id);
    assertOk(await emitAck(so, 'members:add', { conversationId: a._id, userId: x }), 'members:add');
    const overSocket = [await next(so, 'members:added'), await next(sx, 'members:added')];
    assertStatus(await api(server, 'POST', `/api/conversations/${b._id}/members`, { user: owner, body: { userId: x } }), 201, 'add');
    const overRest = [await next(so, 'members:added'), await next(sx, 'members:added')];
    for (const [s, r] of overSocket.map((e, i) => [e, overRest[i]])) {
      assert.deepEqual({ ...s, conversationId: '-' }, { ...r, conversationId: '-' });
    }
    const participants = async (id) =>
      assertStatus(await api(server, 'GET', `/api/conversations/${id}`, { user: owner }), 200, 'GET conversation').participants;
    assert.deepEqual(await participants(a._id), [owner, x]);
    assert.deepEqual(await participants(b._id), await participants(a._id));

    assertOk(await emitAck(so, 'members:remove', { conversationId: a._id, userId: x }), 'members:remove');
    assert.deepEqual(await next(sx, 'members:removed'), { conversationId: a._id, userId: x });
    assertStatus(await api(server, 'DELETE', `/api/conversations/${b._id}/members?userId=${x}`, { user: owner }), 204, 'remove');
    assert.deepEqual(await next(sx, 'members:removed'), { conversationId: b._id, userId: x });
    assert.deepEqual(await participants(b._id), [owner]);
    assert.deepEqual(await participants(a._id), [owner]);
    await quiet([[sy, 'members:added'], [sy, 'members:removed'], [sx, 'members:removed']]);
  });
});

// ---------------------------------------------------------------------------------
// /notifications

/** `POST /api/notifications` as a backend; asserts 201 and returns it. */
async function notify(srv, userId, title) {
  const res = await api(srv, 'POST', '/api/notifications', {
    ...service,
    body: { user_id: userId, type: 'message', title, content: 'body', related_id: 'conv-1' },
  });
  return assertStatus(res, 201, 'POST /api/notifications');
}

/** Records every event a connected socket gets from now on, in arrival order. */
function record(socket) {
  const seen = [];
  socket.onAny((event) => seen.push(event));
  return seen;
}

/**
 * A user with two /notifications sockets (`n1`, `n2`), its /chat socket `c`, and another
 * user's /notifications socket `nx`, after `k` notifications for the user (their
 * notification:created and counts consumed).
 */
async function inbox(k, srv = server) {
  const [u, x] = users(2);
  const [n1, n2, nx] = await Promise.all([notifSocket(srv, u), notifSocket(srv, u), notifSocket(srv, x)]);
  const c = await chatSocket(srv, u);
  const made = [];
  for (let i = 0; i < k; i++) made.push(await notify(srv, u, `n${i}`));
  for (const s of [n1, n2]) {
    for (let i = 0; i < k; i++) {
      await next(s, 'notification:created');
      await next(s, 'notification:count');
    }
  }
  for (let i = 0; i < k; i++) await next(c, 'notification:created');
  return { u, x, n1, n2, nx, c, made };
}

describe('REST twins of /notifications', () => {
  test('POST /api/notifications/:id/read: notification:read then notification:count on every socket of the user', async () => {
    const { u, x, n1, n2, nx, c, made: [a, b] } = await inbox(2);
    const seen = record(n1);
    assertStatus(await api(server, 'POST', `/api/notifications/${a._id}/read`, { user: x }), 404, 'another user\'s');
    const res = assertStatus(await api(server, 'POST', `/api/notifications/${a._id}/read`, { user: u }), 200, 'read');
    assert.deepEqual(res, { ...a, is_read: true });
    for (const s of [n1, n2]) {
      assert.deepEqual(await next(s, 'notification:read'), { notificationId: a._id, is_read: true });
      assert.deepEqual(await next(s, 'notification:count'), { count: 1 });
    }
    await quiet([
      [n1, 'notification:read'], [n2, 'notification:read'], [n1, 'notification:count'], [n2, 'notification:count'],
      [nx, 'notification:read'], [nx, 'notification:count'], [c, 'notification:read'], [c, 'notification:count'],
    ]);
    assert.deepEqual(seen, ['notification:read', 'notification:count']);
    // Reading it again succeeds and announces again; the count stays.
    assertStatus(await api(server, 'POST', `/api/notifications/${a._id}/read`, { user: u }), 200, 'read again');
    assert.deepEqual(await next(n2, 'notification:read'), { notificationId: a._id, is_read: true });
    assert.deepEqual(await next(n2, 'notification:count'), { count: 1 });
    assert.equal(b.is_read, false);
  });

  test('POST /api/notifications/read-all: { count }, notification:read_all {} and notification:count 0', async () => {
    const { u, n1, n2, nx, c } = await inbox(3);
    const seen = record(n2);
    assert.deepEqual(assertStatus(await api(server, 'POST', '/api/notifications/read-all', { user: u }), 200, 'read-all'), { count: 3 });
    for (const s of [n1, n2]) {
      assert.deepEqual(await next(s, 'notification:read_all'), {});
      assert.deepEqual(await next(s, 'notification:count'), { count: 0 });
    }
    await quiet([
      [n1, 'notification:read_all'], [n2, 'notification:read_all'], [n1, 'notification:count'], [n2, 'notification:count'],
      [nx, 'notification:read_all'], [nx, 'notification:count'], [c, 'notification:read_all'],
    ]);
    assert.deepEqual(seen, ['notification:read_all', 'notification:count']);
    // Nothing left: count 0, and still announced.
    assert.deepEqual(assertStatus(await api(server, 'POST', '/api/notifications/read-all', { user: u }), 200, 'again'), { count: 0 });
    assert.deepEqual(await next(n1, 'notification:read_all'), {});
    assert.deepEqual(await next(n1, 'notification:count'), { count: 0 });
  });

  test('DELETE /api/notifications/:id: 204, notification:deleted then notification:count', async () => {
    const { u, x, n1, n2, nx, c, made: [a] } = await inbox(2);
    const seen = record(n1);
    assertStatus(await api(server, 'DELETE', `/api/notifications/${a._id}`, { user: x }), 404, 'another user\'s');
    await quiet([[n1, 'notification:deleted'], [nx, 'notification:deleted']], 100);
    const res = await api(server, 'DELETE', `/api/notifications/${a._id}`, { user: u });
    assertStatus(res, 204, 'DELETE');
    assert.equal(res.body, '');
    for (const s of [n1, n2]) {
      assert.deepEqual(await next(s, 'notification:deleted'), { notificationId: a._id });
      assert.deepEqual(await next(s, 'notification:count'), { count: 1 });
    }
    await quiet([
      [n1, 'notification:deleted'], [n2, 'notification:deleted'], [n1, 'notification:count'], [n2, 'notification:count'],
      [nx, 'notification:deleted'], [nx, 'notification:count'], [c, 'notification:deleted'],
    ]);
    assert.deepEqual(seen, ['notification:deleted', 'notification:count']);
    assertStatus(await api(server, 'DELETE', `/api/notifications/${a._id}`, { user: u }), 404, 'DELETE again');
    assertStatus(await api(server, 'GET', `/api/notifications/${a._id}`, { user: u }), 404, 'GET deleted');
    await quiet([[n1, 'notification:deleted'], [n1, 'notification:count']], 100);
  });

  test('GET list / :id / unread/count answer what notification:list / get / count answer (broadcasts included)', async () => {
    // On the broadcast server: a broadcast's is_read is per user.
    const { u, x, n1, nx, made } = await inbox(5, bserver);
    const cast = assertStatus(await api(bserver, 'POST', '/api/notifications/broadcast', {
      user: 901, roles: ['admin'], body: { type: 'system', title: 'maintenance', content: 'tonight' },
    }), 201, 'broadcast');
    await next(n1, 'notification:created');
    await next(n1, 'notification:count');
    assertOk(await emitAck(n1, 'notification:read', { notificationId: made[1]._id }), 'read');
    assertOk(await emitAck(n1, 'notification:read', { notificationId: cast._id }), 'read broadcast');
    assertOk(await emitAck(n1, 'notification:delete', { notificationId: made[3]._id }), 'delete');

    const cases = [
      ['', {}],
      ['?limit=2', { limit: 2 }],
      ['?unread=true', { unreadOnly: true }],
      ['?unread=false&limit=3', { unreadOnly: false, limit: 3 }],
      [`?before=${made[4]._id}`, { before: made[4]._id }],
      [`?before=${made[2]._id}&unread=true&limit=1`, { before: made[2]._id, unreadOnly: true, limit: 1 }],
    ];
    for (const who of [[u, n1], [x, nx]]) {
      for (const [query, payload] of cases) {
        if (who[0] === x && payload.before) continue; // not x's notifications: 404 for both
        const viaSocket = assertOk(await emitAck(who[1], 'notification:list', payload), `list ${JSON.stringify(payload)}`);
        const viaRest = assertStatus(await api(bserver, 'GET', `/api/notifications${query}`, { user: who[0] }), 200, `GET ${query}`);
        assert.deepEqual(viaRest, viaSocket, `GET /api/notifications${query}`);
      }
    }
    // Non-trivial: the user's full list has its 4 personal ones and the broadcast, read as u read them.
    const all = assertStatus(await api(bserver, 'GET', '/api/notifications', { user: u }), 200, 'GET');
    assert.deepEqual(all.map((n) => [n.title, n.is_read]), [['maintenance', true], ['n4', false], ['n2', false], ['n1', true], ['n0', false]]);
    const others = assertStatus(await api(bserver, 'GET', '/api/notifications', { user: x }), 200, 'GET x');
    assert.deepEqual(others.map((n) => [n.title, n.is_read]), [['maintenance', false]]);
    // A `before` the user cannot see: 404 both ways.
    assertStatus(await api(bserver, 'GET', `/api/notifications?before=${made[0]._id}`, { user: x }), 404, 'GET before foreign');
    assert.equal((await emitAck(nx, 'notification:list', { before: made[0]._id })).error?.code, 'NOT_FOUND');
    assertStatus(await api(bserver, 'GET', '/api/notifications?limit=0', { user: u }), 400, 'limit 0');

    for (const n of [made[0], made[1], cast]) {
      const viaSocket = assertOk(await emitAck(n1, 'notification:get', { notificationId: n._id }), 'get');
      assert.deepEqual(assertStatus(await api(bserver, 'GET', `/api/notifications/${n._id}`, { user: u }), 200, 'GET :id'), viaSocket);
    }
    assertStatus(await api(bserver, 'GET', `/api/notifications/${made[3]._id}`, { user: u }), 404, 'GET deleted');
    assertStatus(await api(bserver, 'GET', `/api/notifications/${made[0]._id}`, { user: x }), 404, 'GET another\'s');

    // The count: what a socket connecting now is told, for each user.
    for (const who of [u, x]) {
      const fresh = await notifSocket(bserver, who);
      const rest = assertStatus(await api(bserver, 'GET', '/api/notifications/unread/count', { user: who }), 200, 'GET count');
      assert.deepEqual(rest, { count: fresh.connectCount });
    }
    assert.deepEqual(assertStatus(await api(bserver, 'GET', '/api/notifications/unread/count', { user: u }), 200, 'count u'), { count: 3 });
    assert.deepEqual(assertStatus(await api(bserver, 'GET', '/api/notifications/unread/count', { user: x }), 200, 'count x'), { count: 1 });
  });

  test('the same write over the socket and over REST: is_read, counts and visibility agree', async () => {
    const { u, n1, n2, made: [a, b, c2, d] } = await inbox(4);
    assertOk(await emitAck(n1, 'notification:read', { notificationId: a._id }), 'read');
    const afterSocket = [await next(n2, 'notification:read'), await next(n2, 'notification:count')];
    assertStatus(await api(server, 'POST', `/api/notifications/${b._id}/read`, { user: u }), 200, 'read');
    const afterRest = [await next(n2, 'notification:read'), await next(n2, 'notification:count')];
    assert.deepEqual(afterSocket[0], { notificationId: a._id, is_read: true });
    assert.deepEqual(afterRest[0], { notificationId: b._id, is_read: true });
    assert.deepEqual([afterSocket[1].count, afterRest[1].count], [3, 2]);
    const getA = assertOk(await emitAck(n1, 'notification:get', { notificationId: a._id }), 'get');
    const getB = assertStatus(await api(server, 'GET', `/api/notifications/${b._id}`, { user: u }), 200, 'GET');
    assert.deepEqual([getA.is_read, getB.is_read], [true, true]);

    assertOk(await emitAck(n1, 'notification:delete', { notificationId: c2._id }), 'delete');
    assert.deepEqual(await next(n2, 'notification:deleted'), { notificationId: c2._id });
    assert.deepEqual(await next(n2, 'notification:count'), { count: 1 });
    assertStatus(await api(server, 'DELETE', `/api/notifications/${d._id}`, { user: u }), 204, 'DELETE');
    assert.deepEqual(await next(n2, 'notification:deleted'), { notificationId: d._id });
    assert.deepEqual(await next(n2, 'notification:count'), { count: 0 });
    for (const n of [c2, d]) {
      assert.equal((await emitAck(n1, 'notification:get', { notificationId: n._id })).error?.code, 'NOT_FOUND');
      assertStatus(await api(server, 'GET', `/api/notifications/${n._id}`, { user: u }), 404, 'GET deleted');
    }
    const list = assertStatus(await api(server, 'GET', '/api/notifications', { user: u }), 200, 'GET list');
    assert.deepEqual(list.map((n) => [n._id, n.is_read]), [[b._id, true], [a._id, true]]);
  });
});

// ---------------------------------------------------------------------------------
// Restaurant

describe('REST twin of orders:sync', () => {
  test('GET /api/restaurants/:id/orders?status=&station= equals the orders:sync ack for the same restaurant', async () => {
    const create = async (body) =>
      assertStatus(await api(server, 'POST', '/api/restaurants', { ...service, body }), 201, 'POST restaurant').id;
    const [r, other] = [await create({ name: 'Twins' }), await create({ name: 'Elsewhere' })];
    let n = 1;
    const order = async (restaurantId, stations, status) => {
      const o = assertStatus(await api(server, 'POST', `/api/restaurants/${restaurantId}/orders`, {
        ...service,
        body: { order_number: n++, type: 'dine_in', table_number: 4, total: 10, items: stations.map((station) => ({ name: 'dish', quantity: 1, station })) },
      }), 201, 'POST order');
      if (status) assertStatus(await api(server, 'PATCH', `/api/orders/${o.id}`, { ...service, body: { status } }), 200, 'PATCH');
      return o.id;
    };
    const ids = {
      kNew: await order(r, ['kitchen']),
      bReady: await order(r, ['bar'], 'ready'),
      kbPrep: await order(r, ['kitchen', 'bar'], 'preparing'),
      kDone: await order(r, ['kitchen'], 'completed'),
      bCancel: await order(r, ['bar'], 'cancelled'),
      eDeleted: await order(r, ['expo']),
    };
    assertStatus(await api(server, 'DELETE', `/api/orders/${ids.eDeleted}`, { ...service }), 204, 'DELETE order');
    await order(other, ['kitchen']);

    const staff = { user: users(1)[0], roles: ['user'] }; // a customer display may sync too
    const tok = token(staff.user, staff.roles, { restaurants: [r] });
    const kds = await connect(server.url, `/restaurants/${r}`, { ...mode.opts, token: tok });
    const sync = async (statuses) => {
      const ack = await emitAck(kds, 'orders:sync', statuses ? { restaurantId: r, statuses } : { restaurantId: r });
      assert.equal(ack?.success, true, JSON.stringify(ack));
      return ack.data;
    };
    const get = async (query) => {
      const res = await api(server, 'GET', `/api/restaurants/${r}/orders${query}`, { auth: `Bearer ${tok}` });
      assertStatus(res, 200, `GET orders${query}`);
      assert.notEqual(res.headers.get('x-truncated'), 'true');
      return res.body;
    };
    const at = (station) => (o) => o.items.some((i) => i.station === station);
    const idsOf = (orders) => orders.map((o) => o.id);

    const cases = [
      ['', undefined, null, [ids.kNew, ids.bReady, ids.kbPrep]],
      ['?status=new,completed', ['new', 'completed'], null, [ids.kNew, ids.kDone]],
      ['?status=ready&status=cancelled', ['ready', 'cancelled'], null, [ids.bReady, ids.bCancel]],
      ['?station=bar', undefined, 'bar', [ids.bReady, ids.kbPrep]],
      ['?station=kitchen', undefined, 'kitchen', [ids.kNew, ids.kbPrep]],
      ['?station=expo', undefined, 'expo', []],
      ['?status=completed,cancelled,preparing&station=kitchen', ['completed', 'cancelled', 'preparing'], 'kitchen', [ids.kbPrep, ids.kDone]],
    ];
    for (const [query, statuses, station, expected] of cases) {
      const data = await sync(statuses);
      const wanted = station ? data.orders.filter(at(station)) : data.orders;
      const rest = await get(query);
      assert.deepEqual(rest, wanted, `GET orders${query} vs orders:sync ${JSON.stringify(statuses)} at ${station}`);
      assert.deepEqual(idsOf(rest), expected, `GET orders${query}`);
    }
    // Errors: an unknown status or station, another restaurant, an unknown one.
    const bad = await api(server, 'GET', `/api/restaurants/${r}/orders?status=eaten`, { auth: `Bearer ${tok}` });
    assertStatus(bad, 400, 'unknown status');
    assert.match(JSON.stringify(bad.body), /statuses/);
    assertStatus(await api(server, 'GET', `/api/restaurants/${r}/orders?station=grill`, { auth: `Bearer ${tok}` }), 400, 'unknown station');
    assertStatus(await api(server, 'GET', `/api/restaurants/${other}/orders`, { auth: `Bearer ${tok}` }), 403, 'another restaurant');
    assertStatus(await api(server, 'GET', `/api/restaurants/${randomUUID()}/orders`, { ...service }), 404, 'unknown restaurant');
  });
});
