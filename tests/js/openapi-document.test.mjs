// docs/openapi.yaml is a well-formed OpenAPI 3.1 document (issue #15): operationIds,
// responses, $refs, path parameters, bearer security on /api, examples that conform to
// their schemas.
//
// OPENAPI_DOC=<file> checks another document (to see this test fail on a broken one).
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe } from 'node:test';

import { test } from './harness.mjs';
import { DOC_PATH, deref, doc, isObject, operations, resolveRef, root, validate } from './openapi.mjs';

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
