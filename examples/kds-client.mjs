// Kitchen display example: joins a station room of a restaurant and prints every ticket
// it receives. With --demo it first creates a restaurant and, once joined, posts an order
// (using a service token), so it shows output on its own.
//   node kds-client.mjs --demo
//   RESTAURANT_ID=<uuid> STATION=bar node kds-client.mjs
import { io } from 'socket.io-client';
import { sign, url } from './token.mjs';

const demo = process.argv.includes('--demo');
const station = process.env.STATION ?? 'kitchen';
const service = sign({ sub: 9000, roles: ['service'] });
const post = async (path, body) => {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${service}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
};

let restaurantId = process.env.RESTAURANT_ID;
if (!restaurantId) {
  if (!demo) throw new Error('set RESTAURANT_ID or pass --demo');
  restaurantId = (await post('/api/restaurants', { name: 'Demo Bistro' })).id;
}
const token = sign({ sub: 42, roles: ['staff'], restaurants: [restaurantId] });

// The dynamic namespace puts the tablet in the restaurant's room at connect.
const socket = io(`${url}/restaurants/${restaurantId}`, { auth: { token }, transports: ['websocket'] });
socket.on('connect_error', (err) => { console.error('connect_error:', err.message); process.exit(1); });

const ticket = (o) => `#${o.order_number} ${o.table_number ? `table ${o.table_number} ` : ''}[${o.status}] ` +
  o.items.filter((i) => i.station === station).map((i) => `${i.quantity}x ${i.name}${i.notes ? ` (${i.notes})` : ''}`).join(', ');

socket.on('order:created', (o) => console.log('NEW    ', ticket(o)));
socket.on('order:updated', ({ order, changes }) => console.log('UPDATED', ticket(order), changes));
socket.on('order:status_changed', (e) => console.log('STATUS ', e.orderId, e.previousStatus, '->', e.status));
socket.on('order:deleted', (e) => console.log('REMOVED', e.orderId, e.reason ?? ''));
socket.on('table:ready', (e) => console.log('TABLE READY', e.tableNumber, e.orderIds));
socket.on('kitchen:alert', (a) => console.log('ALERT  ', a.severity, a.message));

const joined = await socket.timeout(5000).emitWithAck('join:station', { restaurantId, station });
console.log('joined', joined);
const sync = await socket.timeout(5000).emitWithAck('orders:sync', { restaurantId });
for (const o of sync.data?.orders ?? []) console.log('BOARD  ', ticket(o));

if (demo) {
  await post(`/api/restaurants/${restaurantId}/orders`, {
    order_number: 101, type: 'dine_in', table_number: 4, total: 31.5,
    items: [{ name: 'Risotto', quantity: 2, station, notes: 'no parmesan' }, { name: 'Lemonade', quantity: 2, station: 'bar' }],
  });
  setTimeout(() => { socket.close(); process.exit(0); }, 500);
}
