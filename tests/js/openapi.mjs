// What the openapi-*.test.mjs files share (issue #15): the document they check
// (docs/openapi.yaml, or OPENAPI_DOC=<file> to see the tests fail on a broken one), its
// operations, and a small JSON Schema validator for its examples and for real answers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DOC_PATH = process.env.OPENAPI_DOC
  ? path.resolve(process.env.OPENAPI_DOC)
  : path.join(root, 'docs/openapi.yaml');
export const doc = YAML.parse(readFileSync(DOC_PATH, 'utf8'));

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Every operation: `{ method, path, op, key }`, `key` as `POST /api/x/{}`. */
export const operations = Object.entries(doc.paths ?? {}).flatMap(([p, item]) =>
  METHODS.filter((m) => item[m]).map((m) => ({
    method: m.toUpperCase(),
    path: p,
    op: item[m],
    params: [...(item.parameters ?? []), ...(item[m].parameters ?? [])].map(deref),
    key: routeKey(m, p),
  })),
);

/** `POST /api/orders/{}`: method and path with every parameter name erased. */
export function routeKey(method, p) {
  return `${method.toUpperCase()} ${p.replace(/\{[^}]*\}/g, '{}').replace(/\/:[^/]+/g, '/{}')}`;
}

// ---------------------------------------------------------------------------------
// $ref and a small JSON Schema validator (the keywords this document uses; any other
// keyword fails the test rather than being ignored)

export function resolveRef(ref) {
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

export function deref(node) {
  let seen = 0;
  while (node && typeof node === 'object' && typeof node.$ref === 'string') {
    assert.ok(++seen < 20, 'a $ref loop');
    node = resolveRef(node.$ref);
  }
  return node;
}

export const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
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
export function validate(schema, value, at = '$', errs = []) {
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
