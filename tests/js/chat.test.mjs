// /chat as the web app uses it (contract §4, §9), over each transport setup.
//
// Past 400 lines: one test per `/chat` contract row (its events, refusals and broadcasts),
// each run over every transport from one body; each test reads alone.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';

import {
  RFC3339_MS, TRANSPORTS, UUID, api, assertErr, assertOk, assertStops, chat, createConversation,
  emitAck, next, none, startServer, test, users,
} from './harness.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => assertStops(server));

const byNumber = (a, b) => a - b;

function assertMessageShape(m) {
  assert.match(m._id, UUID);
  assert.match(m.conversation_id, UUID);
  assert.equal(typeof m.sender_id, 'number');
  assert.equal(typeof m.content, 'string');
  assert.ok(Array.isArray(m.attachments), 'attachments is an array');
  assert.ok(Array.isArray(m.seen_by), 'seen_by is an array');
  assert.match(m.created_at, RFC3339_MS);
  assert.ok(m.updated_at === undefined || m.updated_at === null || RFC3339_MS.test(m.updated_at), m.updated_at);
}

/** `unread:count` for `total` unread messages all in `conv` (zeros may be omitted). */
function assertUnread(count, total, conv) {
  assert.equal(count.total, total, JSON.stringify(count));
  const by = Object.fromEntries(Object.entries(count.byConversation).filter(([, n]) => n !== 0));
  assert.deepEqual(by, total ? { [conv]: total } : {});
}

/**
 * `n` users, each connected once (connect-time unread:count consumed), a group owned by
 * the first with all of them in it, and the sockets in `joined` (default all) in its room.
 */
async function setup(mode, n = 2, { joined } = {}) {
  const ids = users(n);
  const socks = await Promise.all(ids.map((u) => chat(server, u, mode)));
  for (const s of socks) await next(s, 'unread:count');
  const conv = await createConversation(server, ids[0], ids.slice(1));
  for (const s of socks) assert.equal((await next(s, 'conversation:created'))._id, conv._id);
  for (const i of joined ?? ids.map((_, i) => i)) {
    assertOk(await emitAck(socks[i], 'conversation:join', { conversationId: conv._id }), 'join');
  }
  return { ids, socks, conv, id: conv._id };
}

async function send(socket, conversationId, content, extra = {}) {
  const ack = await emitAck(socket, 'message:send', { conversationId, content, ...extra });
  assertOk(ack, 'message:send');
  return ack.data;
}

