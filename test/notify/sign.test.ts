/** Our Standard Webhooks signer, checked by the reference implementation's verifier. */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { parseSecrets, sign, signedHeaders } from '../../src/notify/sign.js';

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;

describe('Standard Webhooks signing', () => {
  it('every signature verifies with the standardwebhooks package, and a changed byte does not', () => {
    for (let i = 0; i < 50; i++) {
      const s = secret();
      const body = JSON.stringify({ type: 'migration.started', version: 1, id: `evt_${i}`, data: { n: i, text: 'ünïcödé ✓' } });
      const ts = Math.floor(Date.now() / 1000) - i;
      const headers = signedHeaders(parseSecrets(s, 'secret'), `evt_${i}`, ts, body);
      expect(headers['content-type']).toBe('application/json');
      expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(new Webhook(s).verify(body, headers)).toEqual(JSON.parse(body));
      // The library's own signature is the same string.
      expect(new Webhook(s).sign(`evt_${i}`, new Date(ts * 1000), body)).toBe(headers['webhook-signature']);
      expect(() => new Webhook(s).verify(body.replace(`"n":${i}`, `"n":${i + 1}`), headers)).toThrow();
      expect(() => new Webhook(secret()).verify(body, headers)).toThrow();
    }
  });

  it('signs with every secret during a rotation; a receiver holding either verifies', () => {
    const a = secret();
    const b = secret();
    const body = '{"x":1}';
    const ts = Math.floor(Date.now() / 1000);
    const header = sign(parseSecrets(`${a} ${b}`, 'secret'), 'evt_1', ts, body);
    expect(header.split(' ')).toHaveLength(2);
    const headers = { 'webhook-id': 'evt_1', 'webhook-timestamp': String(ts), 'webhook-signature': header };
    expect(new Webhook(a).verify(body, headers)).toEqual({ x: 1 });
    expect(new Webhook(b).verify(body, headers)).toEqual({ x: 1 });
  });

  it.each([
    ['', /is empty/],
    ['abc', /must start with "whsec_"/],
    ['whsec_***', /not valid base64/],
    [`whsec_${randomBytes(8).toString('base64')}`, /decodes to 8 bytes/],
    [`whsec_${randomBytes(80).toString('base64')}`, /decodes to 80 bytes/],
  ])('refuses the secret %j naming the field and the fix', (raw, msg) => {
    expect(() => parseSecrets(raw, 'WABA_NOTIFY_SECRET')).toThrow(msg);
    expect(() => parseSecrets(raw, 'WABA_NOTIFY_SECRET')).toThrow(/WABA_NOTIFY_SECRET/);
  });
});
