/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): `webhook-signature` is
 * `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key being the base64 after
 * `whsec_`. Several secrets (rotation) give several space-separated signatures.
 *
 * Written with node:crypto rather than the `standardwebhooks` package: the package signs with a
 * pure-JS SHA-256 and adds two dependencies for three lines; `test/notify/sign.test.ts` checks
 * every signature made here with that package's verifier.
 */
import { createHmac } from 'node:crypto';
import { InputError } from '../runner/validate.js';

export interface SigningKey {
  /** The decoded key; never printed. */
  readonly key: Buffer;
}

/** Parses `whsec_<base64>` (one, or several separated by spaces for rotation). */
export function parseSecrets(raw: string, field: string): SigningKey[] {
  const parts = raw.trim().split(/\s+/).filter(Boolean);
  if (!parts.length) throw new InputError(field, 'is empty: give a Standard Webhooks secret "whsec_<base64>" (e.g. `echo whsec_$(openssl rand -base64 32)`)');
  return parts.map((p, i) => {
    const where = parts.length > 1 ? ` (secret ${i + 1})` : '';
    if (!p.startsWith('whsec_')) throw new InputError(field, `must start with "whsec_"${where}: give "whsec_<base64>" (e.g. \`echo whsec_$(openssl rand -base64 32)\`)`);
    const b64 = p.slice(6);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new InputError(field, `is not valid base64 after "whsec_"${where}`);
    const key = Buffer.from(b64, 'base64');
    // Standard Webhooks asks for 24 to 64 random bytes.
    if (key.length < 24 || key.length > 64) throw new InputError(field, `decodes to ${key.length} bytes${where}; use 24 to 64 random bytes (\`openssl rand -base64 32\`)`);
    return { key };
  });
}

/** The `webhook-signature` header value for one message. */
export function sign(keys: SigningKey[], id: string, timestampSec: number, body: string): string {
  return keys.map((k) => `v1,${createHmac('sha256', k.key).update(`${id}.${timestampSec}.${body}`).digest('base64')}`).join(' ');
}

/** The three Standard Webhooks headers plus the content type. */
export function signedHeaders(keys: SigningKey[], id: string, timestampSec: number, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestampSec),
    'webhook-signature': sign(keys, id, timestampSec, body),
  };
}
