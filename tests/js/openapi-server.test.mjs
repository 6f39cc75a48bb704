// A real server answers every operation of docs/openapi.yaml (issue #15) with a
// documented status, content type, headers and body shape: the probes of each
// operationId, 401 without a token, 429 with Retry-After.
//
// Past 400 lines: PROBES holds the requests of every documented operation (the test
// fails unless it covers exactly the operationIds); one table, each entry reads alone.
//
// OPENAPI_DOC=<file> checks another document (to see this test fail on a broken one).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';

import { api, assertStops, startServer, test, token, users } from './harness.mjs';
import { deref, operations, validate } from './openapi.mjs';

const MAX_PAYLOAD = 4096;
const tooLarge = () => ({ pad: 'x'.repeat(MAX_PAYLOAD + 1) });
const bearer = (tok) => 'Bearer ' + tok;

function fill(p, params = {}) {
  return p.replace(/\{([^}]+)\}/g, (_, name) => {
    assert.ok(name in params, `no value for {${name}}`);
    return encodeURIComponent(String(params[name]));
  });
}

/** `text/plain; version=0.0.4` → `{ base, params }`. */
function mediaType(s) {
  const [base, ...rest] = s.split(';').map((x) => x.trim().toLowerCase());
  return { base, params: rest.filter(Boolean).map((x) => x.replace(/\s*=\s*/, '=')) };
}

/**
 * Sends `req` for `o` and checks the answer against the document: a documented status,
 * not the router's own miss, the documented content type, body schema and headers.
 */
async function call(server, o, req) {
  const url = fill(o.path, req.params) + (req.query ?? '');
  const what = `${o.method} ${url} (${req.why})`;
  const res = await api(server, o.method, url, { auth: req.auth, body: req.body });
  const shown = `${what}: ${res.status} ${typeof res.body === 'string' ? JSON.stringify(res.body.slice(0, 300)) : JSON.stringify(res.body)}`;
  const documented = Object.keys(o.op.responses);
  assert.ok(documented.includes(String(res.status)), `undocumented status ${res.status} (documented: ${documented.join(', ')}) for ${shown}`);
  assert.ok(!((res.status === 404 || res.status === 405) && res.body === ''), `the router's own miss (empty ${res.status}): ${shown}`);
  const response = deref(o.op.responses[String(res.status)]);
  const content = response.content ?? {};
  if (Object.keys(content).length === 0) {
    assert.equal(res.body, '', `documented without a body: ${shown}`);
  } else {
    const got = mediaType(res.headers.get('content-type') ?? '');
    const match = Object.keys(content).find((t) => {
      const want = mediaType(t);
      return want.base === got.base && want.params.every((p) => got.params.includes(p));
    });
    assert.ok(match, `content-type ${res.headers.get('content-type')} is not one of ${Object.keys(content).join(', ')}: ${shown}`);
    const errs = validate(content[match].schema ?? {}, res.body);
    assert.deepEqual(errs, [], `body does not match the documented schema: ${shown}`);
  }
  for (const [name, h] of Object.entries(response.headers ?? {})) {
    const header = deref(h);
    const value = res.headers.get(name);
    if (header.required) assert.ok(value !== null, `header ${name} missing: ${shown}`);
    if (value !== null && header.schema) {
      const v = deref(header.schema).type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
      assert.deepEqual(validate(header.schema, v), [], `header ${name}: ${value}: ${shown}`);
    }
  }
  if (req.expect !== undefined) assert.equal(res.status, req.expect, `expected ${req.expect}: ${shown}`);
  return res;
}

/** The request example of `o`, or nothing. */
const exampleBody = (o) => deref(o.op.requestBody)?.content?.['application/json']?.example;

/** Values for `o`'s path parameters that look right (an unknown id). */
function plausibleParams(o) {
  return Object.fromEntries(
    o.params
      .filter((x) => x.in === 'path')
      .map((x) => [x.name, deref(x.schema)?.type === 'integer' ? users(1)[0] : randomUUID()]),
  );
}

/**
 * Requests per operationId, given the context `c` (a restaurant, tokens, helpers). Each
 * names the status it must get; `call` checks that this status is documented too.
 */