for (const mode of TRANSPORTS) {
  describe(`/chat over ${mode.name}`, () => {
    test('POST /api/conversations answers 201 and conversation:created reaches each participant', async () => {
      const [owner, member, outsider] = users(3);
      const [so, sm, sx] = await Promise.all([owner, member, outsider].map((u) => chat(server, u, mode)));
      const res = await api(server, 'POST', '/api/conversations', {
        user: owner,
        body: { type: 'group', name: '  Team  ', participants: [member] },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const conv = res.body;
      assert.match(conv._id, UUID);
      assert.equal(conv.type, 'group');
      assert.equal(conv.name, 'Team');
      assert.deepEqual([...conv.participants].sort(byNumber), [owner, member].sort(byNumber));
      assert.match(conv.created_at, RFC3339_MS);
      assert.deepEqual(await next(sm, 'conversation:created'), conv);
      assert.deepEqual(await next(so, 'conversation:created'), conv);
      await none(sx, 'conversation:created');
      await none(sm, 'conversation:created', 0);
    });

    test('message:send acks the Message; message:created reaches the others, not the sender', async () => {
      const { ids: [u1, u2], socks: [s1, s2], id } = await setup(mode);
      // A second device of user 2, not in the conversation room.
      const s2b = await chat(server, u2, mode);
      await next(s2b, 'unread:count');
      // A second tab of the sender, in the room: only the acting socket is skipped.
      const s1b = await chat(server, u1, mode);
      await next(s1b, 'unread:count');
      assertOk(await emitAck(s1b, 'conversation:join', { conversationId: id }));
      const ack = await emitAck(s1, 'message:send', {
        conversationId: id,
        content: '  hello world \n',
        sender_id: 999999,
      });
      assertOk(ack);
      const m = ack.data;
      assertMessageShape(m);
      assert.equal(m.conversation_id, id);
      assert.equal(m.sender_id, u1);
      assert.equal(m.content, 'hello world');
      assert.deepEqual(m.attachments, []);
      assert.deepEqual(m.seen_by, []);
      assert.equal(m.client_id, undefined);
      assert.equal(m.updated_at ?? null, null);
      assert.ok(Math.abs(Date.parse(m.created_at) - Date.now()) < 60_000, m.created_at);

      assert.deepEqual(await next(s2, 'message:created'), m);
      assert.deepEqual(await next(s1b, 'message:created'), m);
      assertUnread(await next(s2, 'unread:count'), 1, id);
      assertUnread(await next(s2b, 'unread:count'), 1, id);
      await none(s1, 'message:created');
      await none(s1, 'unread:count', 0);
      await none(s1b, 'unread:count', 0);
      await none(s2, 'message:created', 0);
      await none(s2b, 'message:created', 0);
    });

    test('message:send with attachments and a clientId is idempotent per sender', async () => {
      const { ids: [u1], socks: [s1, s2], id } = await setup(mode);
      const payload = {
        conversationId: id,
        content: 'photo',
        attachments: ['https://cdn.example/a.png', 'http://cdn.example/b.jpg'],
        clientId: 'client-42',
      };
      const first = await emitAck(s1, 'message:send', payload);
      assertOk(first);
      assert.equal(first.data.client_id, 'client-42');
      assert.equal(first.data.sender_id, u1);
      assert.deepEqual(first.data.attachments, payload.attachments);
      assert.deepEqual(await next(s2, 'message:created'), first.data);
      const again = await emitAck(s1, 'message:send', payload);
      assertOk(again);
      assert.deepEqual(again.data, first.data);
      await none(s2, 'message:created');
      const page = await emitAck(s1, 'message:list', { conversationId: id });
      assertOk(page);
      assert.equal(page.data.length, 1);
    });

    test('content limits count characters after trimming (4000 emoji pass, 4001 fail)', async () => {
      const { socks: [s1], id } = await setup(mode);
      const emoji = '\u{1F600}'.repeat(4000); // 8000 UTF-16 units, 4000 characters
      const ok = await send(s1, id, `  ${emoji}  `);
      assert.equal(ok.content, emoji);
      assertErr(await emitAck(s1, 'message:send', { conversationId: id, content: 'é'.repeat(4001) }), 'BAD_REQUEST', 'content');
    });

    test('message:read reaches the room with readerId; the reader\'s unread:count drops on every device', async () => {
      const { ids: [, u2], socks: [s1, s2], id } = await setup(mode);
      const s2b = await chat(server, u2, mode);
      await next(s2b, 'unread:count');
      const m1 = await send(s1, id, 'one');
      const m2 = await send(s1, id, 'two');
      assertUnread(await next(s2, 'unread:count'), 1, id);
      assertUnread(await next(s2, 'unread:count'), 2, id);
      assertUnread(await next(s2b, 'unread:count'), 1, id);
      assertUnread(await next(s2b, 'unread:count'), 2, id);

      assertOk(await emitAck(s2, 'message:read', { messageId: m2._id }));
      for (const s of [s1, s2]) {
        const r = await next(s, 'message:read');
        assert.deepEqual(Object.keys(r).sort(), ['conversationId', 'messageId', 'readAt', 'readerId']);
        assert.equal(r.messageId, m2._id);
        assert.equal(r.conversationId, id);
        assert.equal(r.readerId, u2);
        assert.match(r.readAt, RFC3339_MS);
      }
      assertUnread(await next(s2, 'unread:count'), 0, id);
      assertUnread(await next(s2b, 'unread:count'), 0, id);
      await none(s1, 'unread:count', 0);

      // Everything up to m2 is read: both messages show user 2 in seen_by.
      const page = await emitAck(s1, 'message:list', { conversationId: id });
      assertOk(page);
      assert.deepEqual(page.data.map((m) => m._id), [m2._id, m1._id]);
      for (const m of page.data) assert.deepEqual(m.seen_by, [u2]);
    });

    test('message:list pages newest first with before, oldest first with after', async () => {
      const { socks: [s1, s2, s3], id, ids: [, , u3] } = await setup(mode, 3, { joined: [0, 1] });
      const m = [];
      for (let i = 1; i <= 5; i++) m.push(await send(s1, id, `m${i}`));
      const ids = (ack) => {
        assertOk(ack, 'message:list');
        for (const x of ack.data) assertMessageShape(x);
        return ack.data.map((x) => x.content);
      };
      assert.deepEqual(ids(await emitAck(s2, 'message:list', { conversationId: id })), ['m5', 'm4', 'm3', 'm2', 'm1']);
      assert.deepEqual(ids(await emitAck(s2, 'message:list', { conversationId: id, limit: 2 })), ['m5', 'm4']);
      assert.deepEqual(
        ids(await emitAck(s2, 'message:list', { conversationId: id, before: m[3]._id, limit: 2 })),
        ['m3', 'm2'],
      );
      assert.deepEqual(ids(await emitAck(s2, 'message:list', { conversationId: id, before: m[1]._id })), ['m1']);
      assert.deepEqual(ids(await emitAck(s2, 'message:list', { conversationId: id, before: m[0]._id })), []);
      assert.deepEqual(ids(await emitAck(s2, 'message:list', { conversationId: id, after: m[1]._id })), ['m3', 'm4', 'm5']);
      assert.deepEqual(ids(await emitAck(s2, 'message:list', { conversationId: id, after: m[1]._id, limit: 1 })), ['m3']);
      assert.deepEqual(ids(await emitAck(s2, 'message:list', { conversationId: id, after: m[4]._id })), []);
      // The full objects are the ones the sender was acked with.
      const full = await emitAck(s2, 'message:list', { conversationId: id, limit: 1 });
      assert.deepEqual({ ...full.data[0], seen_by: [] }, { ...m[4], seen_by: [] });
      assertErr(await emitAck(s2, 'message:list', { conversationId: id, limit: 0 }), 'BAD_REQUEST', 'limit');
      assertErr(await emitAck(s2, 'message:list', { conversationId: id, limit: 101 }), 'BAD_REQUEST', 'limit');
      assertOk(await emitAck(s2, 'message:list', { conversationId: id, limit: 100 }));
      // Membership is checked on every event, room or not: user 3 was removed.
      assertOk(await emitAck(s1, 'members:remove', { conversationId: id, userId: u3 }));
      assertErr(await emitAck(s3, 'message:list', { conversationId: id }), 'FORBIDDEN');
      assertErr(await emitAck(s3, 'message:list', { conversationId: randomUUID() }), 'NOT_FOUND');
    });

    test('message:edit: only the sender edits; message:updated reaches the whole room', async () => {
      const { socks: [s1, s2], id } = await setup(mode);
      const m = await send(s1, id, 'draft');
      await next(s2, 'message:created');
      assertErr(await emitAck(s2, 'message:edit', { messageId: m._id, content: 'hijacked' }), 'FORBIDDEN');
      await none(s1, 'message:updated');
      await none(s2, 'message:updated', 0);
      const ack = await emitAck(s1, 'message:edit', { messageId: m._id, content: '  final  ' });
      assertOk(ack);
      assertMessageShape(ack.data);
      assert.equal(ack.data._id, m._id);
      assert.equal(ack.data.content, 'final');
      assert.equal(ack.data.created_at, m.created_at);
      assert.match(ack.data.updated_at, RFC3339_MS);
      assert.deepEqual(await next(s1, 'message:updated'), ack.data);
      assert.deepEqual(await next(s2, 'message:updated'), ack.data);
      assertErr(await emitAck(s1, 'message:edit', { messageId: randomUUID(), content: 'x' }), 'NOT_FOUND');
    });

    test('message:delete: a member cannot delete another\'s message; the sender can', async () => {
      const { socks: [s1, s2], id } = await setup(mode);
      const m = await send(s2, id, 'oops');
      const mine = await send(s1, id, 'owner message');
      assertErr(await emitAck(s2, 'message:delete', { messageId: mine._id }), 'FORBIDDEN');
      assertOk(await emitAck(s2, 'message:delete', { messageId: m._id }));
      for (const s of [s1, s2]) {
        assert.deepEqual(await next(s, 'message:deleted'), { messageId: m._id, conversationId: id });
      }
      // The conversation's owner may delete anyone's message.
      const theirs = await send(s2, id, 'moderate me');
      assertOk(await emitAck(s1, 'message:delete', { messageId: theirs._id }));
      for (const s of [s1, s2]) {
        assert.deepEqual(await next(s, 'message:deleted'), { messageId: theirs._id, conversationId: id });
      }
      await none(s1, 'message:deleted', 100);
      await none(s2, 'message:deleted', 0);
    });

    test('typing reaches only the other members', async () => {
      const { ids: [u1], socks: [s1, s2, s3], id } = await setup(mode, 3, { joined: [0, 1] });
      const s1b = await chat(server, u1, mode); // another tab of the typist, in the room
      assertOk(await emitAck(s1b, 'conversation:join', { conversationId: id }));
      assertOk(await emitAck(s1, 'typing', { conversationId: id, isTyping: true }));
      assert.deepEqual(await next(s2, 'typing'), { conversationId: id, userId: u1, isTyping: true });
      assert.deepEqual(await next(s1b, 'typing'), { conversationId: id, userId: u1, isTyping: true });
      assertOk(await emitAck(s1, 'typing', { conversationId: id, isTyping: false }));
      assert.deepEqual(await next(s2, 'typing'), { conversationId: id, userId: u1, isTyping: false });
      await none(s1, 'typing');
      await none(s3, 'typing', 0); // a member not in the room
      const [outsider] = users(1);
      const so = await chat(server, outsider, mode);
      assertErr(await emitAck(so, 'typing', { conversationId: id, isTyping: true }), 'FORBIDDEN');
      await none(s2, 'typing', 200);
    });

    test('members:add by the owner reaches the new member\'s socket; others get FORBIDDEN', async () => {
      const { socks: [s1, s2], id } = await setup(mode);
      const [u3] = users(1);
      const s3 = await chat(server, u3, mode);
      await next(s3, 'unread:count');
      // History from before the add is not unread for the new member.
      await send(s1, id, 'before you came');
      await send(s1, id, 'also before');
      assertErr(await emitAck(s2, 'members:add', { conversationId: id, userId: u3 }), 'FORBIDDEN');
      assertErr(await emitAck(s3, 'conversation:join', { conversationId: id }), 'FORBIDDEN');
      assertOk(await emitAck(s1, 'members:add', { conversationId: id, userId: u3 }));
      const added = { conversationId: id, userId: u3 };
      assert.deepEqual(await next(s3, 'members:added'), added);
      assert.deepEqual(await next(s1, 'members:added'), added);
      assert.deepEqual(await next(s2, 'members:added'), added);
      // Adding an existing member succeeds without a broadcast.
      assertOk(await emitAck(s1, 'members:add', { conversationId: id, userId: u3 }));
      await none(s1, 'members:added');
      await none(s3, 'members:added', 0);
      // The new member joins and hears new messages.
      assertOk(await emitAck(s3, 'conversation:join', { conversationId: id }));
      const m = await send(s1, id, 'welcome');
      assert.deepEqual(await next(s3, 'message:created'), m);
      let count = await next(s3, 'unread:count');
      while (count.total === 0) count = await next(s3, 'unread:count'); // a count pushed on add, if any
      assertUnread(count, 1, id);
      // History is readable by the new member.
      const page = await emitAck(s3, 'message:list', { conversationId: id });
      assertOk(page);
      assert.deepEqual(page.data.map((x) => x.content), ['welcome', 'also before', 'before you came']);
      // Private conversations take no extra members.
      const [p1, p2] = users(2);
      const sp = await chat(server, p1, mode);
      const priv = await createConversation(server, p1, [p2], { type: 'private', name: undefined });
      assert.equal(priv.type, 'private');
      assertErr(await emitAck(sp, 'members:add', { conversationId: priv._id, userId: u3 }), 'BAD_REQUEST');
    });

    test('members:remove: the removed user hears members:removed, then no more messages', async () => {
      const { ids: [, u2, u3], socks: [s1, s2, s3], id } = await setup(mode, 3);
      const s2b = await chat(server, u2, mode); // a device of user 2 outside the room
      await next(s2b, 'unread:count');
      const earlier = await send(s2, id, 'before removal');
      for (const s of [s1, s3]) assert.equal((await next(s, 'message:created'))._id, earlier._id);
      assertErr(await emitAck(s3, 'members:remove', { conversationId: id, userId: u2 }), 'FORBIDDEN');
      assertOk(await emitAck(s1, 'members:remove', { conversationId: id, userId: u2 }));
      const removed = { conversationId: id, userId: u2 };
      assert.deepEqual(await next(s2, 'members:removed'), removed);
      assert.deepEqual(await next(s2b, 'members:removed'), removed);
      assert.deepEqual(await next(s1, 'members:removed'), removed);
      assert.deepEqual(await next(s3, 'members:removed'), removed);
      const m = await send(s1, id, 'after removal');
      assert.deepEqual(await next(s3, 'message:created'), m);
      await none(s2, 'message:created');
      await none(s2, 'members:removed', 0); // exactly once per socket
      await none(s2b, 'members:removed', 0);
      assertErr(await emitAck(s2, 'message:send', { conversationId: id, content: 'still here?' }), 'FORBIDDEN');
      assertErr(await emitAck(s2, 'conversation:join', { conversationId: id }), 'FORBIDDEN');
      // Membership is checked on every event: not even its own message stays editable.
      assertErr(await emitAck(s2, 'message:edit', { messageId: earlier._id, content: 'edit' }), 'FORBIDDEN');
      assertErr(await emitAck(s2, 'message:list', { conversationId: id }), 'FORBIDDEN');
      // A member may remove itself.
      assertOk(await emitAck(s3, 'members:remove', { conversationId: id, userId: u3 }));
      assert.deepEqual(await next(s3, 'members:removed'), { conversationId: id, userId: u3 });
      assert.deepEqual(await next(s1, 'members:removed'), { conversationId: id, userId: u3 });
      assertErr(await emitAck(s1, 'members:remove', { conversationId: id, userId: u3 }), 'NOT_FOUND');
    });

    test('read cursors: sending reads up to one\'s own message, cursors never move back, connect reports the count', async () => {
      const { ids: [u1, u2], socks: [s1, s2], id } = await setup(mode);
      const m1 = await send(s1, id, 'one');
      await send(s1, id, 'two');
      assertUnread(await next(s2, 'unread:count'), 1, id);
      assertUnread(await next(s2, 'unread:count'), 2, id);
      // A new device of user 2 learns the count at connect.
      const s2b = await chat(server, u2, mode);
      assertUnread(await next(s2b, 'unread:count'), 2, id);
      // User 2 answers: its own message moves its cursor past everything before it.
      const reply = await send(s2, id, 'three');
      assertUnread(await next(s1, 'unread:count'), 1, id);
      const s2c = await chat(server, u2, mode);
      assertUnread(await next(s2c, 'unread:count'), 0, id);
      // Reading an older message does not move the cursor back.
      assertOk(await emitAck(s2, 'message:read', { messageId: m1._id }));
      assertUnread(await next(s2, 'unread:count'), 0, id);
      const s2d = await chat(server, u2, mode);
      assertUnread(await next(s2d, 'unread:count'), 0, id);
      // Sending also reads for the sender: user 1 had "three" unread, and its own
      // messages never count for it.
      await send(s1, id, 'four');
      assertUnread(await next(s2, 'unread:count'), 1, id);
      const s1b = await chat(server, u1, mode);
      assertUnread(await next(s1b, 'unread:count'), 0, id);
      assertOk(await emitAck(s1, 'message:read', { messageId: reply._id }));
      assertUnread(await next(s1, 'unread:count'), 0, id);
    });

    test('conversation:leave stops room events; the member can still read history', async () => {
      const { socks: [s1, s2], id } = await setup(mode);
      assertOk(await emitAck(s2, 'conversation:leave', { conversationId: id }));
      const m = await send(s1, id, 'anyone?');
      await none(s2, 'message:created');
      assertUnread(await next(s2, 'unread:count'), 1, id); // still a member: counts reach its user room
      const page = await emitAck(s2, 'message:list', { conversationId: id });
      assertOk(page);
      assert.deepEqual(page.data.map((x) => x._id), [m._id]);
      assertOk(await emitAck(s2, 'conversation:join', { conversationId: id }));
      const m2 = await send(s1, id, 'welcome back');
      assert.deepEqual(await next(s2, 'message:created'), m2);
    });

    test('clientId is per sender: the same key from another user is another message', async () => {
      const { socks: [s1, s2], id } = await setup(mode);
      const a = await send(s1, id, 'from one', { clientId: 'shared-key' });
      const b = await send(s2, id, 'from two', { clientId: 'shared-key' });
      assert.notEqual(a._id, b._id);
      assert.equal(b.content, 'from two');
      assert.deepEqual(await next(s1, 'message:created'), b);
    });

    test('malformed payloads answer BAD_REQUEST naming the field, and nothing is written', async () => {
      const { socks: [s1, s2], id } = await setup(mode);
      const cases = [
        ['message:send', {}, 'conversationId'],
        ['message:send', { conversationId: 'nope', content: 'x' }, 'conversationId'],
        ['message:send', { conversationId: id }, 'content'],
        ['message:send', { conversationId: id, content: '   ' }, 'content'],
        ['message:send', { conversationId: id, content: 42 }, 'content'],
        ['message:send', { conversationId: id, content: 'x'.repeat(4001) }, 'content'],
        ['message:send', { conversationId: id, content: 'x', attachments: Array.from({ length: 11 }, (_, i) => `https://cdn.example/${i}`) }, 'attachments'],
        ['message:send', { conversationId: id, content: 'x', attachments: ['ftp://cdn.example/a'] }, 'attachments'],
        ['message:send', { conversationId: id, content: 'x', attachments: 'https://cdn.example/a' }, 'attachments'],
        ['message:send', 'just a string', undefined],
        ['conversation:join', { conversationId: 12 }, 'conversationId'],
        ['conversation:join', {}, 'conversationId'],
        ['message:edit', { messageId: randomUUID() }, 'content'],
        ['message:read', { messageId: 'x' }, 'messageId'],
        ['message:list', { conversationId: id, limit: 'ten' }, 'limit'],
        ['message:list', { conversationId: id, before: 'yesterday' }, 'before'],
        ['typing', { conversationId: id, isTyping: 'yes' }, 'isTyping'],
        ['members:add', { conversationId: id, userId: '' }, 'userId'],
        ['members:remove', { conversationId: id }, 'userId'],
      ];
      for (const [event, payload, field] of cases) {
        const ack = await emitAck(s1, event, payload);
        assertErr(ack, 'BAD_REQUEST', field);
      }
      const page = await emitAck(s1, 'message:list', { conversationId: id });
      assertOk(page);
      assert.deepEqual(page.data, []);
      await none(s2, 'message:created', 0);
    });

    // serde reads a JSON array positionally into a struct; the server must refuse it.
    test('an array instead of the payload object is BAD_REQUEST and writes nothing', async () => {
      const { socks: [s1, s2], id } = await setup(mode);
      const ack = await emitAck(s1, 'message:send', [id, 'x']);
      assertErr(ack, 'BAD_REQUEST');
      await none(s2, 'message:created');
      const page = await emitAck(s1, 'message:list', { conversationId: id });
      assert.deepEqual(page.data, []);
    });

    test('an unknown event with an ack answers BAD_REQUEST "unknown event"', async () => {
      const [u] = users(1);
      const s = await chat(server, u, mode);
      const ack = await emitAck(s, 'message:sned', { conversationId: randomUUID(), content: 'x' });
      assertErr(ack, 'BAD_REQUEST', 'unknown event');
    });

    test('a failing event without an ack gets an `error` event { code, message }', async () => {
      const { socks: [s1, s2], id } = await setup(mode);
      s1.emit('message:send', { content: 'no conversation' });
      const e1 = await next(s1, 'error');
      assert.deepEqual(Object.keys(e1).sort(), ['code', 'message']);
      assert.equal(e1.code, 'BAD_REQUEST');
      assert.ok(e1.message.includes('conversationId'), e1.message);
      s1.emit('conversation:join', { conversationId: randomUUID() });
      assert.equal((await next(s1, 'error')).code, 'NOT_FOUND');
      s1.emit('no:such:event', {});
      const e3 = await next(s1, 'error');
      assert.equal(e3.code, 'BAD_REQUEST');
      assert.ok(e3.message.includes('unknown event'), e3.message);
      // Successes without an ack are silent, and the effect happens.
      s1.emit('message:send', { conversationId: id, content: 'fire and forget' });
      assert.equal((await next(s2, 'message:created')).content, 'fire and forget');
      await none(s1, 'error');
      await none(s2, 'error', 0);
    });

    test('DELETE /api/conversations/:id by the owner: 204 and conversation:deleted once per socket', async () => {
      const { ids: [u1, u2], socks: [s1, s2, s3], id } = await setup(mode, 3, { joined: [0, 1] });
      const s2b = await chat(server, u2, mode);
      await next(s2b, 'unread:count');
      await send(s1, id, 'soon gone');
      assertUnread(await next(s2b, 'unread:count'), 1, id);
      const forbidden = await api(server, 'DELETE', `/api/conversations/${id}`, { user: u2 });
      assert.equal(forbidden.status, 403);
      assert.equal(forbidden.body.error.code, 'FORBIDDEN');
      await none(s1, 'conversation:deleted', 100);
      const res = await api(server, 'DELETE', `/api/conversations/${id}`, { user: u1 });
      assert.equal(res.status, 204);
      assert.equal(res.body, '');
      for (const s of [s1, s2, s3, s2b]) {
        assert.deepEqual(await next(s, 'conversation:deleted'), { conversationId: id });
      }
      for (const s of [s1, s2, s3, s2b]) await none(s, 'conversation:deleted', s === s1 ? 300 : 0);
      // The deleted conversation's unread messages are gone from the count.
      const s2c = await chat(server, u2, mode);
      assertUnread(await next(s2c, 'unread:count'), 0, id);
      assertErr(await emitAck(s2, 'message:send', { conversationId: id, content: 'gone?' }), 'NOT_FOUND');
      const again = await api(server, 'DELETE', `/api/conversations/${id}`, { user: u1 });
      assert.equal(again.status, 404);
      assert.equal(again.body.error.code, 'NOT_FOUND');
    });
  });
}
