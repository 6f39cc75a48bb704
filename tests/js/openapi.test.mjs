// docs/openapi.yaml against the code (issue #15): the document is well formed, it names
// exactly the (method, path) pairs the router in src/http serves, and a real server
// answers every documented operation with a documented status, content type, headers
// and body shape.
//
// OPENAPI_DOC=<file> checks another document (to see this test fail on a broken one).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import YAML from 'yaml';

import { api, assertStops, startServer, test, token, users } from './harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOC_PATH = process.env.OPENAPI_DOC
  ? path.resolve(process.env.OPENAPI_DOC)
  : path.join(root, 'docs/openapi.yaml');
const doc = YAML.parse(readFileSync(DOC_PATH, 'utf8'));

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Every operation: `{ method, path, op, key }`, `key` as `POST /api/x/{}`. */
const operations = Object.entries(doc.paths ?? {}).flatMap(([p, item]) =>
  METHODS.filter((m) => item[m]).map((m) => ({
    method: m.toUpperCase(),
    path: p,
    op: item[m],
    params: [...(item.parameters ?? []), ...(item[m].parameters ?? [])].map(deref),
    key: routeKey(m, p),
  })),
);

/** `POST /api/orders/{}`: method and path with every parameter name erased. */
function routeKey(method, p) {
  return `${method.toUpperCase()} ${p.replace(/\{[^}]*\}/g, '{}').replace(/\/:[^/]+/g, '/{}')}`;
}

// ---------------------------------------------------------------------------------
// $ref and a small JSON Schema validator (the keywords this document uses; any other
// keyword fails the test rather than being ignored)

function resolveRef(ref) {
  assert.ok(ref.startsWith('#/'), `only local $refs are supported: ${ref}`);
  let node = doc;
  for (const raw of ref.slice(2).split('/')) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(part in node)) {
      throw new Error(`$ref ${ref} does not resolve (no "${part}")`);
    }
    node = node[part];
  }
  return node;
}

