// The socket.io Admin UI (@socket.io/admin-ui 0.5, issue #16) in a real browser: Debian's
// Chromium (puppeteer-core) opens the UI the server itself serves at /admin/ui/
// (ADMIN_UI_DIR = the installed package's ui/dist), logs in, and shows what the server
// holds: the sockets of socket.io-client clients per namespace, and the room they
// joined. A wrong password is refused with the UI's "Invalid credentials". Screenshots
// go to tests/js/artifacts/ (docs/admin-ui.png is one of them).
//
// The browser may reach this machine's server only: every other request (the
// package's index.html links fonts and icons on public CDNs) is aborted.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import bcrypt from 'bcryptjs';

import {
  assertStops, connect, createConversation, emitAck, startServer, test, token, users,
} from './harness.mjs';
import { launchBrowser } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const UI_DIR = path.join(here, 'node_modules/@socket.io/admin-ui/ui/dist');
const ARTIFACTS = path.join(here, 'artifacts');
const PASSWORD = 'correct horse battery staple';

/** A page that may load from `origin` only, in a desktop-sized window. */
async function localPage(context, origin) {
  const page = await context.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    const url = req.url();
    if (url.startsWith(origin) || url.startsWith('data:') || url.startsWith('blob:')) req.continue();
    else req.abort();
  });
  return page;
}

/** Fills the UI's connection dialog and submits it. */
async function logIn(page, serverUrl, username, password) {
  await page.waitForSelector('.v-dialog--active input[type="password"]', { visible: true, timeout: 20_000 });
  const [url, name] = await page.$$('.v-dialog--active input[type="text"]');
  await url.click({ clickCount: 3 });
  await url.type(serverUrl);
  await name.type(username);
  await page.type('.v-dialog--active input[type="password"]', password);
  await page.click('.v-dialog--active button[type="submit"]');
}

/** The Dashboard's namespaces table as { name: socketsCount }. */
/** Picks `name` in the UI's namespace selector (the Sockets and Rooms pages show one namespace, "/" first). */
async function selectNamespace(page, name) {
  // The one labelled "Namespace" (the app bar has a language select too).
  const selector = await page.waitForFunction(
    () => [...document.querySelectorAll('.v-select')]
      .find((s) => /namespace/i.test(s.querySelector('.v-label')?.textContent ?? ''))
      ?.querySelector('.v-select__slot'),
    { timeout: 15_000 },
  );
  await selector.click();
  const item = '.menuable__content__active .v-list-item';
  await page.waitForSelector(item, { visible: true, timeout: 15_000 });
  for (const option of await page.$$(item)) {
    if ((await option.evaluate((e) => e.textContent.trim())) === name) {
      await option.click();
      return;
    }
  }
  const offered = await page.$$eval(item, (all) => all.map((e) => e.textContent.trim()));
  throw new Error(`namespace ${name} is not offered: ${JSON.stringify(offered)}`);
}

function namespacesShown(page) {
  return page.evaluate(() => {
    const out = {};
    for (const row of document.querySelectorAll('tr')) {
      const code = row.querySelector('td code');
      const cells = row.querySelectorAll('td');
      if (code && cells.length === 2) out[code.textContent.trim()] = Number(cells[1].textContent.trim());
    }
    return out;
  });
}

