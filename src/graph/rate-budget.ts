/**
 * Meta's rate limits as a resource: one budget per WABA (Meta limits calls per app per WABA),
 * shared by every Graph client of a process (inject one `RateBudget` into every engine, batch
 * runner and worker of the process).
 *
 * What it learns, from every answer:
 * - `X-Business-Use-Case-Usage` `{"<waba id>":[{call_count, estimated_time_to_regain_access, …}]}`:
 *   `call_count` is the share of the limit already used (%), the regain time is in minutes.
 * - `X-App-Usage` `{"call_count": %, …}`: the app-wide share, kept for reporting.
 * - 80007 / 4 / 130429: the WABA is paused until the time Meta gave (Retry-After or the regain
 *   time; a minute when Meta gave none). Other WABAs keep going.
 *
 * What it does before a call on a WABA:
 * - waits while the WABA is paused (or throws {@link ThrottledError} when the pause outlasts what
 *   the caller will sit through: the migration then rests in `waiting_retry` until the pause ends,
 *   visible in `status`);
 * - as usage grows, keeps the calls in flight below the calls it estimates are left, so at most one
 *   call (the probe that learns the new window) is refused per window; after a pause, one call at a
 *   time until an answer shows the budget is back.
 *
 * Written by hand: no library models "limits reported by the server as percentages per object".
 */
import { EventEmitter } from 'node:events';
import { GraphApiError } from './errors.js';

/** Meta's throttling codes: WABA rate limit, app rate limit, Cloud API throughput. */
export const THROTTLE_CODES: ReadonlySet<number> = new Set([80007, 4, 130429]);

export interface RateBudgetOptions {
  /** Usage (%) past which calls are metered against the estimated calls left. Default 80. */
  slowAbovePct?: number;
  /** Pause after a throttling error that carried no time. Default 60 s. */
  defaultPauseMs?: number;
  now?: () => number;
}

export interface WabaBudgetView {
  key: string;
  /** Last reported share of the limit used (%), or null before any answer. */
  usagePct: number | null;
  /** Paused (after 80007/4/130429) until this time (ms), or null. */
  pausedUntil: number | null;
  /** The throttling code that caused the pause. */
  pauseCode: number | null;
  inFlight: number;
  /** Throttling errors seen on this WABA. */
  throttled: number;
}

export interface ThrottleEvent {
  key: string;
  until: number;
  code: number | null;
  /** "throttled by Meta's rate limit on WABA … until 10:42:05 UTC". */
  message: string;
  /** Learnt from another process (through the store, {@link RateBudget.learnPause}), not from
   *  one of this process's own answers. */
  shared?: boolean;
}

interface KeyState {
  usagePct: number | null;
  /** Smallest increase of usage seen between two answers: an upper bound of one call's cost (%),
   *  so the calls left are never overestimated. */
  pctPerCall: number;
  pausedUntil: number | null;
  pauseCode: number | null;
  /** After a pause: one call at a time until an answer shows room. */
  probing: boolean;
  inFlight: number;
  throttled: number;
  waiters: (() => void)[];
}

/** The longest pause learnt from another process (Meta's rate windows are an hour at most). */
export const MAX_LEARNT_PAUSE_MS = 60 * 60_000;

export const clockUtc = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

export function throttleMessage(key: string, until: number): string {
  return `throttled by Meta's rate limit on WABA ${key} until ${clockUtc(until)}`;
}

