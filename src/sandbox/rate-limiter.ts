/**
 * The sandbox's model of Meta's per-app, per-WABA rate limit: at most `calls` calls per fixed
 * window of `windowMs` on each WABA (a phone number's calls count against its WABA; a business's
 * against the business). Every answer reports the usage in `X-Business-Use-Case-Usage` (and the
 * app's in `X-App-Usage`); a call past the limit is refused with 80007 and
 * `estimated_time_to_regain_access` (minutes, fractional here because windows are scaled down to
 * seconds; Meta reports whole minutes). Refused calls do not count.
 */

export interface RateLimitOptions {
  /** Calls allowed per window per WABA. */
  calls: number;
  /** Window length. Meta's is an hour; tests use a second or two. */
  windowMs: number;
}

/** Scaled so a test sees the limit bind within seconds. */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { calls: 25, windowMs: 1_000 };

export interface RateDecision {
  allowed: boolean;
  headers: Record<string, string>;
  /** When refused: ms until the window ends. */
  regainMs: number;
}

export class SandboxRateLimiter {
  readonly options: RateLimitOptions;
  readonly #epoch: number;
  /** key → [window index, calls counted in it]. */
  readonly #used = new Map<string, [number, number]>();
  #appWindow = -1;
  #appCalls = 0;
  /** key → window index → refused calls (a client that respects the limit has at most 1). */
  readonly refused = new Map<string, Map<number, number>>();
  /** key → window index → calls allowed. */
  readonly allowedCalls = new Map<string, Map<number, number>>();

  constructor(options: Partial<RateLimitOptions> = {}) {
    this.options = { ...DEFAULT_RATE_LIMIT, ...options };
    if (!(this.options.calls >= 1) || !(this.options.windowMs >= 1)) throw new Error('rate limit: calls and windowMs must be >= 1');
    this.#epoch = Date.now();
  }

  #window(now: number): number {
    return Math.floor((now - this.#epoch) / this.options.windowMs);
  }

  take(key: string, now = Date.now()): RateDecision {
    const w = this.#window(now);
    const cur = this.#used.get(key);
    const used = cur && cur[0] === w ? cur[1] : 0;
    const regainMs = this.#epoch + (w + 1) * this.options.windowMs - now;
    if (w !== this.#appWindow) {
      this.#appWindow = w;
      this.#appCalls = 0;
    }
    const allowed = used < this.options.calls;
    const count = allowed ? used + 1 : used;
    if (allowed) {
      this.#used.set(key, [w, count]);
      this.#appCalls++;
      bump(this.allowedCalls, key, w);
    } else bump(this.refused, key, w);
    const pct = Math.min(100, Math.round((count / this.options.calls) * 10_000) / 100);
    const entry = {
      type: 'whatsapp_business_management',
      call_count: allowed ? pct : 100,
      total_cputime: Math.min(100, Math.round(pct / 4)),
      total_time: Math.min(100, Math.round(pct / 3)),
      estimated_time_to_regain_access: allowed ? 0 : Math.ceil((regainMs / 60_000) * 100_000) / 100_000,
    };
    const appPct = Math.min(100, Math.round((this.#appCalls / (this.options.calls * 100)) * 100));
    return {
      allowed,
      regainMs,
      headers: {
        'x-business-use-case-usage': JSON.stringify({ [key]: [entry] }),
        'x-app-usage': JSON.stringify({ call_count: appPct, total_cputime: Math.round(appPct / 4), total_time: Math.round(appPct / 3) }),
      },
    };
  }

  /** The most calls refused on any one WABA in any one window. */
  maxRefusedPerWindow(): number {
    let max = 0;
    for (const m of this.refused.values()) for (const n of m.values()) max = Math.max(max, n);
    return max;
  }

  /** The most calls allowed on any one WABA in any one window (never above the limit). */
  maxAllowedPerWindow(): number {
    let max = 0;
    for (const m of this.allowedCalls.values()) for (const n of m.values()) max = Math.max(max, n);
    return max;
  }

  totalRefused(): number {
    let t = 0;
    for (const m of this.refused.values()) for (const n of m.values()) t += n;
    return t;
  }
}

function bump(m: Map<string, Map<number, number>>, key: string, w: number): void {
  let inner = m.get(key);
  if (!inner) m.set(key, (inner = new Map()));
  inner.set(w, (inner.get(w) ?? 0) + 1);
}
