// Signs an HS256 JWT the way your auth service would (examples only: a real client gets
// its token from your login flow, never from the server's secret).
import { createHmac } from 'node:crypto';

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export function sign(claims, secret = process.env.JWT_SECRET ?? 'change-me-in-production-this-is-only-for-development') {
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

export const url = process.env.SWITCHBOARD_URL ?? 'http://localhost:3001';
