// examples/web (the kitchen board) in a real browser: Debian's Chromium driven by
// puppeteer-core. The page is served by a small static server on its own origin, as a
// web app is in production; Switchboard runs with ALLOWED_ORIGINS naming that origin and
// serves socket.io.js (SOCKETIO_CLIENT_DIR). Everything asserted is what the page shows.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';

import { launchBrowser } from './browser.mjs';
import { api, connect, emitAck, next, startServer, test, token, users } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const WEB_DIR = path.resolve(here, '../../examples/web');
const CLIENT_DIST = path.join(here, 'node_modules/socket.io-client/dist');
const ARTIFACTS = path.join(here, 'artifacts');
const WAIT = { timeout: 10_000 };

/** Serves examples/web's files (flat folder) on a fresh 127.0.0.1 port: one origin. */
async function staticSite() {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
  const srv = createServer((req, res) => {
    const name = new URL(req.url, 'http://x').pathname.slice(1) || 'index.html';
    const type = types[path.extname(name)];
    let body;
    try {
      if (!type || !/^[a-z]+\.[a-z]+$/.test(name)) throw new Error('not a page file');
      body = readFileSync(path.join(WEB_DIR, name));
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' }).end(body);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    origin: `http://127.0.0.1:${srv.address().port}`,
    close: () => new Promise((resolve) => srv.close(resolve)),
  };
}

describe('examples/web kitchen board in Chromium', () => {
  let site; // the origin in ALLOWED_ORIGINS
  let foreign; // same files, another origin
  let server;
  let browser;
  let restaurantId;
  const service = { user: 9000, roles: ['service'] };

  before(async () => {
    site = await staticSite();
    foreign = await staticSite();
    server = await startServer({ ALLOWED_ORIGINS: site.origin, SOCKETIO_CLIENT_DIR: CLIENT_DIST });
    browser = await launchBrowser();
    const made = await api(server, 'POST', '/api/restaurants', { ...service, body: { name: 'Browser Bistro' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    restaurantId = made.body.id;
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await site?.close();
    await foreign?.close();
  });

  const staffToken = (roles = ['staff']) => token(users(1)[0], roles, { restaurants: [restaurantId] });

  /**
   * Opens the board from `origin` (settings in the fragment, as a user's bookmark would
   * have them). Records the page's console and, through the DevTools protocol, every
   * request to Switchboard with the headers Chromium really sent and received.
   */
  async function openBoard(origin, settings) {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 760 });
    page.consoleLines = [];
    page.on('console', (m) => page.consoleLines.push(m.text()));
    page.on('pageerror', (e) => page.consoleLines.push(`pageerror: ${e.message}`));
    const requests = new Map(); // requestId -> { url, sent, received, status }
    const entry = (id) => requests.get(id) ?? requests.set(id, {}).get(id);
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', (e) => { entry(e.requestId).url = e.request.url; });
    cdp.on('Network.requestWillBeSentExtraInfo', (e) => { entry(e.requestId).sent = e.headers; });
    cdp.on('Network.responseReceivedExtraInfo', (e) => {
      Object.assign(entry(e.requestId), { received: e.headers, status: e.statusCode });
    });
    // Websockets have events of their own.
    cdp.on('Network.webSocketCreated', (e) => { entry(e.requestId).url = e.url; });
    cdp.on('Network.webSocketWillSendHandshakeRequest', (e) => { entry(e.requestId).sent = e.request.headers; });
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
      Object.assign(entry(e.requestId), { received: e.response.headers, status: e.response.status });
    });
    const host = new URL(server.url).host; // http: and ws: alike
    page.switchboardRequests = () => [...requests.values()].filter((r) => r.url && new URL(r.url).host === host);
    const fragment = new URLSearchParams({ server: server.url, ...settings });
    await page.goto(`${origin}/index.html#${fragment}`);
    return page;
  }

  const cardSelector = (station, orderId) => `#col-${station} [data-order-id="${orderId}"]`;
  const text = (page, selector) => page.$eval(selector, (el) => el.textContent);

  async function postOrder(body) {
    const res = await api(server, 'POST', `/api/restaurants/${restaurantId}/orders`, { ...service, body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  async function statusInDb(orderId) {
    const all = 'new,pending,confirmed,preparing,ready,completed,cancelled';
    const res = await api(server, 'GET', `/api/restaurants/${restaurantId}/orders?status=${all}`, service);
    assert.equal(res.status, 200);
    return res.body.find((o) => o.id === orderId)?.status;
  }

  test('the board connects with credentials over long-polling, upgrades to websocket and syncs', async () => {
    const waiting = await postOrder({
      order_number: 'P1', type: 'dine_in', table_number: 2, total: 9.5,
      items: [{ name: 'Omelette', quantity: 1, station: 'kitchen' }],
    });
    // A cookie of Switchboard's host: Chromium sends it on cross-origin XHRs only in
    // credentials mode (`withCredentials: true`), and then only reads answers that allow
    // credentials for this exact origin.
    const page = await browser.newPage();
    await page.setCookie({ name: 'sb_probe', value: 'credentials', url: server.url });
    await page.close();
    const board = await openBoard(site.origin, { token: staffToken() });

    await board.waitForSelector('#conn[data-state="connected"][data-transport="websocket"]', WAIT);
    assert.equal(await board.evaluate(() => window.kitchen.socket.io.engine.transport.name), 'websocket');
    assert.match(await text(board, '#conn'), /live · websocket/);
    assert.equal(await board.$eval('#rooms', (el) => el.dataset.room), `restaurant:${restaurantId}`);
    // The token left the address bar once read.
    assert.ok(!(await board.evaluate(() => location.href)).includes('token='));

    const polls = board.switchboardRequests()
      .filter((r) => /\/socket\.io\/\?EIO=4&transport=polling/.test(r.url) && r.received);
    assert.ok(polls.length >= 2, `handshake and CONNECT over polling: ${JSON.stringify(polls.map((p) => p.url))}`);
    for (const p of polls) {
      assert.equal(p.status, 200, p.url);
      const got = Object.fromEntries(Object.entries(p.received).map(([k, v]) => [k.toLowerCase(), v]));
      assert.equal(got['access-control-allow-origin'], site.origin, p.url);
      assert.equal(got['access-control-allow-credentials'], 'true', p.url);
      const cookie = Object.entries(p.sent ?? {}).find(([k]) => k.toLowerCase() === 'cookie')?.[1];
      assert.match(cookie ?? '', /sb_probe=credentials/, `${p.url} went without credentials`);
    }
    const upgrade = board.switchboardRequests().find((r) => /^ws:.*transport=websocket/.test(r.url));
    assert.ok(upgrade, 'no websocket request');
    assert.match(upgrade.url, /&sid=/, 'the websocket was an upgrade of the polling session');
    assert.equal(upgrade.status, 101);

    // The order that was there before the page opened came with orders:sync.
    await board.waitForSelector(cardSelector('kitchen', waiting.id), WAIT);
    assert.match(await text(board, cardSelector('kitchen', waiting.id)), /#P1.*table 2.*1× Omelette/s);
    await board.close();
  });

  test('orders appear in their station columns and move with another tablet and with the buttons', async () => {
    const board = await openBoard(site.origin, { token: staffToken() });
    await board.waitForSelector('#board[data-synced]', WAIT);

    const dineIn = await postOrder({
      order_number: '41', type: 'dine_in', table_number: 5, total: 23.5,
      items: [
        { name: 'Tomato soup', quantity: 2, station: 'kitchen', notes: 'no salt' },
        { name: 'Lemonade', quantity: 2, station: 'bar' },
      ],
    });
    const takeout = await postOrder({
      order_number: '42', type: 'takeout', total: 14,
      items: [
        { name: 'Burger', quantity: 1, station: 'kitchen', notes: 'well done' },
        { name: 'Bag & sauces', quantity: 1, station: 'expo' },
      ],
    });
    await board.waitForSelector(cardSelector('kitchen', dineIn.id), WAIT);
    await board.waitForSelector(cardSelector('bar', dineIn.id), WAIT);
    await board.waitForSelector(cardSelector('expo', takeout.id), WAIT);
    const kitchenCard = await text(board, cardSelector('kitchen', dineIn.id));
    assert.match(kitchenCard, /#41.*table 5.*2× Tomato soup no salt/s);
    assert.ok(!kitchenCard.includes('Lemonade'), 'a bar item on the kitchen card');
    assert.match(await text(board, cardSelector('bar', dineIn.id)), /2× Lemonade/);
    assert.ok(!(await text(board, cardSelector('bar', dineIn.id))).includes('soup'));
    assert.equal(await board.$(cardSelector('expo', dineIn.id)), null, 'no expo item, no expo card');
    assert.equal(await board.$(cardSelector('bar', takeout.id)), null);
    assert.match(await text(board, cardSelector('kitchen', takeout.id)), /#42.*takeout.*1× Burger well done/s);
    // Oldest first in a column.
    const kitchenOrder = await board.$$eval('#col-kitchen [data-order-id]', (els) => els.map((e) => e.dataset.orderId));
    assert.ok(kitchenOrder.indexOf(dineIn.id) < kitchenOrder.indexOf(takeout.id), JSON.stringify(kitchenOrder));

    // Another tablet (socket.io-client in Node, websocket) starts the soup.
    const tablet = await connect(server.url, `/restaurants/${restaurantId}`, {
      token: staffToken(), transports: ['websocket'],
    });
    const started = await emitAck(tablet, 'order:update_status', { orderId: dineIn.id, status: 'preparing', restaurantId });
    assert.equal(started.success, true, JSON.stringify(started));
    await next(tablet, 'order:status_changed');
    for (const station of ['kitchen', 'bar']) {
      await board.waitForSelector(`${cardSelector(station, dineIn.id)}[data-status="preparing"]`, WAIT);
    }
    assert.equal(await text(board, `${cardSelector('kitchen', dineIn.id)} button[data-action="ready"]`), 'Ready');

    // The cook marks it ready on the page: the ack moves the card, the room hears it.
    await board.click(`${cardSelector('kitchen', dineIn.id)} button[data-action="ready"]`);
    const heard = await next(tablet, 'order:status_changed');
    assert.deepEqual([heard.orderId, heard.previousStatus, heard.status], [dineIn.id, 'preparing', 'ready']);
    await board.waitForSelector(`${cardSelector('bar', dineIn.id)}[data-status="ready"]`, WAIT);
    assert.equal(await statusInDb(dineIn.id), 'ready');

    // The whole table is ready: the pass is told.
    await board.waitForFunction(
      () => [...document.querySelectorAll('#notices li')].some((li) => li.textContent.endsWith('Table 5 is ready to serve')),
      WAIT,
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    await board.screenshot({ path: path.join(ARTIFACTS, 'web-example.png') });

    // Bump: completed orders leave every column.
    await board.click(`${cardSelector('kitchen', dineIn.id)} button[data-action="completed"]`);
    assert.equal((await next(tablet, 'order:status_changed')).status, 'completed');
    await board.waitForSelector(cardSelector('kitchen', dineIn.id), { ...WAIT, hidden: true });
    await board.waitForSelector(cardSelector('bar', dineIn.id), { ...WAIT, hidden: true });
    assert.equal(await statusInDb(dineIn.id), 'completed');
    // The takeout is untouched.
    assert.equal(await board.$eval(cardSelector('kitchen', takeout.id), (el) => el.dataset.status), 'new');
    await board.close();
  });

  test('a bar screen joins only the bar room and sees only bar orders', async () => {
    const board = await openBoard(site.origin, { token: staffToken(), station: 'bar' });
    await board.waitForSelector('#board[data-synced]', WAIT);
    assert.equal(await board.$eval('#rooms', (el) => el.dataset.room), `station:${restaurantId}:bar`);
    assert.deepEqual(await board.$$eval('#board .column', (els) => els.map((e) => e.dataset.station)), ['bar']);
    const food = await postOrder({
      order_number: '50', type: 'delivery', total: 12,
      items: [{ name: 'Pasta', quantity: 1, station: 'kitchen' }],
    });
    const drinks = await postOrder({
      order_number: '51', type: 'dine_in', table_number: 8, total: 8,
      items: [{ name: 'Espresso', quantity: 2, station: 'bar' }],
    });
    await board.waitForSelector(cardSelector('bar', drinks.id), WAIT);
    // Events reach the page in order: the food order came first and never arrived.
    assert.equal(await board.$(`[data-order-id="${food.id}"]`), null);
    assert.equal(await board.evaluate((id) => window.kitchen.board.orders.has(id), food.id), false);
    await board.close();
  });

  test('an ack error is shown on the card and changes nothing', async () => {
    // A `user` token (a customer display) may watch the board but not move orders.
    const board = await openBoard(site.origin, { token: staffToken(['user']) });
    await board.waitForSelector('#board[data-synced]', WAIT);
    const order = await postOrder({
      order_number: '60', type: 'dine_in', table_number: 3, total: 5,
      items: [{ name: 'Salad', quantity: 1, station: 'kitchen' }],
    });
    await board.waitForSelector(cardSelector('kitchen', order.id), WAIT);
    await board.click(`${cardSelector('kitchen', order.id)} button[data-action="preparing"]`);
    await board.waitForSelector(`${cardSelector('kitchen', order.id)} .card-error`, WAIT);
    assert.match(await text(board, `${cardSelector('kitchen', order.id)} .card-error`), /^PERMISSION_DENIED: /);
    assert.equal(await board.$eval(cardSelector('kitchen', order.id), (el) => el.dataset.status), 'new');
    assert.equal(await statusInDb(order.id), 'new');

    // Cancel asks once more before it sends anything.
    await board.click(`${cardSelector('kitchen', order.id)} button[data-action="cancel"]`);
    assert.equal(await text(board, `${cardSelector('kitchen', order.id)} button[data-action="cancel"]`), 'Really cancel?');
    assert.equal(await statusInDb(order.id), 'new');
    await board.close();
  });

  test('a page served from a foreign origin is refused: CORS blocks polling, 403 the websocket', async () => {
    const polling = await openBoard(foreign.origin, { token: staffToken() });
    await polling.waitForSelector('#conn[data-state="error"]', WAIT);
    assert.match(await text(polling, '#conn'), /cannot connect: xhr poll error/);
    assert.ok(
      polling.consoleLines.some((l) => l.includes('blocked by CORS policy')),
      `no CORS refusal in the console: ${JSON.stringify(polling.consoleLines)}`,
    );
    assert.equal(await polling.evaluate(() => window.kitchen.socket.connected), false);
    assert.equal(await polling.$eval('#board', (el) => el.hidden), true);
    await polling.close();

    const websocket = await openBoard(foreign.origin, { token: staffToken(), transport: 'websocket' });
    await websocket.waitForSelector('#conn[data-state="error"]', WAIT);
    assert.match(await text(websocket, '#conn'), /cannot connect: websocket error/);
    // Chromium reports no handshake answer for a refused websocket, only the console line.
    const attempt = websocket.switchboardRequests().find((r) => /^ws:.*transport=websocket/.test(r.url));
    assert.equal(attempt?.sent?.Origin, foreign.origin);
    assert.ok(
      websocket.consoleLines.some((l) => l.includes('Unexpected response code: 403')),
      `no 403 in the console: ${JSON.stringify(websocket.consoleLines)}`,
    );
    assert.equal(await websocket.$eval('#board', (el) => el.hidden), true);
    await websocket.close();
  });

  test('a session ended by the server shows it and the login form again', async () => {
    const [cook] = users(1);
    const board = await openBoard(site.origin, { token: token(cook, ['staff'], { restaurants: [restaurantId] }) });
    await board.waitForSelector('#conn[data-state="connected"]', WAIT);
    assert.equal(await board.$eval('#login', (el) => el.hidden), true);
    const res = await api(server, 'POST', `/api/users/${cook}/disconnect`, service);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await board.waitForSelector('#conn[data-state="refused"]', WAIT);
    assert.equal(await text(board, '#conn'), 'disconnected by the server');
    assert.equal(await board.$eval('#login', (el) => el.hidden), false);
    await board.close();
  });

  test('a refused token shows the refusal and the login form again', async () => {
    const board = await openBoard(site.origin, { token: token(users(1)[0], ['staff'], { restaurants: [restaurantId], exp: 1 }) });
    await board.waitForSelector('#conn[data-state="refused"]', WAIT);
    assert.equal(await text(board, '#conn'), 'refused: AUTH_FAILED');
    assert.equal(await board.$eval('#login', (el) => el.hidden), false);
    await board.close();
  });
});
