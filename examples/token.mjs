// Signs an HS256 JWT the way your auth service would (examples only: a real client gets
// its token from your login flow, never from the server's secret).
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

// JWT_SECRET from the environment, else from the repository's .env (scripts/run writes a
// random one there). There is no default: a published secret signs anyone's tokens.
function secretFromEnv() {
  if (process.env.JWT_SECRET) return process.env.JWT_SECRET;
  try {
    const line = readFileSync(new URL('../.env', import.meta.url), 'utf8')
      .split('\n').find((l) => l.startsWith('JWT_SECRET='));
    if (line) return line.slice('JWT_SECRET='.length).trim();
  } catch { /* no .env */ }
  throw new Error('JWT_SECRET is not set (environment or ../.env)');
}

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export function sign(claims, secret = secretFromEnv()) {
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

export const url = process.env.SWITCHBOARD_URL ?? 'http://localhost:3001';
