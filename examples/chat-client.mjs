// Chat example: creates a group conversation over REST, connects to /chat, joins it,
// sends a message and prints the ack.
//   node chat-client.mjs            (SWITCHBOARD_URL, JWT_SECRET from the environment)
import { io } from 'socket.io-client';
import { sign, url } from './token.mjs';

const token = sign({ sub: 1, roles: ['user'] });

const res = await fetch(`${url}/api/conversations`, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: JSON.stringify({ type: 'group', name: 'Example', participants: [2] }),
});
if (res.status !== 201) throw new Error(`create conversation: ${res.status} ${await res.text()}`);
const conversation = await res.json();
console.log('conversation', conversation._id);

const socket = io(`${url}/chat`, { auth: { token: `Bearer ${token}` }, reconnection: false });
socket.on('connect_error', (err) => { console.error('connect_error:', err.message); process.exit(1); });
socket.on('unread:count', (count) => console.log('unread:count', count));

// Emitting right away is fine: socket.io-client buffers until connected, and the
// server has the handlers in place before it confirms the connection.
const joined = await socket.timeout(5000).emitWithAck('conversation:join', { conversationId: conversation._id });
console.log('join ack', joined);
const sent = await socket.timeout(5000).emitWithAck('message:send', {
  conversationId: conversation._id,
  content: 'Hello from the example',
  clientId: `example-${Date.now()}`,
});
console.log('message:send ack', JSON.stringify(sent, null, 2));
socket.close();
process.exit(sent.ok ? 0 : 1);