const PROBES = {
  async createConversation(c) {
    const [me, other] = users(2);
    return [
      { why: 'a group', expect: 201, auth: bearer(token(me)), body: { type: 'group', name: ' Pass ', participants: [other, me] } },
      { why: 'a private one without a name', expect: 201, auth: bearer(token(me)), body: { type: 'private', participants: [other] } },
      { why: 'a private one with two others', expect: 400, auth: bearer(token(me)), body: { type: 'private', participants: [other, other + 1] } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: bearer(token(me)), body: tooLarge() },
    ];
  },
  async deleteConversation(c) {
    const [owner, member] = users(2);
    const conv = await c.ok('POST', '/api/conversations', token(owner), { type: 'group', name: 'x', participants: [member] });
    return [
      { why: 'a member who is not the owner', expect: 403, auth: bearer(token(member)), params: { id: conv._id } },
      { why: 'the owner', expect: 204, auth: bearer(token(owner)), params: { id: conv._id } },
      { why: 'gone', expect: 404, auth: bearer(token(owner)), params: { id: conv._id } },
      { why: 'not a UUID', expect: 400, auth: bearer(token(owner)), params: { id: 'nope' } },
    ];
  },
  async createNotification(c) {
    const [u] = users(1);
    const body = { user_id: String(u), type: 'group_invite', title: 'Hi', content: 'Join us' };
    return [
      { why: 'service, user_id as a string', expect: 201, auth: c.service, body },
      { why: 'admin, with related_id', expect: 201, auth: c.admin, body: { ...body, user_id: u, related_id: 'conv-1' } },
      { why: 'a user token', expect: 403, auth: bearer(token(u)), body },
      { why: 'an empty title', expect: 400, auth: c.service, body: { ...body, title: '  ' } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, body: tooLarge() },
    ];
  },
  async createBroadcast(c) {
    const body = { type: 'system', title: 'Maintenance', content: 'Tonight' };
    return [
      { why: 'service', expect: 201, auth: c.service, body },
      { why: 'a staff token', expect: 403, auth: c.staff, body },
      { why: 'an unknown type', expect: 400, auth: c.service, body: { ...body, type: 'spam' } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, body: tooLarge() },
    ];
  },
  async createRestaurant(c) {
    return [
      { why: 'service, the server picks the id', expect: 201, auth: c.service, body: { name: 'Uptown' } },
      { why: 'admin, a taken id', expect: 400, auth: c.admin, body: { id: c.restaurant, name: 'Again' } },
      { why: 'a manager token', expect: 403, auth: c.manager, body: { name: 'Mine' } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, body: tooLarge() },
    ];
  },
  async createOrder(c) {
    const body = {
      order_number: 7, type: 'takeout', total: 12.5,
      items: [{ name: 'Soup', quantity: 2, station: 'kitchen', notes: 'hot' }, { name: 'Tea', quantity: 1, station: 'bar' }],
    };
    return [
      { why: 'staff of the restaurant, with a table', expect: 201, auth: c.staff, params: { id: c.restaurant }, body: { ...body, type: 'dine_in', table_number: 5 } },
      { why: 'service, no table', expect: 201, auth: c.service, params: { id: c.restaurant }, body },
      { why: 'a user of the restaurant', expect: 403, auth: c.user, params: { id: c.restaurant }, body },
      { why: 'an unknown restaurant', expect: 404, auth: c.service, params: { id: randomUUID() }, body },
      { why: 'no items', expect: 400, auth: c.staff, params: { id: c.restaurant }, body: { ...body, items: [] } },
      { why: 'not a UUID', expect: 400, auth: c.service, params: { id: 'r1' }, body },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.staff, params: { id: c.restaurant }, body: tooLarge() },
    ];
  },
  async createAlert(c) {
    const body = { type: 'urgent', message: ' Table 5 waiting ', severity: 5 };
    return [
      { why: 'staff, with table and order', expect: 201, auth: c.staff, params: { id: c.restaurant }, body: { ...body, tableNumber: 5, orderId: randomUUID() } },
      { why: 'service, bare', expect: 201, auth: c.service, params: { id: c.restaurant }, body },
      { why: 'staff of another restaurant', expect: 403, auth: c.staffElsewhere, params: { id: c.restaurant }, body },
      { why: 'an unknown restaurant', expect: 404, auth: c.admin, params: { id: randomUUID() }, body },
      { why: 'severity 6', expect: 400, auth: c.staff, params: { id: c.restaurant }, body: { ...body, severity: 6 } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.staff, params: { id: c.restaurant }, body: tooLarge() },
    ];
  },
  async patchOrder(c) {
    const id = await c.order();
    return [
      { why: 'staff moves it forward', expect: 200, auth: c.staff, params: { id }, body: { status: 'preparing', table_number: 'T9' } },
      { why: 'nothing to change', expect: 200, auth: c.staff, params: { id }, body: {} },
      { why: 'new items, table cleared', expect: 200, auth: c.service, params: { id }, body: { items: [{ name: 'Pie', quantity: 1, station: 'expo' }], table_number: null } },
      { why: 'a backward move', expect: 409, auth: c.staff, params: { id }, body: { status: 'new' } },
      { why: 'a user of the restaurant', expect: 403, auth: c.user, params: { id }, body: { status: 'ready' } },
      { why: 'staff of another restaurant', expect: 404, auth: c.staffElsewhere, params: { id }, body: { status: 'ready' } },
      { why: 'an unknown status', expect: 400, auth: c.staff, params: { id }, body: { status: 'eaten' } },
      { why: 'not a UUID', expect: 400, auth: c.staff, params: { id: '12' }, body: {} },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.staff, params: { id }, body: tooLarge() },
    ];
  },
  async deleteOrder(c) {
    const [a, b] = [await c.order(), await c.order()];
    return [
      { why: 'staff may not delete', expect: 403, auth: c.staff, params: { id: a } },
      { why: 'a manager, with a reason', expect: 204, auth: c.manager, params: { id: a }, body: { reason: 'customer left' } },
      { why: 'service, no body', expect: 204, auth: c.service, params: { id: b } },
      { why: 'already deleted', expect: 404, auth: c.service, params: { id: a } },
      { why: 'a reason too long', expect: 400, auth: c.service, params: { id: await c.order() }, body: { reason: 'r'.repeat(501) } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.manager, params: { id: await c.order() }, body: tooLarge() },
    ];
  },
  async disconnectUser(c) {
    const [u] = users(1);
    return [
      { why: 'service, a user with no socket', expect: 200, auth: c.service, params: { userId: u } },
      { why: 'a manager token', expect: 403, auth: c.manager, params: { userId: u } },
      { why: 'not a user id (over 128 characters)', expect: 400, auth: c.admin, params: { userId: 'b'.repeat(129) } },
    ];
  },
  async listConversations(c) {
    const [me, other] = users(2);
    await c.ok('POST', '/api/conversations', token(me), { type: 'group', name: 'a', participants: [other] });
    await c.ok('POST', '/api/conversations', token(me), { type: 'group', name: 'b', participants: [other] });
    const page = await c.ok('GET', '/api/conversations?limit=1', token(me));
    assert.ok(page.next_cursor, 'two conversations, a page of one: a next cursor');
    return [
      { why: 'first page', expect: 200, auth: bearer(token(me)), query: '?limit=1' },
      { why: 'next page', expect: 200, auth: bearer(token(me)), query: `?limit=1&cursor=${encodeURIComponent(page.next_cursor)}` },
      { why: 'a forged cursor', expect: 400, auth: bearer(token(me)), query: '?cursor=forged' },
    ];
  },
  async getConversation(c) {
    const [me, other, stranger] = users(3);
    const conv = await c.ok('POST', '/api/conversations', token(me), { type: 'private', participants: [other] });
    return [
      { why: 'a member', expect: 200, auth: bearer(token(other)), params: { id: conv._id } },
      { why: 'a stranger', expect: 403, auth: bearer(token(stranger)), params: { id: conv._id } },
      { why: 'unknown', expect: 404, auth: bearer(token(me)), params: { id: randomUUID() } },
      { why: 'not a UUID', expect: 400, auth: bearer(token(me)), params: { id: 'nope' } },
    ];
  },
  async listMessages(c) {
    const [me, other, stranger] = users(3);
    const conv = await c.ok('POST', '/api/conversations', token(me), { type: 'group', participants: [other] });
    const sent = await c.ok('POST', `/api/conversations/${conv._id}/messages`, token(me), { content: 'hi' });
    return [
      { why: 'a member', expect: 200, auth: bearer(token(other)), params: { id: conv._id } },
      { why: 'after one', expect: 200, auth: bearer(token(other)), params: { id: conv._id }, query: `?after=${sent._id}&limit=5` },
      { why: 'a stranger', expect: 403, auth: bearer(token(stranger)), params: { id: conv._id } },
      { why: 'limit 0', expect: 400, auth: bearer(token(me)), params: { id: conv._id }, query: '?limit=0' },
      { why: 'unknown', expect: 404, auth: bearer(token(me)), params: { id: randomUUID() } },
    ];
  },
  async sendMessage(c) {
    const [me, other, stranger] = users(3);
    const conv = await c.ok('POST', '/api/conversations', token(me), { type: 'group', participants: [other] });
    const body = { content: 'Table 4 is ready', clientId: 'k-1', attachments: ['https://x.test/a.png'] };
    return [
      { why: 'a member', expect: 201, auth: bearer(token(me)), params: { id: conv._id }, body },
      { why: 'the same clientId', expect: 201, auth: bearer(token(me)), params: { id: conv._id }, body },
      { why: 'a stranger', expect: 403, auth: bearer(token(stranger)), params: { id: conv._id }, body },
      { why: 'empty content', expect: 400, auth: bearer(token(me)), params: { id: conv._id }, body: { content: ' ' } },
      { why: 'unknown', expect: 404, auth: bearer(token(me)), params: { id: randomUUID() }, body },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: bearer(token(me)), params: { id: conv._id }, body: tooLarge() },
    ];
  },
  async addMember(c) {
    const [me, other, third] = users(3);
    const conv = await c.ok('POST', '/api/conversations', token(me), { type: 'group', participants: [other] });
    const priv = await c.ok('POST', '/api/conversations', token(me), { type: 'private', participants: [other] });
    return [
      { why: 'the owner adds', expect: 201, auth: bearer(token(me)), params: { id: conv._id }, body: { userId: third } },
      { why: 'already in', expect: 200, auth: bearer(token(me)), params: { id: conv._id }, body: { userId: third } },
      { why: 'not the owner', expect: 403, auth: bearer(token(other)), params: { id: conv._id }, body: { userId: third + 1 } },
      { why: 'a private one', expect: 400, auth: bearer(token(me)), params: { id: priv._id }, body: { userId: third } },
      { why: 'unknown', expect: 404, auth: bearer(token(me)), params: { id: randomUUID() }, body: { userId: third } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: bearer(token(me)), params: { id: conv._id }, body: tooLarge() },
    ];
  },
  async removeMember(c) {
    const [me, other, third] = users(3);
    const conv = await c.ok('POST', '/api/conversations', token(me), { type: 'group', participants: [other, third] });
    return [
      { why: 'not the owner', expect: 403, auth: bearer(token(other)), params: { id: conv._id }, query: `?userId=${third}` },
      { why: 'the owner removes', expect: 204, auth: bearer(token(me)), params: { id: conv._id }, query: `?userId=${third}` },
      { why: 'not a member', expect: 404, auth: bearer(token(me)), params: { id: conv._id }, query: `?userId=${third}` },
      { why: 'no userId', expect: 400, auth: bearer(token(me)), params: { id: conv._id } },
    ];
  },
  async editMessage(c) {
    const [me, other] = users(2);
    const conv = await c.ok('POST', '/api/conversations', token(me), { type: 'group', participants: [other] });
    const sent = await c.ok('POST', `/api/conversations/${conv._id}/messages`, token(me), { content: 'v1' });
    return [
      { why: 'the sender', expect: 200, auth: bearer(token(me)), params: { id: sent._id }, body: { content: 'v2' } },
      { why: 'someone else', expect: 403, auth: bearer(token(other)), params: { id: sent._id }, body: { content: 'v3' } },
      { why: 'empty', expect: 400, auth: bearer(token(me)), params: { id: sent._id }, body: { content: '' } },
      { why: 'unknown', expect: 404, auth: bearer(token(me)), params: { id: randomUUID() }, body: { content: 'x' } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: bearer(token(me)), params: { id: sent._id }, body: tooLarge() },
    ];
  },
  async deleteMessage(c) {
    const [me, other] = users(2);
    const conv = await c.ok('POST', '/api/conversations', token(me), { type: 'group', participants: [other] });
    const sent = await c.ok('POST', `/api/conversations/${conv._id}/messages`, token(me), { content: 'bye' });
    return [
      { why: 'not the sender or owner', expect: 403, auth: bearer(token(other)), params: { id: sent._id } },
      { why: 'the sender', expect: 204, auth: bearer(token(me)), params: { id: sent._id } },
      { why: 'unknown', expect: 404, auth: bearer(token(me)), params: { id: randomUUID() } },
      { why: 'not a UUID', expect: 400, auth: bearer(token(me)), params: { id: 'nope' } },
    ];
  },
  async readMessage(c) {
    const [me, other, stranger] = users(3);
    const conv = await c.ok('POST', '/api/conversations', token(me), { type: 'group', participants: [other] });
    const sent = await c.ok('POST', `/api/conversations/${conv._id}/messages`, token(me), { content: 'read me' });
    return [
      { why: 'a member', expect: 200, auth: bearer(token(other)), params: { id: sent._id } },
      { why: 'a stranger', expect: 403, auth: bearer(token(stranger)), params: { id: sent._id } },
      { why: 'unknown', expect: 404, auth: bearer(token(me)), params: { id: randomUUID() } },
    ];
  },
  async listNotifications(c) {
    const [u] = users(1);
    const n = await c.ok('POST', '/api/notifications', c.serviceToken, { user_id: u, type: 'system', title: 'A', content: 'a' });
    return [
      { why: 'my page', expect: 200, auth: bearer(token(u)) },
      { why: 'unread, limit 1', expect: 200, auth: bearer(token(u)), query: '?unread=true&limit=1' },
      { why: 'before one I have', expect: 200, auth: bearer(token(u)), query: `?before=${n._id}` },
      { why: 'limit 0', expect: 400, auth: bearer(token(u)), query: '?limit=0' },
      { why: 'before an unknown id', expect: 404, auth: bearer(token(u)), query: `?before=${randomUUID()}` },
    ];
  },
  async getNotification(c) {
    const [u, other] = users(2);
    const n = await c.ok('POST', '/api/notifications', c.serviceToken, { user_id: u, type: 'system', title: 'G', content: 'g' });
    return [
      { why: 'mine', expect: 200, auth: bearer(token(u)), params: { id: n._id } },
      { why: 'someone else\'s', expect: 404, auth: bearer(token(other)), params: { id: n._id } },
      { why: 'not a UUID', expect: 400, auth: bearer(token(u)), params: { id: 'nope' } },
    ];
  },
  async readNotification(c) {
    const [u, other] = users(2);
    const n = await c.ok('POST', '/api/notifications', c.serviceToken, { user_id: u, type: 'system', title: 'R', content: 'r' });
    return [
      { why: 'someone else\'s', expect: 404, auth: bearer(token(other)), params: { id: n._id } },
      { why: 'mine', expect: 200, auth: bearer(token(u)), params: { id: n._id } },
      { why: 'mine again', expect: 200, auth: bearer(token(u)), params: { id: n._id } },
      { why: 'not a UUID', expect: 400, auth: bearer(token(u)), params: { id: 'nope' } },
    ];
  },
  async deleteNotification(c) {
    const [u, other] = users(2);
    const n = await c.ok('POST', '/api/notifications', c.serviceToken, { user_id: u, type: 'system', title: 'D', content: 'd' });
    return [
      { why: 'someone else\'s', expect: 404, auth: bearer(token(other)), params: { id: n._id } },
      { why: 'mine', expect: 204, auth: bearer(token(u)), params: { id: n._id } },
      { why: 'gone', expect: 404, auth: bearer(token(u)), params: { id: n._id } },
      { why: 'not a UUID', expect: 400, auth: bearer(token(u)), params: { id: 'nope' } },
    ];
  },
  async readAllNotifications(c) {
    const [u] = users(1);
    await c.ok('POST', '/api/notifications', c.serviceToken, { user_id: u, type: 'system', title: 'X', content: 'x' });
    return [
      { why: 'one unread', expect: 200, auth: bearer(token(u)) },
      { why: 'none left', expect: 200, auth: bearer(token(u)) },
    ];
  },
  async unreadNotificationCount() {
    const [u] = users(1);
    return [{ why: 'mine', expect: 200, auth: bearer(token(u)) }];
  },
  async listOrders(c) {
    await c.order();
    return [
      { why: 'staff of the restaurant', expect: 200, auth: c.staff, params: { id: c.restaurant } },
      { why: 'a user of the restaurant, filtered', expect: 200, auth: c.user, params: { id: c.restaurant }, query: '?status=new,ready&station=kitchen' },
      { why: 'staff of another restaurant', expect: 403, auth: c.staffElsewhere, params: { id: c.restaurant } },
      { why: 'an unknown restaurant', expect: 404, auth: c.service, params: { id: randomUUID() } },
      { why: 'an unknown status', expect: 400, auth: c.staff, params: { id: c.restaurant }, query: '?status=eaten' },
      { why: 'not a UUID', expect: 400, auth: c.service, params: { id: 'r1' } },
    ];
  },
  async publish(c) {
    const body = { channel: 'tenant:42', type: 'inventory_alert', payload: { sku: 'A-1' } };
    return [
      { why: 'service, nobody subscribed', expect: 202, auth: c.service, body },
      { why: 'no payload', expect: 202, auth: c.admin, body: { channel: 'public:news', type: 'hello' } },
      { why: 'a staff token', expect: 403, auth: c.staff, body },
      { why: 'a channel without a kind', expect: 400, auth: c.service, body: { ...body, channel: 'nokind' } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, body: tooLarge() },
    ];
  },
  async grantChannel(c) {
    const [u] = users(1);
    const body = { channel: `tenant:${randomUUID()}`, user_id: u };
    return [
      { why: 'a new grant', expect: 201, auth: c.service, body },
      { why: 'held already', expect: 200, auth: c.service, body },
      { why: 'a public channel', expect: 400, auth: c.service, body: { ...body, channel: 'public:x' } },
      { why: 'a user token', expect: 403, auth: bearer(token(u)), body },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, body: tooLarge() },
    ];
  },
  async revokeChannel(c) {
    const [u] = users(1);
    const body = { channel: `order:${randomUUID()}`, user_id: u };
    await c.ok('POST', '/api/channels/grants', c.serviceToken, body);
    return [
      { why: 'a user token', expect: 403, auth: bearer(token(u)), body },
      { why: 'the grant', expect: 204, auth: c.service, body },
      { why: 'gone', expect: 404, auth: c.service, body },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, body: tooLarge() },
    ];
  },
  async createCheckin(c) {
    const [u] = users(1);
    const session = randomUUID();
    const body = { user_id: u, user_name: ' Ada ', profile_url: 'https://img.example/ada.png', success: true, message: 'Check-in successful' };
    return [
      { why: 'service', expect: 201, auth: c.service, params: { sessionId: session }, body },
      { why: 'admin, user_id as a string, no picture', expect: 201, auth: c.admin, params: { sessionId: session }, body: { user_id: String(u), user_name: 'Bob', success: false, message: 'Not registered' } },
      { why: 'a manager token, before the body', expect: 403, auth: c.manager, params: { sessionId: session }, body: {} },
      { why: 'a message too long', expect: 400, auth: c.service, params: { sessionId: session }, body: { ...body, message: 'm'.repeat(2001) } },
      { why: 'not a UUID', expect: 400, auth: c.service, params: { sessionId: 's1' }, body },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, params: { sessionId: session }, body: tooLarge() },
    ];
  },
  async listCheckins(c) {
    const session = randomUUID();
    const body = { user_id: 1, user_name: 'Ada', success: true, message: 'ok' };
    await c.ok('POST', `/api/sessions/${session}/checkins`, c.serviceToken, body);
    await c.ok('POST', `/api/sessions/${session}/checkins`, c.serviceToken, { ...body, profile_url: 'https://img.example/a.png' });
    return [
      { why: 'staff', expect: 200, auth: c.staff, params: { sessionId: session } },
      { why: 'service, a page of one', expect: 200, auth: c.service, params: { sessionId: session }, query: '?limit=1' },
      { why: 'an unknown session', expect: 200, auth: c.admin, params: { sessionId: randomUUID() } },
      { why: 'a user token', expect: 403, auth: c.user, params: { sessionId: session } },
      { why: 'limit 101', expect: 400, auth: c.staff, params: { sessionId: session }, query: '?limit=101' },
      { why: 'not a UUID', expect: 400, auth: c.staff, params: { sessionId: 's1' } },
    ];
  },
  async patchRestaurant(c) {
    const r = (await c.ok('POST', '/api/restaurants', c.serviceToken, { name: 'Patch me' })).id;
    return [
      { why: 'a manager of it', expect: 200, auth: c.managerOf(r), params: { id: r }, body: { section: 'downtown', address: ' 1 Main St ', cuisine: 'Thai' } },
      { why: 'service clears the address', expect: 200, auth: c.service, params: { id: r }, body: { address: null } },
      { why: 'staff of it', expect: 403, auth: c.staffOf(r), params: { id: r }, body: { name: 'x' } },
      { why: 'an unknown restaurant', expect: 404, auth: c.admin, params: { id: randomUUID() }, body: { name: 'x' } },
      { why: 'section all', expect: 400, auth: c.service, params: { id: r }, body: { section: 'all' } },
      { why: 'not a UUID', expect: 400, auth: c.service, params: { id: 'r1' }, body: {} },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, params: { id: r }, body: tooLarge() },
    ];
  },
  async createTable(c) {
    const id = `t-${randomUUID().slice(0, 8)}`;
    const body = { id, name: 'Window', section: 'main-hall', seats: 4 };
    return [
      { why: 'a manager, chosen id', expect: 201, auth: c.manager, params: { id: c.restaurant }, body },
      { why: 'service, id made by the server', expect: 201, auth: c.service, params: { id: c.restaurant }, body: { name: 'Bar 1', seats: 2, status: 'occupied' } },
      { why: 'the id again', expect: 409, auth: c.admin, params: { id: c.restaurant }, body },
      { why: 'staff', expect: 403, auth: c.staff, params: { id: c.restaurant }, body },
      { why: 'an unknown restaurant', expect: 404, auth: c.service, params: { id: randomUUID() }, body },
      { why: 'seats 0', expect: 400, auth: c.service, params: { id: c.restaurant }, body: { ...body, seats: 0 } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, params: { id: c.restaurant }, body: tooLarge() },
    ];
  },
  async patchTable(c) {
    const tableId = await c.table();
    return [
      { why: 'a manager', expect: 200, auth: c.manager, params: { id: c.restaurant, tableId }, body: { status: 'cleaning', seats: 6 } },
      { why: 'nothing to change', expect: 200, auth: c.service, params: { id: c.restaurant, tableId }, body: {} },
      { why: 'staff', expect: 403, auth: c.staff, params: { id: c.restaurant, tableId }, body: { status: 'available' } },
      { why: 'no such table', expect: 404, auth: c.service, params: { id: c.restaurant, tableId: 'nope' }, body: {} },
      { why: 'a bad status', expect: 400, auth: c.service, params: { id: c.restaurant, tableId }, body: { status: 'broken' } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.service, params: { id: c.restaurant, tableId }, body: tooLarge() },
    ];
  },
  async deleteTable(c) {
    const tableId = await c.table();
    return [
      { why: 'staff', expect: 403, auth: c.staff, params: { id: c.restaurant, tableId } },
      { why: 'a manager', expect: 204, auth: c.manager, params: { id: c.restaurant, tableId } },
      { why: 'gone', expect: 404, auth: c.manager, params: { id: c.restaurant, tableId } },
      { why: 'not a UUID', expect: 400, auth: c.service, params: { id: 'r1', tableId } },
    ];
  },
  async createReservation(c) {
    const tableId = await c.table();
    const body = { guest_name: 'Ada', party_size: 4, starts_at: '2030-05-01T19:00:00+02:00' };
    return [
      { why: 'staff, with a table and notes', expect: 201, auth: c.staff, params: { id: c.restaurant }, body: { ...body, table_id: tableId, notes: 'window' } },
      { why: 'service, bare', expect: 201, auth: c.service, params: { id: c.restaurant }, body },
      { why: 'a user of the restaurant', expect: 403, auth: c.user, params: { id: c.restaurant }, body },
      { why: 'an unknown restaurant', expect: 404, auth: c.service, params: { id: randomUUID() }, body },
      { why: 'a negative party', expect: 400, auth: c.staff, params: { id: c.restaurant }, body: { ...body, party_size: -1 } },
      { why: 'an unknown table', expect: 400, auth: c.staff, params: { id: c.restaurant }, body: { ...body, table_id: 'nope' } },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.staff, params: { id: c.restaurant }, body: tooLarge() },
    ];
  },
  async patchReservation(c) {
    const id = await c.reservation();
    return [
      { why: 'staff seats them', expect: 200, auth: c.staff, params: { id }, body: { status: 'seated', notes: null } },
      { why: 'a user of the restaurant', expect: 403, auth: c.user, params: { id }, body: { status: 'no_show' } },
      { why: 'staff of another restaurant', expect: 404, auth: c.staffElsewhere, params: { id }, body: { status: 'no_show' } },
      { why: 'a bad status', expect: 400, auth: c.staff, params: { id }, body: { status: 'late' } },
      { why: 'not a UUID', expect: 400, auth: c.staff, params: { id: 'nope' }, body: {} },
      { why: 'over MAX_PAYLOAD_BYTES', expect: 413, auth: c.staff, params: { id }, body: tooLarge() },
    ];
  },
  async deleteReservation(c) {
    const id = await c.reservation();
    return [
      { why: 'a user of the restaurant', expect: 403, auth: c.user, params: { id } },
      { why: 'staff', expect: 204, auth: c.staff, params: { id } },
      { why: 'gone', expect: 404, auth: c.staff, params: { id } },
      { why: 'not a UUID', expect: 400, auth: c.staff, params: { id: 'nope' } },
    ];
  },
  healthz: async () => [{ why: 'no token', expect: 200 }],
  readyz: async () => [{ why: 'no token, database up', expect: 200 }],
  metrics: async () => [{ why: 'no token', expect: 200 }],
};

