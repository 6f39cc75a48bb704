// Kitchen board: the active orders of one restaurant in a column per station, live.
// Plain socket.io-client 4.x, loaded from the Switchboard server itself
// (`/socket.io/socket.io.js`, served when SOCKETIO_CLIENT_DIR is set).
//
// Settings come from the URL fragment (never sent to any server) or the login form:
//   server=     Switchboard's base URL (default http://localhost:3001)
//   token=      a JWT; `staff`+ to move orders, `user` for a read-only display
//   restaurant= the restaurant's UUID (default: the token's only `restaurants` entry)
//   station=    all (default: the restaurant room) | kitchen | bar | expo | pos
//   transport=  auto (polling, then upgrade) | websocket | polling
//
// The page runs the socket.io.js of the server it is pointed at, so it connects only to
// an http(s) server and should live on an origin of its own (it keeps nothing there).
//
// What it shows off: rooms (`join:restaurant`, or `join:station` for a single-station
// screen, re-joined on every reconnect), acks with timeouts on every call, and the
// server's error codes where the cook sees them.

const STATIONS = ['kitchen', 'bar', 'expo', 'pos'];
const FINAL = new Set(['completed', 'cancelled']);
/** The one forward move each status offers on a card (skipping is allowed server-side). */
const NEXT = {
  new: { status: 'preparing', label: 'Start' },
  pending: { status: 'preparing', label: 'Start' },
  confirmed: { status: 'preparing', label: 'Start' },
  preparing: { status: 'ready', label: 'Ready' },
  ready: { status: 'completed', label: 'Bump' },
};
const ACK_TIMEOUT_MS = 5000;
const LATE_AFTER_MIN = 15;

const $ = (sel) => document.querySelector(sel);

/** Builds an element; strings become text nodes (nothing from the server is parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('data-')) el.setAttribute(k, v);
    else el[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
  return el;
}

/** The token's claims, for display and defaults only: the server is what verifies it. */
function claimsOf(token) {
  try {
    const body = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(body));
  } catch {
    return {};
  }
}

/** An ack's `{ success: false, error }`, or no answer in time. */
class AckError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function readSettings() {
  const params = new URLSearchParams(location.hash.slice(1));
  const settings = Object.fromEntries(params);
  if (settings.token) {
    // Out of the address bar and the history: a screenshot or a shared link keeps no token.
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  }
  return settings;
}

function loadClient(src) {
  if (window.io) return Promise.resolve(window.io);
  return new Promise((resolve, reject) => {
    const script = h('script', { src });
    script.onload = () => (window.io ? resolve(window.io) : reject(new Error(`${src} did not define io`)));
    script.onerror = () => reject(new Error(
      `could not load the socket.io client from ${src}: start the server with ` +
      'SOCKETIO_CLIENT_DIR set',
    ));
    document.head.append(script);
  });
}

// ---------------------------------------------------------------------------------
// The board

class Board {
  constructor({ socket, restaurantId, station }) {
    this.socket = socket;
    this.restaurantId = restaurantId;
    this.station = station; // 'all' or one station
    this.orders = new Map(); // id -> Order (active ones only)
    this.cards = new Map(); // id -> { error, pending, confirmCancel }
    this.root = $('#board');
    this.root.addEventListener('click', (e) => this.onClick(e));
    setInterval(() => this.render(), 30_000); // ages and "late" marks
  }

  /** Emits with an ack; resolves with `data`, rejects with an AckError. */
  async call(event, payload) {
    let reply;
    try {
      reply = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    } catch {
      throw new AckError('TIMEOUT', `no answer within ${ACK_TIMEOUT_MS / 1000} s`);
    }
    if (!reply || reply.success !== true) {
      const err = reply?.error ?? {};
      throw new AckError(err.code ?? 'UNKNOWN', err.message ?? 'the server refused');
    }
    return reply.data;
  }

  /** Rooms are per connection: every (re)connect joins again and re-reads the board. */
  async joinAndSync() {
    const restaurantId = this.restaurantId;
    try {
      const joined = this.station === 'all'
        ? await this.call('join:restaurant', { restaurantId })
        : await this.call('join:station', { restaurantId, station: this.station });
      $('#rooms').textContent = `room ${joined.room}`;
      $('#rooms').dataset.room = joined.room;
      const sync = await this.call('orders:sync', { restaurantId });
      this.orders.clear();
      for (const o of sync.orders) this.orders.set(o.id, o);
      if (sync.truncated) notice('warning', 'More than 500 active orders: showing the oldest 500.');
      this.root.hidden = false;
      this.root.dataset.synced = sync.syncedAt;
      this.render();
    } catch (err) {
      notice('error', `Could not open the board: ${err.code}: ${err.message}`);
    }
  }

