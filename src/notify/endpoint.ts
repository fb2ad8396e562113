/**
 * Notification endpoints as the store knows them: by a hash of the URL (which may carry a
 * secret in its userinfo, query or path), shown to people without those parts. Tiny and
 * dependency-free so read-only commands (`status`, `list`) can use it without loading undici.
 */
import { createHash } from 'node:crypto';
import type { DisabledEndpoint } from '../store/document.js';

/** The identity of a notify URL in the store: sha256 (hex) of the whole URL, never the URL. */
export function endpointKey(url: string): string {
  let norm = url;
  try {
    norm = new URL(url).toString();
  } catch {
    // hashed as given
  }
  return createHash('sha256').update(norm).digest('hex');
}

/**
 * A notify URL as people may see it: no userinfo, no query, and path segments long enough to be
 * a token (Slack-style `/services/T…/B…/<secret>`) masked: `https://hooks.example.com/waba/***`.
 */
export function displayEndpoint(url: string): string {
  try {
    const u = new URL(url);
    const path = u.pathname
      .split('/')
      .map((seg) => (seg.length > 12 ? '***' : seg))
      .join('/');
    return `${u.protocol}//${u.host}${path}${u.search ? '?***' : ''}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** Which disabled endpoint holds `url`'s events back: the one of that URL; without a URL (a
 *  command run without --notify-url), the latest one recorded (the one most likely in use). */
export function disabledFor(list: DisabledEndpoint[], url?: string | null): DisabledEndpoint | null {
  if (url) {
    const key = endpointKey(url);
    return list.find((d) => d.key === key) ?? null;
  }
  return list.at(-1) ?? null;
}

/** "endpoint disabled (410 at …)": how a held-back event is shown. */
export function disabledLabel(d: DisabledEndpoint): string {
  return `endpoint disabled (410 at ${d.disabledAt})`;
}