describe('a real server answers every operation with a documented status', () => {
  let server;
  const c = {};
  before(async () => {
    server = await startServer({ MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD) });
    const [svc, adm, staff, manager, user, other] = users(6);
    c.serviceToken = token(svc, ['service']);
    c.service = bearer(c.serviceToken);
    c.admin = bearer(token(adm, ['admin']));
    c.ok = async (method, route, tok, body) => {
      const res = await api(server, method, route, { auth: bearer(tok), body });
      assert.ok(res.status >= 200 && res.status < 300, `setup ${method} ${route}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    c.restaurant = (await c.ok('POST', '/api/restaurants', token(svc, ['service']), { name: 'OpenAPI diner' })).id;
    const of = [c.restaurant];
    c.staff = bearer(token(staff, ['staff'], { restaurants: of }));
    c.manager = bearer(token(manager, ['manager'], { restaurants: of }));
    c.user = bearer(token(user, ['user'], { restaurants: of }));
    c.staffElsewhere = bearer(token(other, ['staff'], { restaurants: [randomUUID()] }));
    c.managerOf = (r) => bearer(token(manager, ['manager'], { restaurants: [r] }));
    c.staffOf = (r) => bearer(token(staff, ['staff'], { restaurants: [r] }));
    c.table = async () => (await c.ok('POST', `/api/restaurants/${c.restaurant}/tables`, token(svc, ['service']), {
      name: 'Probe table', seats: 2,
    })).id;
    c.reservation = async () => (await c.ok('POST', `/api/restaurants/${c.restaurant}/reservations`, token(svc, ['service']), {
      guest_name: 'Probe guest', party_size: 2, starts_at: '2030-01-01T12:00:00Z',
    })).id;
    c.order = async () => (await c.ok('POST', `/api/restaurants/${c.restaurant}/orders`, token(svc, ['service']), {
      order_number: 'A1', type: 'dine_in', table_number: 3, total: 9.99,
      items: [{ name: 'Soup', quantity: 1, station: 'kitchen' }],
    })).id;
  });
  after(() => assertStops(server));

  test('every operation has probes here, and every probe an operation', () => {
    const ids = operations.map((o) => o.op.operationId).sort();
    assert.deepEqual(Object.keys(PROBES).sort(), ids, 'PROBES must cover exactly the documented operationIds');
  });

  for (const o of operations) {
    test(`${o.method} ${o.path} (${o.op.operationId})`, async () => {
      const probes = PROBES[o.op.operationId];
      assert.ok(probes, `no probes for ${o.op.operationId}`);
      for (const req of await probes(c)) await call(server, o, req);
    });
  }

  test('without a token every /api operation is 401 AUTH_INVALID, documented', async () => {
    const apiOps = operations.filter((o) => o.path.startsWith('/api/'));
    assert.ok(apiOps.length > 0);
    for (const o of apiOps) {
      for (const auth of [undefined, 'Bearer not-a-jwt']) {
        const res = await call(server, o, { why: auth ? 'a bad token' : 'no token', expect: 401, auth, params: plausibleParams(o), body: exampleBody(o) });
        assert.equal(res.body.error.code, 'AUTH_INVALID');
      }
    }
  });
});

describe('REST_RATE_LIMIT_BURST=1: every /api operation documents its 429 with Retry-After', () => {
  let server;
  before(async () => {
    server = await startServer({ REST_RATE_LIMIT_BURST: '1', REST_RATE_LIMIT_PER_SEC: '0.01' });
  });
  after(async () => {
    await server.stop();
  });

  test('the second request of a token is 429 RATE_LIMITED with Retry-After', async () => {
    for (const o of operations.filter((x) => x.path.startsWith('/api/'))) {
      const auth = bearer(token(users(1)[0], ['service']));
      const req = { auth, params: plausibleParams(o), body: exampleBody(o) };
      await call(server, o, { ...req, why: 'the bucket\'s only request' });
      const res = await call(server, o, { ...req, why: 'the bucket is empty', expect: 429 });
      assert.equal(res.body.error.code, 'RATE_LIMITED');
      assert.ok(deref(o.op.responses['429']).headers?.['Retry-After'], `${o.method} ${o.path}: 429 without Retry-After documented`);
    }
  });
});