  listen() {
    const s = this.socket;
    s.on('order:created', (o) => this.put(o));
    s.on('order:updated', ({ order }) => this.put(order));
    s.on('order:status_changed', (e) => {
      const o = this.orders.get(e.orderId);
      if (!o) {
        // An order this board never saw (e.g. created while it was offline): re-read,
        // once for a burst of such events.
        if (!FINAL.has(e.status) && !this.resyncing) {
          this.resyncing = this.joinAndSync().finally(() => { this.resyncing = null; });
        }
        return;
      }
      this.put({ ...o, status: e.status, updated_at: e.timestamp });
    });
    s.on('order:deleted', (e) => this.drop(e.orderId));
    s.on('table:completed', (e) => e.orderIds.forEach((id) => this.drop(id)));
    s.on('table:ready', (e) => notice('info', `Table ${e.tableNumber} is ready to serve`));
    s.on('kitchen:alert', (a) => notice(a.type === 'info' ? 'info' : 'warning', a.message));
    s.on('error', (e) => notice('error', `${e.code}: ${e.message}`));
  }

  put(order) {
    if (order.restaurant_id !== this.restaurantId) return;
    if (FINAL.has(order.status)) return this.drop(order.id);
    const before = this.orders.get(order.id);
    if (before && before.status !== order.status) this.cards.delete(order.id); // stale error
    this.orders.set(order.id, order);
    this.render();
  }

  drop(id) {
    this.orders.delete(id);
    this.cards.delete(id);
    this.render();
  }

  async move(id, status) {
    const card = this.cards.get(id) ?? {};
    this.cards.set(id, { ...card, pending: true, error: null, confirmCancel: false });
    this.render();
    try {
      const changed = await this.call('order:update_status', {
        orderId: id,
        status,
        restaurantId: this.restaurantId,
      });
      this.cards.delete(id);
      // The ack carries the move; the room's broadcast skips nobody, but apply it now.
      const o = this.orders.get(id);
      if (o) this.put({ ...o, status: changed.status, updated_at: changed.timestamp });
      else this.render();
    } catch (err) {
      this.cards.set(id, { pending: false, error: `${err.code}: ${err.message}` });
      this.render();
    }
  }

  onClick(e) {
    const button = e.target.closest('button[data-action]');
    const card = e.target.closest('[data-order-id]');
    if (!button || !card) return;
    const id = card.dataset.orderId;
    if (button.dataset.action === 'cancel' && !this.cards.get(id)?.confirmCancel) {
      this.cards.set(id, { ...this.cards.get(id), confirmCancel: true });
      this.render();
      return;
    }
    this.move(id, button.dataset.action === 'cancel' ? 'cancelled' : button.dataset.action);
  }

  render() {
    const stations = this.station === 'all' ? STATIONS : [this.station];
    // Oldest first: the kitchen works first in, first out.
    const orders = [...this.orders.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    const columns = stations.map((station) => {
      const cards = orders
        .filter((o) => o.items.some((i) => i.station === station))
        .map((o) => this.card(o, station));
      return h('section', { class: 'column', id: `col-${station}`, 'data-station': station },
        h('h2', {}, station, h('span', { class: 'count' }, String(cards.length))),
        cards.length ? cards : h('p', { class: 'empty' }, 'nothing to do'));
    });
    this.root.replaceChildren(...columns);
  }

  card(o, station) {
    const state = this.cards.get(o.id) ?? {};
    const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(o.created_at)) / 60_000));
    const next = NEXT[o.status];
    const where = o.table_number ? `table ${o.table_number}` : o.type.replace('_', ' ');
    return h('article', {
      class: `card status-${o.status}${minutes >= LATE_AFTER_MIN ? ' late' : ''}`,
      'data-order-id': o.id,
      'data-status': o.status,
    },
    h('header', {},
      h('strong', {}, `#${o.order_number}`),
      h('span', { class: 'where' }, where),
      h('span', { class: 'age' }, minutes ? `${minutes} min` : 'now')),
    h('ul', { class: 'items' }, o.items.filter((i) => i.station === station).map((i) =>
      h('li', {}, h('b', {}, `${i.quantity}×`), ` ${i.name}`, i.notes ? h('em', {}, ` ${i.notes}`) : null))),
    h('footer', {},
      h('span', { class: 'status' }, o.status),
      next ? h('button', { 'data-action': next.status, disabled: state.pending }, next.label) : null,
      h('button', { 'data-action': 'cancel', class: 'cancel', disabled: state.pending },
        state.confirmCancel ? 'Really cancel?' : 'Cancel')),
    state.error ? h('p', { class: 'card-error', role: 'alert' }, state.error) : null);
  }
}