/** Raised before a call (nothing was sent) when the WABA is paused for longer than the caller waits. */
export class ThrottledError extends GraphApiError {
  readonly throttleKey: string;
  readonly until: number;
  constructor(key: string, until: number, method: string, path: string) {
    super({
      kind: 'graph',
      message: `${throttleMessage(key, until)}; nothing was sent`,
      method,
      path,
      httpStatus: null,
      code: null,
      subcode: null,
      type: 'RateBudget',
      fbtraceId: null,
      isTransientFlag: true,
      userTitle: null,
      userMessage: null,
      retryAfterMs: Math.max(0, until - Date.now()),
    });
    this.throttleKey = key;
    this.until = until;
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export class RateBudget extends EventEmitter<{ throttle: [ThrottleEvent] }> {
  readonly #keys = new Map<string, KeyState>();
  readonly #slowAbove: number;
  readonly #defaultPause: number;
  readonly #now: () => number;
  /** Last `X-App-Usage` call_count (%). */
  appUsagePct: number | null = null;

  constructor(opts: RateBudgetOptions = {}) {
    super();
    this.#slowAbove = opts.slowAbovePct ?? 80;
    this.#defaultPause = opts.defaultPauseMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
  }

  #state(key: string): KeyState {
    let s = this.#keys.get(key);
    if (!s) {
      s = { usagePct: null, pctPerCall: 100, pausedUntil: null, pauseCode: null, probing: false, inFlight: 0, throttled: 0, waiters: [] };
      this.#keys.set(key, s);
    }
    return s;
  }

  /** The time until which this WABA is paused, or null. */
  pausedUntil(key: string): number | null {
    const s = this.#keys.get(key);
    if (!s?.pausedUntil) return null;
    return s.pausedUntil > this.#now() ? s.pausedUntil : null;
  }

  /** How many calls may be in flight on this WABA now. */
  #allowed(s: KeyState): number {
    if (s.probing) return 1;
    if (s.usagePct === null) return Number.POSITIVE_INFINITY;
    // Never more in flight than the calls estimated to be left (at least one: the probe that finds
    // the next window). Calls in flight may not be counted in the last usage seen yet, so this
    // keeps the total under the limit. Past `slowAbovePct`, at most half of what is left, so a
    // late answer cannot push it over.
    const left = Math.floor((100 - s.usagePct) / s.pctPerCall);
    return Math.max(1, s.usagePct >= this.#slowAbove ? Math.ceil(left / 2) : left);
  }

  /**
   * Waits until a call on `key` may be sent and reserves it; returns the release. Throws
   * ThrottledError when the WABA is paused for longer than `maxWaitMs`.
   */
  async acquire(
    key: string,
    opts: { maxWaitMs?: number; signal?: AbortSignal; method?: string; path?: string; onWait?: (w: { key: string; until: number; code: number | null }) => void } = {},
  ): Promise<() => void> {
    const s = this.#state(key);
    for (;;) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      const now = this.#now();
      if (s.pausedUntil !== null && s.pausedUntil > now) {
        const wait = s.pausedUntil - now;
        if (wait > (opts.maxWaitMs ?? Number.POSITIVE_INFINITY)) throw new ThrottledError(key, s.pausedUntil, opts.method ?? 'GET', opts.path ?? `/${key}`);
        // A pause worth telling a person about (a countdown in the CLI); not the last few ms of one.
        if (wait >= 1_000) opts.onWait?.({ key, until: s.pausedUntil, code: s.pauseCode });
        await sleep(wait, opts.signal);
        continue;
      }
      if (s.pausedUntil !== null) {
        // The pause is over: Meta's estimate may be early, so find out with one call.
        s.pausedUntil = null;
        s.probing = true;
      }
      if (s.inFlight < this.#allowed(s)) break;
      await new Promise<void>((resolve) => s.waiters.push(resolve));
    }
    s.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      s.inFlight--;
      this.#wakeAll(s);
    };
  }

