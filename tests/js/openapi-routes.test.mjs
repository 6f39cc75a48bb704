// docs/openapi.yaml names exactly the (method, path) pairs the router in src/http serves
// (issue #15), read from the source; routes made outside src/http fail the test.
//
// OPENAPI_DOC=<file> checks another document (to see this test fail on a broken one).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe } from 'node:test';

import { test } from './harness.mjs';
import { operations, root, routeKey } from './openapi.mjs';

/** The text of the call's arguments, `open` being the index of its `(`. */
function argsAt(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      i = text.indexOf('"', i + 1);
      continue;
    }
    if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error('unbalanced parentheses');
}

/** Arguments of every `.name(…)` call in `text`, with where they start. */
function calls(text, name) {
  return [...text.matchAll(new RegExp(`\\.${name}\\s*\\(`, 'g'))].map((m) => {
    const open = m.index + m[0].length - 1;
    return { args: argsAt(text, open), at: open };
  });
}

const AXUM_METHODS = new Set(['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'trace', 'connect']);

/** Methods of a `MethodRouter` expression such as `patch(a).delete(b)`. */
function methodsOf(expr, where) {
  const found = [];
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i];
    if (ch === '(') {
      if (depth === 0) {
        const ident = expr.slice(0, i).match(/([A-Za-z_]\w*)\s*$/)?.[1];
        if (!AXUM_METHODS.has(ident)) throw new Error(`${where}: cannot tell the HTTP method of \`${ident}(…)\`: teach this test`);
        found.push(ident.toUpperCase());
      }
      depth++;
    } else if (ch === ')') depth--;
  }
  if (found.length === 0) throw new Error(`${where}: no method in \`${expr.trim()}\``);
  return found;
}

/** Every `METHOD /path` the router built in src/http serves. */
function sourceRoutes() {
  const dir = path.join(root, 'src/http');
  const mod = readFileSync(path.join(dir, 'mod.rs'), 'utf8');
  // Where each module's router is mounted: under a `.nest("/prefix", …)` or at the root.
  const nests = calls(mod, 'nest').map(({ args, at }) => {
    const prefix = args.match(/^\s*"([^"]*)"\s*,/)?.[1];
    assert.ok(prefix !== undefined, `src/http/mod.rs: cannot read the prefix of .nest(${args})`);
    assert.ok(!/\.nest\s*\(/.test(args), 'src/http/mod.rs: a nest inside a nest: teach this test');
    return { prefix, from: at, to: at + args.length };
  });
  const mounts = [...mod.matchAll(/(\w+)::router\s*\(\s*\)/g)].map((m) => ({
    module: m[1],
    prefix: nests.find((n) => m.index > n.from && m.index < n.to)?.prefix ?? '',
  }));
  const served = new Set();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.rs') && f !== 'mod.rs')) {
    const text = readFileSync(path.join(dir, file), 'utf8');
    const routes = calls(text, 'route');
    const module = file.replace(/\.rs$/, '');
    const prefixes = mounts.filter((m) => m.module === module).map((m) => m.prefix);
    if (routes.length > 0) {
      assert.ok(prefixes.length > 0, `src/http/${file} has routes but src/http/mod.rs does not mount ${module}::router()`);
    }
    for (const { args } of routes) {
      const m = args.match(/^\s*"([^"]+)"\s*,([\s\S]*)$/);
      assert.ok(m, `src/http/${file}: cannot read .route(${args})`);
      for (const method of methodsOf(m[2], `src/http/${file} ${m[1]}`)) {
        for (const prefix of prefixes) served.add(routeKey(method, prefix + m[1]));
      }
    }
  }
  return served;
}

describe('the document names exactly the routes of src/http', () => {
  test('no route is made outside src/http (where this scan looks)', () => {
    const elsewhere = [];
    const walk = (dir) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (p !== path.join(root, 'src/http')) walk(p);
        } else if (e.name.endsWith('.rs') && /\.(route|route_service|nest|nest_service)\s*\(/.test(readFileSync(p, 'utf8'))) {
          elsewhere.push(path.relative(root, p));
        }
      }
    };
    walk(path.join(root, 'src'));
    // Plain WebSocket upgrades are not REST: PROTOCOL §8 describes them. Each must stay
    // a `get(` upgrade route, so a REST route added there is still caught.
    const WEBSOCKET_ROUTES = {
      'src/ws/mod.rs': ['"/ws"', '"/ws/dashboard/{session}"', '"/ws/{entity}/{section}"', '"/ws/{entity}/{section}/{token}"'],
    };
    for (const [file, routes] of Object.entries(WEBSOCKET_ROUTES)) {
      const text = readFileSync(path.join(root, file), 'utf8');
      const made = calls(text, 'route').map(({ args }) => args.trim());
      assert.deepEqual(
        made.map((a) => a.split(',')[0].trim()),
        routes,
        `${file} routes only the websocket upgrades ${routes.join(', ')}: ${made.join(' | ')}`,
      );
      for (const a of made) assert.match(a, /,\s*get\s*\(\s*upgrade(_\w+)?\b/, `${file}: ${a} is not a websocket upgrade`);
    }
    assert.deepEqual(
      elsewhere.filter((f) => !(f in WEBSOCKET_ROUTES)),
      [],
      'routes made elsewhere: extend sourceRoutes()',
    );
  });

  test('documented = served', () => {
    const served = sourceRoutes();
    assert.ok(served.has('GET /healthz') && served.has('POST /api/conversations'), `the scan looks broken: ${[...served]}`);
    const documented = new Set(operations.map((o) => o.key));
    const undocumented = [...served].filter((k) => !documented.has(k)).sort();
    const notServed = [...documented].filter((k) => !served.has(k)).sort();
    assert.deepEqual(
      { undocumented, notServed },
      { undocumented: [], notServed: [] },
      `undocumented routes: ${undocumented.join(', ') || '-'}; documented but not served: ${notServed.join(', ') || '-'}`,
    );
  });
});
