/**
 * One bearer token guards every page and API call. API clients send `Authorization: Bearer`;
 * a browser opens `/?token=…` once, gets an HttpOnly, SameSite=Strict session cookie and is
 * redirected to the same URL without the token (so it leaves the address bar and history).
 * The cookie holds an HMAC of the token, not the token itself.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export const COOKIE = 'waba_dashboard';

export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Constant-time comparison of two secrets of any length (both are hashed first). */
export function sameSecret(expected: string, given: string | undefined | null): boolean {
  if (!given) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('waba-migrate dashboard session v1').digest('base64url');
}

export function bearer(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1]! : null;
}

/** Loopback hosts: the only ones the dashboard binds to without an explicit token. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1';
  return false;
}
