// `/socket.io/socket.io.js` as Node's `serveClient` serves it (issue #16): a web app
// loading `<script src="/socket.io/socket.io.js">` gets the client from the server
// when SOCKETIO_CLIENT_DIR points at an installed socket.io-client/dist.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { assertStops, connect, startServer, token, users } from './harness.mjs';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node_modules/socket.io-client/dist');

describe('SOCKETIO_CLIENT_DIR set', () => {
  let server;
  before(async () => {
    server = await startServer({ SOCKETIO_CLIENT_DIR: dist });
  });
  after(() => assertStops(server));

  test('socket.io.js, .min.js and the maps are the installed files, cached by ETag', async () => {
    for (const [name, type] of [
      ['socket.io.js', 'application/javascript'],
      ['socket.io.min.js', 'application/javascript'],
      ['socket.io.js.map', 'application/json'],
      ['socket.io.esm.min.js', 'application/javascript'],
    ]) {
      const res = await fetch(`${server.url}/socket.io/${name}`);
      assert.equal(res.status, 200, name);
      assert.ok(res.headers.get('content-type').startsWith(type), `${name}: ${res.headers.get('content-type')}`);
      const body = await res.text();
      const installed = readFileSync(path.join(dist, name), 'utf8');
      // (Compared without printing 150 KB of JavaScript on a failure.)
      assert.ok(body === installed, `${name}: ${body.length} bytes served, ${installed.length} installed`);
      const etag = res.headers.get('etag');
      assert.ok(etag, `${name}: no ETag`);
      const again = await fetch(`${server.url}/socket.io/${name}`, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304, name);
      assert.equal(await again.text(), '');
    }
  });

  test('socket.io itself still answers under the same path', async () => {
    const [u] = users(1);
    const s = await connect(server.url, '/notifications', { token: token(u) });
    assert.ok(s.connected);
    s.disconnect();
  });
});

describe('SOCKETIO_CLIENT_DIR unset', () => {
  let server;
  before(async () => {
    server = await startServer({});
  });
  after(async () => {
    await server.stop();
  });

  test('socket.io.js answers 404 saying what to set, not engine.io\'s 400', async () => {
    const res = await fetch(`${server.url}/socket.io/socket.io.js`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /SOCKETIO_CLIENT_DIR/);
  });
});

describe('SOCKETIO_PATH=/rt with SOCKETIO_CLIENT_DIR', () => {
  let server;
  before(async () => {
    server = await startServer({ SOCKETIO_CLIENT_DIR: dist, SOCKETIO_PATH: '/rt' });
  });
  after(async () => {
    await server.stop();
  });

  test('the client is served under the configured path', async () => {
    const res = await fetch(`${server.url}/rt/socket.io.min.js`);
    assert.equal(res.status, 200);
    const body = await res.text();
    const installed = readFileSync(path.join(dist, 'socket.io.min.js'), 'utf8');
    assert.ok(body === installed, `${body.length} bytes served, ${installed.length} installed`);
    const full = await fetch(`${server.url}/rt/socket.io.js`);
    assert.equal((await full.text()).length, readFileSync(path.join(dist, 'socket.io.js'), 'utf8').length);
  });
});