describe('Admin UI in Chromium', () => {
  let server;
  let browser;
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer({
      ADMIN_UI: 'true',
      ADMIN_UI_USERNAME: 'ops',
      ADMIN_UI_PASSWORD_HASH: bcrypt.hashSync(PASSWORD, 10),
      ADMIN_UI_DIR: UI_DIR,
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await assertStops(server);
  });

  test('logs in and shows the connected sockets and the room they joined', async () => {
    const [u1, u2, u3] = users(3);
    const ws = { transports: ['websocket'] };
    const sockets = [];
    for (const user of [u1, u2, u3]) sockets.push(await connect(server.url, '/chat', { ...ws, token: token(user) }));
    const kitchen = await connect(server.url, '/', { ...ws, token: token(u3, ['admin']) });
    const conversation = (await createConversation(server, u1, [u2]))._id;
    for (const s of sockets.slice(0, 2)) {
      const ack = await emitAck(s, 'conversation:join', { conversationId: conversation });
      assert.equal(ack.ok, true, JSON.stringify(ack));
    }

    const context = await browser.createBrowserContext();
    try {
      const page = await localPage(context, server.url);
      await page.goto(`${server.url}/admin/ui/`, { waitUntil: 'domcontentloaded' });
      assert.equal(await page.title(), 'Socket.IO Admin UI');
      await logIn(page, server.url, 'ops', PASSWORD);

      // The Dashboard: sockets per namespace, from every node's server_stats.
      await page.waitForFunction(
        () => [...document.querySelectorAll('tr')].some((row) => {
          const cells = row.querySelectorAll('td');
          return cells.length === 2 && cells[0].textContent.trim() === '/chat' && cells[1].textContent.trim() === '3';
        }),
        { timeout: 15_000 },
      );
      const shown = await namespacesShown(page);
      assert.equal(shown['/chat'], 3, JSON.stringify(shown));
      assert.equal(shown['/'], 1, JSON.stringify(shown));
      assert.equal(shown['/admin'], 1, 'the UI itself');
      // A moment for the charts to draw before the picture.
      await page.waitForNetworkIdle({ idleTime: 500, timeout: 10_000 }).catch(() => {});
      await page.screenshot({ path: path.join(ARTIFACTS, 'admin-ui-dashboard.png') });

      // The Rooms page: the conversation's room with its two sockets.
      const room = `conversation:${conversation}`;
      await page.goto(`${server.url}/admin/ui/#/rooms/`, { waitUntil: 'domcontentloaded' });
      await selectNamespace(page, '/chat');
      // A reload: the UI logs back in with the session the server gave it.
      await page.waitForFunction(
        (name) => [...document.querySelectorAll('tr')].some((row) => {
          const cells = [...row.querySelectorAll('td')].map((c) => c.textContent.trim());
          return cells[0] === name && cells.includes('2');
        }),
        { timeout: 15_000 },
        room,
      );
      const rooms = await page.evaluate(() =>
        [...document.querySelectorAll('tbody tr')].map((row) => row.querySelector('td')?.textContent.trim()),
      );
      for (const user of [u1, u2, u3]) assert.ok(rooms.includes(`user:${user}`), JSON.stringify(rooms));
      assert.ok(!(await page.$('.v-dialog--active')), 'no login dialog after the reload');
      await page.screenshot({ path: path.join(ARTIFACTS, 'admin-ui-rooms.png') });

      // What the server holds changes, and the page follows within its two-second tick.
      sockets[2].disconnect();
      await page.goto(`${server.url}/admin/ui/#/`, { waitUntil: 'domcontentloaded' });
      await page.waitForFunction(
        () => [...document.querySelectorAll('tr')].some((row) => {
          const cells = row.querySelectorAll('td');
          return cells.length === 2 && cells[0].textContent.trim() === '/chat' && cells[1].textContent.trim() === '2';
        }),
        { timeout: 15_000 },
      );
    } finally {
      await context.close();
      kitchen.disconnect();
    }
  });

  test('a wrong password is refused and the UI says so', async () => {
    const context = await browser.createBrowserContext();
    try {
      const page = await localPage(context, server.url);
      await page.goto(`${server.url}/admin/ui/`, { waitUntil: 'domcontentloaded' });
      await logIn(page, server.url, 'ops', 'not the password');
      await page.waitForFunction(
        () => document.querySelector('.v-dialog--active .red--text')?.textContent.includes('Invalid credentials'),
        { timeout: 15_000 },
      );
      await page.screenshot({ path: path.join(ARTIFACTS, 'admin-ui-refused.png') });
      const shown = await namespacesShown(page);
      assert.deepEqual(shown, {}, 'nothing of the server is shown');
    } finally {
      await context.close();
    }
  });
});
