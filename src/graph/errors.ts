/**
 * One typed error for everything that can go wrong talking to the Graph API.
 *
 * Meta answers errors as `{"error":{message,type,code,error_subcode,fbtrace_id,is_transient,...}}`
 * (schema `GraphAPIError` in Meta's OpenAPI description). Network failures, timeouts and 200s
 * whose body is not what was asked for are folded into the same class so callers branch on one
 * shape: `kind` says where it came from, `transient` says whether retrying can help.
 */

/** Codes Meta documents as temporary / throttling. Retrying later can succeed. */
export const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  1, // API unknown
  2, // API service
  4, // API too many calls (app level)
  17, // API user too many calls
  32, // page-level rate limit
  613, // calls within one hour exceeded
  80007, // WhatsApp Business Account rate limit
  130429, // Cloud API throughput reached
  133004, // server temporarily unavailable
]);

export type GraphErrorKind =
  /** Meta answered with an error body (or an HTTP error status). */
  | 'graph'
  /** The connection failed, was reset, or no answer came before the timeout. */
  | 'network'
  /** The server's TLS certificate was refused: permanent, and nothing was sent. */
  | 'tls'
  /** A 2xx whose body is not JSON or not the expected shape, or `success: false`. */
  | 'bad_response';

export interface GraphErrorFields {
  kind: GraphErrorKind;
  message: string;
  method: string;
  path: string;
  httpStatus: number | null;
  code: number | null;
  subcode: number | null;
  type: string | null;
  fbtraceId: string | null;
  isTransientFlag: boolean | null;
  userTitle: string | null;
  userMessage: string | null;
  /** Milliseconds Meta asked us to wait (Retry-After or X-Business-Use-Case-Usage). */
  retryAfterMs: number | null;
}

export class GraphApiError extends Error implements GraphErrorFields {
  override readonly name = 'GraphApiError';
  readonly kind: GraphErrorKind;
  readonly method: string;
  readonly path: string;
  readonly httpStatus: number | null;
  readonly code: number | null;
  readonly subcode: number | null;
  readonly type: string | null;
  readonly fbtraceId: string | null;
  readonly isTransientFlag: boolean | null;
  readonly userTitle: string | null;
  readonly userMessage: string | null;
  readonly retryAfterMs: number | null;
  /** Whether retrying the same request later can succeed. */
  readonly transient: boolean;

  constructor(fields: GraphErrorFields, options?: { cause?: unknown }) {
    super(fields.message, options);
    this.kind = fields.kind;
    this.method = fields.method;
    this.path = fields.path;
    this.httpStatus = fields.httpStatus;
    this.code = fields.code;
    this.subcode = fields.subcode;
    this.type = fields.type;
    this.fbtraceId = fields.fbtraceId;
    this.isTransientFlag = fields.isTransientFlag;
    this.userTitle = fields.userTitle;
    this.userMessage = fields.userMessage;
    this.retryAfterMs = fields.retryAfterMs;
    this.transient = classifyTransient(fields);
  }

  toJSON(): GraphErrorFields & { transient: boolean; name: string } {
    return {
      name: this.name,
      kind: this.kind,
      message: this.message,
      method: this.method,
      path: this.path,
      httpStatus: this.httpStatus,
      code: this.code,
      subcode: this.subcode,
      type: this.type,
      fbtraceId: this.fbtraceId,
      isTransientFlag: this.isTransientFlag,
      userTitle: this.userTitle,
      userMessage: this.userMessage,
      retryAfterMs: this.retryAfterMs,
      transient: this.transient,
    };
  }
}

/**
 * Transient: network errors, timeouts, HTTP 5xx, Meta's throttling codes, or `is_transient: true`.
 * Everything else Meta answers (100, 190, 10, 200–299, 133005, 133016, …) is permanent: retrying
 * the same request cannot fix a bad parameter, a dead token or a missing permission.
 * A malformed 2xx is treated as transient: the request may well have been applied, and the
 * engine reconciles with Meta's state before any retry of a POST, so retrying is safe.
 */
export function classifyTransient(f: Pick<GraphErrorFields, 'kind' | 'httpStatus' | 'code' | 'isTransientFlag'>): boolean {
  if (f.kind === 'network' || f.kind === 'bad_response') return true;
  if (f.isTransientFlag === true) return true;
  if (f.code !== null && TRANSIENT_CODES.has(f.code)) return true;
  if (f.code === null && f.httpStatus !== null && (f.httpStatus >= 500 || f.httpStatus === 429)) return true;
  return false;
}

export function isGraphApiError(e: unknown): e is GraphApiError {
  return e instanceof GraphApiError;
}

/**
 * `Retry-After` is seconds or an HTTP date; `X-Business-Use-Case-Usage` is
 * `{"<id>":[{"type":...,"estimated_time_to_regain_access":<minutes>}]}`. Returns the longest wait.
 */
export function parseRetryAfter(headers: Record<string, string | string[] | undefined>, now = Date.now()): number | null {
  let best: number | null = null;
  const take = (ms: number) => {
    if (Number.isFinite(ms) && ms > 0) best = best === null ? ms : Math.max(best, ms);
  };
  const ra = first(headers['retry-after']);
  if (ra) {
    const secs = Number(ra);
    if (Number.isFinite(secs)) take(secs * 1000);
    else {
      const date = Date.parse(ra);
      if (!Number.isNaN(date)) take(date - now);
    }
  }
  const usage = first(headers['x-business-use-case-usage']);
  if (usage) {
    try {
      const parsed: unknown = JSON.parse(usage);
      if (parsed && typeof parsed === 'object') {
        for (const entries of Object.values(parsed as Record<string, unknown>)) {
          if (!Array.isArray(entries)) continue;
          for (const e of entries) {
            const mins = (e as { estimated_time_to_regain_access?: unknown })?.estimated_time_to_regain_access;
            if (typeof mins === 'number') take(mins * 60_000);
          }
        }
      }
    } catch {
      // A header we cannot read gives no hint; backoff still applies.
    }
  }
  return best;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