// ---------------------------------------------------------------------------------
// Page

function notice(kind, text) {
  const list = $('#notices');
  list.prepend(h('li', { class: kind }, `${new Date().toLocaleTimeString()} ${text}`));
  while (list.children.length > 5) list.lastElementChild.remove();
}

function showConn(state, text, transport) {
  const el = $('#conn');
  el.dataset.state = state;
  if (transport) el.dataset.transport = transport;
  else delete el.dataset.transport;
  el.textContent = text;
}

async function open(settings) {
  const server = (settings.server || 'http://localhost:3001').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+$/.test(server)) throw new Error(`server: an http(s) origin, not ${server}`);
  const token = settings.token;
  const claims = claimsOf(token);
  const restaurantId = settings.restaurant
    || (Array.isArray(claims.restaurants) && claims.restaurants.length === 1 ? claims.restaurants[0] : '');
  const station = settings.station || 'all';
  if (!restaurantId) throw new Error('which restaurant? the token lists none or several: set restaurant=');
  if (station !== 'all' && !STATIONS.includes(station)) throw new Error(`unknown station ${station}`);
  const roles = claims.roles ?? (claims.role ? [claims.role] : []);
  $('#who').textContent = `user ${claims.sub ?? '?'} (${roles.join(', ') || 'no role'})`;

  const io = await loadClient(`${server}/socket.io/socket.io.js`);
  const transports = { websocket: ['websocket'], polling: ['polling'] }[settings.transport];
  const socket = io(`${server}/restaurant`, {
    auth: { token },
    // Cookies and credentials on the long-polling requests: the server must name this
    // page's origin in ALLOWED_ORIGINS (a `*` answer is refused by the browser).
    withCredentials: true,
    ...(transports ? { transports } : {}),
  });
  const board = new Board({ socket, restaurantId, station });
  window.kitchen = { socket, board }; // for the console (and the browser test)
  board.listen();

  showConn('connecting', 'connecting…');
  socket.io.on('open', () => {
    // A new engine per (re)connection: follow its move from polling to websocket.
    socket.io.engine.on('upgrade', (t) => {
      if (socket.connected) showConn('connected', `live · ${t.name}`, t.name);
    });
  });
  socket.on('connect', () => {
    const t = socket.io.engine.transport.name;
    showConn('connected', `live · ${t}`, t);
    board.joinAndSync();
  });
  let expired = false;
  socket.on('session:expired', () => { expired = true; });
  socket.on('disconnect', (reason) => {
    if (reason !== 'io server disconnect') {
      showConn('offline', `offline (${reason}), reconnecting…`);
      return;
    }
    // The server ended the session (token expired, or an operator): socket.io-client
    // does not reconnect by itself, and the same token would not help.
    showConn('refused', expired ? 'session expired: sign in again' : 'disconnected by the server');
    $('#login').hidden = false;
  });
  socket.on('connect_error', (err) => {
    if (socket.active) {
      // A transport failure (server down, or this origin not allowed): the client retries.
      showConn('error', `cannot connect: ${err.message}, retrying…`);
    } else {
      // The server refused this token or restaurant: retrying would not help.
      showConn('refused', `refused: ${err.message}`);
      $('#login').hidden = false;
    }
  });
}

document.addEventListener('DOMContentLoaded', () => {
  const form = $('#login');
  const start = async (settings) => {
    form.hidden = true;
    try {
      await open(settings);
    } catch (err) {
      form.hidden = false;
      $('#login-error').textContent = err.message;
      showConn('refused', 'not connected');
    }
  };
  const settings = readSettings();
  if (settings.server) form.server.value = settings.server;
  if (settings.token) return start(settings);
  form.addEventListener('submit', (e) => {
    // Through the fragment and a fresh page: one socket per page, whatever came before.
    e.preventDefault();
    const fields = Object.fromEntries([...new FormData(form)].filter(([, v]) => v.trim()));
    location.hash = new URLSearchParams({ ...settings, ...fields }).toString();
    location.reload();
  });
});
