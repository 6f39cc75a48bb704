// The official socket.io-client doing what `sbbench check` does with the generator's
// own client, so the two can be compared (bench/src/check.rs):
//   1. connect to /notifications (websocket transport), note `notification:count`;
//   2. N sequential `notification:ping` with ack, each followed by a `pong`;
//   3. a group conversation of users A and B (REST), both on /chat and joined, M
//      `message:send` from A, `message:created` at B timed from the send.
// Prints one JSON object (the CheckReport of check.rs) on stdout.
//
//   node check-client.mjs --url http://127.0.0.1:42002 --secret S --user-a 1 --user-b 2

import crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import { io } from 'socket.io-client';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    secret: { type: 'string' },
    'user-a': { type: 'string' },
    'user-b': { type: 'string' },
    pings: { type: 'string', default: '200' },
    messages: { type: 'string', default: '50' },
  },
});
const URL = args.url;
const A = Number(args['user-a']);
const B = Number(args['user-b']);
const PINGS = Number(args.pings);
const MESSAGES = Number(args.messages);

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function token(sub) {
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, roles: ['user'], restaurants: [], exp: Math.floor(Date.now() / 1000) + 3600 });
  const sig = crypto.createHmac('sha256', args.secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Keys (sorted) and value types, recursively: the same function as check.rs `shape`. */
function shape(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return 'b';
  if (typeof v === 'number') return 'n';
  if (typeof v === 'string') return 's';
  if (Array.isArray(v)) return `[${v.length ? shape(v[0]) : ''}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${k}:${shape(v[k])}`).join(',')}}`;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const epochUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
function pct(list, q) {
  if (list.length === 0) return 0;
  const s = [...list].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}
const timeout = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref());

function connect(ns, user) {
  const socket = io(URL + ns, { transports: ['websocket'], auth: { token: token(user) }, reconnection: false });
  return socket;
}

const report = {
  client: 'socket.io-client',
  connect_ms: 0,
  count_shape: '',
  ping_ok: 0,
  pongs: 0,
  ping_p50_ms: 0,
  ping_p99_ms: 0,
  ping_ack_shape: '',
  pong_shape: '',
  chat_ok: 0,
  chat_delivered: 0,
  chat_ack_p50_ms: 0,
  delivery_p50_ms: 0,
  message_ack_shape: '',
  created_shape: '',
};

// 1. /notifications
const started = nowUs();
const n = connect('/notifications', A);
const countSeen = new Promise((resolve) => n.once('notification:count', (c) => resolve(c)));
await Promise.race([new Promise((resolve, reject) => {
  n.once('connect', resolve);
  n.once('connect_error', reject);
}), timeout(10_000, 'connect')]);
report.connect_ms = (nowUs() - started) / 1000;
const count = await Promise.race([countSeen, new Promise((r) => setTimeout(() => r(undefined), 2000))]);
if (count !== undefined) report.count_shape = shape(count);

// 2. pings
n.on('pong', (p) => {
  report.pongs += 1;
  report.pong_shape = shape(p);
});
const rtts = [];
for (let i = 0; i < PINGS; i++) {
  const t0 = nowUs();
  const ack = await n.timeout(5000).emitWithAck('notification:ping', { action: 'ping' });
  rtts.push((nowUs() - t0) / 1000);
  if (ack && ack.ok === true) report.ping_ok += 1;
  report.ping_ack_shape = shape(ack);
}
await new Promise((r) => setTimeout(r, 100));
report.ping_p50_ms = pct(rtts, 0.5);
report.ping_p99_ms = pct(rtts, 0.99);
n.close();

// 3. chat
const created = await fetch(`${URL}/api/conversations`, {
  method: 'POST',
  headers: { authorization: `Bearer ${token(A)}`, 'content-type': 'application/json' },
  body: JSON.stringify({ type: 'group', name: 'check', participants: [A, B] }),
}).then((r) => r.json());
const conversationId = created._id;
const sender = connect('/chat', A);
const receiver = connect('/chat', B);
const deliveries = [];
receiver.on('message:created', (m) => {
  const mark = /@T(\d+)/.exec(m.content);
  if (mark) deliveries.push((epochUs() - Number(mark[1])) / 1000);
  report.chat_delivered += 1;
  report.created_shape = shape(m);
});
for (const s of [sender, receiver]) {
  const ack = await s.timeout(5000).emitWithAck('conversation:join', { conversationId });
  if (!ack.ok) throw new Error(`conversation:join refused: ${JSON.stringify(ack)}`);
}
const sends = [];
for (let i = 0; i < MESSAGES; i++) {
  const t0 = nowUs();
  const ack = await sender
    .timeout(5000)
    .emitWithAck('message:send', { conversationId, content: `check ${i} @T${epochUs()}` });
  sends.push((nowUs() - t0) / 1000);
  if (ack && ack.ok === true) report.chat_ok += 1;
  report.message_ack_shape = shape(ack);
  await new Promise((r) => setTimeout(r, 5));
}
const until = Date.now() + 5000;
while (report.chat_delivered < MESSAGES && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
report.chat_ack_p50_ms = pct(sends, 0.5);
report.delivery_p50_ms = pct(deliveries, 0.5);
sender.close();
receiver.close();
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(0);