function deref(node) {
  let seen = 0;
  while (node && typeof node === 'object' && typeof node.$ref === 'string') {
    assert.ok(++seen < 20, 'a $ref loop');
    node = resolveRef(node.$ref);
  }
  return node;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const TYPES = {
  null: (v) => v === null,
  boolean: (v) => typeof v === 'boolean',
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  string: (v) => typeof v === 'string',
  array: Array.isArray,
  object: isObject,
};
const ANNOTATIONS = new Set(['description', 'example', 'examples', 'format', 'title', 'deprecated']);

/** Errors (strings) of `value` against `schema`; empty when it conforms. */
function validate(schema, value, at = '$', errs = []) {
  for (const [k, v] of Object.entries(schema)) {
    switch (k) {
      case '$ref':
        validate(resolveRef(v), value, at, errs);
        break;
      case 'type': {
        const types = [].concat(v);
        for (const t of types) assert.ok(TYPES[t], `unknown type "${t}" at ${at}`);
        if (!types.some((t) => TYPES[t](value))) errs.push(`${at}: ${JSON.stringify(value)} is not ${types.join('|')}`);
        break;
      }
      case 'enum':
        if (!v.some((e) => JSON.stringify(e) === JSON.stringify(value))) errs.push(`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(v)}`);
        break;
      case 'const':
        if (JSON.stringify(v) !== JSON.stringify(value)) errs.push(`${at}: ${JSON.stringify(value)} is not ${JSON.stringify(v)}`);
        break;
      case 'required':
        if (isObject(value)) for (const r of v) if (!(r in value)) errs.push(`${at}: "${r}" is missing`);
        break;
      case 'properties':
        if (isObject(value)) {
          for (const [p, s] of Object.entries(v)) if (p in value) validate(s, value[p], `${at}.${p}`, errs);
        }
        break;
      case 'additionalProperties':
        assert.equal(v, false, `additionalProperties other than false at ${at}`);
        if (isObject(value)) {
          for (const p of Object.keys(value)) {
            if (!(p in (schema.properties ?? {}))) errs.push(`${at}: "${p}" is not documented`);
          }
        }
        break;
      case 'items':
        if (Array.isArray(value)) value.forEach((x, i) => validate(v, x, `${at}[${i}]`, errs));
        break;
      case 'minItems':
        if (Array.isArray(value) && value.length < v) errs.push(`${at}: fewer than ${v} items`);
        break;
      case 'maxItems':
        if (Array.isArray(value) && value.length > v) errs.push(`${at}: more than ${v} items`);
        break;
      case 'minLength':
        if (typeof value === 'string' && [...value].length < v) errs.push(`${at}: shorter than ${v}`);
        break;
      case 'maxLength':
        if (typeof value === 'string' && [...value].length > v) errs.push(`${at}: longer than ${v}`);
        break;
      case 'minimum':
        if (typeof value === 'number' && value < v) errs.push(`${at}: ${value} < ${v}`);
        break;
      case 'maximum':
        if (typeof value === 'number' && value > v) errs.push(`${at}: ${value} > ${v}`);
        break;
      case 'pattern':
        if (typeof value === 'string' && !new RegExp(v, 'u').test(value)) errs.push(`${at}: ${JSON.stringify(value)} does not match ${v}`);
        break;
      case 'oneOf': {
        const matching = v.filter((s) => validate(s, value, at).length === 0).length;
        if (matching !== 1) errs.push(`${at}: ${JSON.stringify(value)} matches ${matching} of oneOf`);
        break;
      }
      default:
        assert.ok(ANNOTATIONS.has(k), `the test's schema validator does not know "${k}" (at ${at}): teach it`);
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------
// a. The document itself

describe(`${path.relative(root, DOC_PATH)} is a well-formed OpenAPI 3.1 document`, () => {
  test('openapi is 3.1.x, with info and paths', () => {
    assert.match(String(doc.openapi), /^3\.1\.\d+$/);
    assert.equal(typeof doc.info?.title, 'string');
    assert.equal(typeof doc.info?.version, 'string');
    assert.ok(operations.length > 0, 'no operations');
  });

  test('every operation has an operationId (unique) and responses keyed by status code', () => {
    const ids = new Map();
    for (const { key, op } of operations) {
      assert.equal(typeof op.operationId, 'string', `${key}: no operationId`);
      assert.ok(!ids.has(op.operationId), `${key}: operationId ${op.operationId} also on ${ids.get(op.operationId)}`);
      ids.set(op.operationId, key);
      const codes = Object.keys(op.responses ?? {});
      assert.ok(codes.length > 0, `${key}: no responses`);
      for (const c of codes) assert.match(c, /^[1-5]\d\d$/, `${key}: response "${c}" is not a status code`);
      assert.ok(codes.some((c) => c.startsWith('2')), `${key}: no success response`);
    }
  });

  test('every $ref resolves', () => {
    const broken = [];
    const walk = (node, at) => {
      if (Array.isArray(node)) node.forEach((x, i) => walk(x, `${at}/${i}`));
      else if (isObject(node)) {
        for (const [k, v] of Object.entries(node)) {
          if (k === '$ref') {
            try {
              resolveRef(v);
            } catch (e) {
              broken.push(`${at}: ${e.message}`);
            }
          } else walk(v, `${at}/${k}`);
        }
      }
    };
    walk(doc, '#');
    assert.deepEqual(broken, []);
  });

  test('path templates and path parameters match; /api operations need the bearer token', () => {
    for (const { key, path: p, op, params } of operations) {
      const inPath = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = params.filter((x) => x.in === 'path').map((x) => x.name).sort();
      assert.deepEqual(declared, inPath, `${key}: path parameters`);
      for (const x of params.filter((x) => x.in === 'path')) assert.equal(x.required, true, `${key}: ${x.name} not required`);
      const security = op.security ?? doc.security ?? [];
      if (p.startsWith('/api/')) {
        assert.ok(security.some((s) => 'bearerAuth' in s), `${key}: not secured by bearerAuth`);
        for (const code of ['401', '429']) assert.ok(op.responses[code], `${key}: no ${code} (every /api route has it)`);
      } else {
        assert.deepEqual(security, [], `${key}: health routes take no token`);
      }
    }
    assert.equal(doc.components?.securitySchemes?.bearerAuth?.scheme, 'bearer');
  });

  test('every example conforms to its schema', () => {
    let checked = 0;
    for (const { key, op } of operations) {
      const media = [
        ...Object.entries(deref(op.requestBody)?.content ?? {}).map(([t, m]) => [`request ${t}`, m]),
        ...Object.entries(op.responses).flatMap(([code, r]) =>
          Object.entries(deref(r).content ?? {}).map(([t, m]) => [`${code} ${t}`, m])),
      ];
      for (const [what, m] of media) {
        if (m.example === undefined) continue;
        assert.ok(m.schema, `${key} ${what}: an example without a schema`);
        checked++;
        assert.deepEqual(validate(m.schema, m.example), [], `${key} ${what}: example`);
      }
    }
    assert.ok(checked > 0, 'no examples were checked');
  });
});

// ---------------------------------------------------------------------------------
// b. The routes the source serves

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

// ---------------------------------------------------------------------------------
// c. A real server answers every operation as documented

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