  #wakeAll(s: KeyState): void {
    const w = s.waiters.splice(0);
    for (const f of w) f();
  }

  /** Learns from an answer's headers (any status). */
  observe(headers: Record<string, string | string[] | undefined>): void {
    const buc = first(headers['x-business-use-case-usage']);
    if (buc) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(buc);
      } catch {
        parsed = null;
      }
      if (parsed && typeof parsed === 'object') {
        for (const [key, entries] of Object.entries(parsed as Record<string, unknown>)) {
          if (!Array.isArray(entries)) continue;
          let pct: number | null = null;
          let regainMin = 0;
          for (const e of entries as Record<string, unknown>[]) {
            if (typeof e?.call_count === 'number') pct = Math.max(pct ?? 0, e.call_count);
            if (typeof e?.estimated_time_to_regain_access === 'number') regainMin = Math.max(regainMin, e.estimated_time_to_regain_access);
          }
          const s = this.#state(key);
          if (pct !== null) this.#usage(s, pct);
          if (regainMin > 0) this.#pause(key, s, this.#now() + regainMin * 60_000, null);
        }
      }
    }
    const app = first(headers['x-app-usage']);
    if (app) {
      try {
        const a = JSON.parse(app) as { call_count?: unknown };
        if (typeof a.call_count === 'number') this.appUsagePct = a.call_count;
      } catch {
        // unreadable header: nothing learnt
      }
    }
  }

  #usage(s: KeyState, pct: number): void {
    const prev = s.usagePct;
    if (prev !== null && pct > prev) s.pctPerCall = Math.min(s.pctPerCall, pct - prev);
    if (prev === null && pct > 0) s.pctPerCall = Math.min(s.pctPerCall, pct);
    // Meta reports whole percents: a cost below 1 % shows as steps of 0 and 1.
    s.pctPerCall = Math.max(s.pctPerCall, 0.01);
    // Answers arrive out of order: a slightly lower figure is an older one, not a new window. Only
    // a large drop (a new window, or old calls aging out of Meta's rolling hour) lowers the usage.
    if (prev === null || s.probing || pct >= prev || pct <= prev / 2) s.usagePct = pct;
    // An answer with room left ends a probe.
    if (s.probing && pct < 100) s.probing = false;
    this.#wakeAll(s);
  }

  /** A throttling error on `key`: pause it for `retryAfterMs` (Meta's time; null when Meta gave
   *  none: the default pause). Either way the next call is a lone probe. */
  throttled(key: string, code: number | null, retryAfterMs: number | null): void {
    const s = this.#state(key);
    s.throttled++;
    s.usagePct = 100;
    const wait = retryAfterMs === null ? this.#defaultPause : Math.max(0, retryAfterMs);
    if (wait > 0) this.#pause(key, s, this.#now() + wait, code);
    else {
      s.pauseCode = code;
      s.probing = true;
    }
  }

  /**
   * Another process was throttled on `key` until `until` (shared through the store): pause it
   * here too, so this process does not draw an 80007 of its own to learn the same thing. Not
   * counted as a throttling error of this process. A pause already over, or already known, is
   * nothing new.
   */
  learnPause(key: string, until: number, code: number | null): void {
    const now = this.#now();
    if (until <= now) return;
    // Another host's clock, or a damaged record, must not hold a WABA for days: Meta's windows
    // are an hour at most, so no learnt pause outlasts one.
    this.#pause(key, this.#state(key), Math.min(until, now + MAX_LEARNT_PAUSE_MS), code, true);
  }

  #pause(key: string, s: KeyState, until: number, code: number | null, shared = false): void {
    const prev = s.pausedUntil;
    if (shared && prev !== null && prev >= until) return;
    if (code !== null) s.pauseCode = code;
    s.probing = true;
    if (prev !== null && prev >= until) return;
    s.pausedUntil = until;
    // The same pause learnt twice (the usage header, then the error it came with): say it once.
    if (prev !== null && until - prev < 1_000) return;
    this.emit('throttle', { key, until, code: s.pauseCode, message: throttleMessage(key, until), ...(shared ? { shared: true } : {}) });
  }

  view(): WabaBudgetView[] {
    return [...this.#keys.entries()].map(([key, s]) => ({ key, usagePct: s.usagePct, pausedUntil: this.pausedUntil(key), pauseCode: s.pauseCode, inFlight: s.inFlight, throttled: s.throttled }));
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
