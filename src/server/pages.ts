/** Server-rendered pages. Every value goes through `html` (escaped); the only script is /static/live.js. */
import { migrationMachine, STATE_NAMES, type MigrationContext } from '../../machines/migration.js';
import type { MigrationView } from '../runner/view.js';
import type { NotificationPanel } from '../notify/events.js';
import type { HistoryEntry, MigrationDocument } from '../store/document.js';
import type { LockOwner } from '../store/store.js';
import { machineSvg } from './diagram.js';
import { html, type Html } from './html.js';
import type { MigrationSummary, TransitionEvent } from './live.js';
import { SORT_FIELDS, type ListQuery, type Page } from './query.js';

export interface BatchProgress {
  id: string;
  createdAt: string;
  createdBy: string;
  total: number;
  completed: number;
  failed: number;
  attention: number;
  cancelled: boolean;
}

export interface Overview {
  counts: Record<string, number>;
  total: number;
  attention: { total: number; items: MigrationSummary[] };
  batches: BatchProgress[];
  problems: { id: string; message: string }[];
}

const ATTENTION_LABEL: Record<string, string> = {
  code: 'verification code',
  pin: 'register PIN',
  override: 'register-limit override',
  blocked: 'blocked check',
  failed: 'failure',
};

function layout(title: string, page: string, main: Html, id?: string): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · waba-migrate</title><link rel="stylesheet" href="/static/app.css"><script src="/static/live.js" defer></script></head>
<body data-page="${page}"${id ? html` data-id="${id}"` : ''}>
<header><a href="/">waba-migrate</a><nav><a href="/">Overview</a><a href="/migrations">Migrations</a></nav><span id="live" class="live off">connecting…</span></header>
<main>${main}</main></body></html>`.text;
}

const link = (id: string) => html`<a href="/migrations/${encodeURIComponent(id)}">${id}</a>`;
const time = (iso: string) => iso.replace('T', ' ').slice(0, 19);

export function overviewPage(o: Overview, recent: TransitionEvent[]): string {
  const counts = html`<ul class="counts">
    <li class="state-total"><a href="/migrations"><span class="n" data-count="total">${o.total}</span>all</a></li>
    ${STATE_NAMES.map((s) => html`<li class="state-${s}"><a href="/migrations?state=${s}"><span class="n" data-count="${s}">${o.counts[s] ?? 0}</span>${s}</a></li>`)}
  </ul>`;
  const attention = html`<h2>Needs a person (<span data-attention-total>${o.attention.total}</span>)</h2>
  <table id="attention"><thead><tr><th>id</th><th>phone</th><th>state</th><th>waiting for</th><th>next action</th></tr></thead><tbody>
  ${o.attention.items.map(
    (m) => html`<tr data-id="${m.id}" data-state="${m.state}"><td>${link(m.id)}</td><td>${m.phone}</td><td class="state" data-field="state">${m.state}</td><td class="why">${ATTENTION_LABEL[m.attention ?? ''] ?? m.attention}</td><td class="next" data-field="nextAction">${m.nextAction}</td></tr>`,
  )}
  </tbody></table>
  ${o.attention.total > o.attention.items.length ? html`<p><a href="/migrations?attention=true">all ${o.attention.total} that need a person</a></p>` : ''}`;
  const batches = o.batches.length
    ? html`<h2>Batches</h2><table id="batches"><thead><tr><th>batch</th><th>created</th><th>progress</th><th>completed</th><th>need a person</th><th>failed</th></tr></thead><tbody>
      ${o.batches.map(
        (b) =>
          html`<tr><td><a href="/migrations?batch=${encodeURIComponent(b.id)}">${b.id}</a>${b.cancelled ? html` <span class="muted">(cancelled)</span>` : ''}</td><td>${time(b.createdAt)} by ${b.createdBy}</td><td><progress data-batch="${b.id}" value="${b.completed}" max="${Math.max(b.total, 1)}"></progress></td><td data-batch-done="${b.id}">${b.completed} / ${b.total}</td><td>${b.attention}</td><td>${b.failed}</td></tr>`,
      )}</tbody></table>`
    : '';
  const problems = o.problems.length
    ? html`<h2>Unreadable documents (${o.problems.length})</h2><ul>${o.problems.map((p) => html`<li><code>${p.id}</code>: ${p.message}</li>`)}</ul>`
    : '';
  const activity = html`<h2>Live activity</h2>${recent.length ? '' : html`<p id="activity-empty" class="muted">No transitions since this server started; they appear here as they are written.</p>`}
  <ul id="activity">${recent.map((t) => html`<li><time>${t.at.slice(11, 19)}</time>${link(t.id)}<span class="move"> ${t.from ?? '—'} → ${t.to}</span></li>`)}</ul>`;
  return layout('Overview', 'overview', html`<h1>Migrations</h1>${counts}${attention}${batches}${activity}${problems}`);
}

function pageHref(q: ListQuery, offset: number): string {
  const p = new URLSearchParams();
  if (q.states.length) p.set('state', q.states.join(','));
  if (q.phone) p.set('phone', q.phone);
  if (q.batch) p.set('batch', q.batch);
  if (q.updatedSince) p.set('updatedSince', q.updatedSince);
  if (q.attention) p.set('attention', 'true');
  p.set('sort', q.sort);
  p.set('order', q.order);
  p.set('limit', String(q.limit));
  p.set('offset', String(offset));
  return `/migrations?${p}`;
}

export function listPage(q: ListQuery, page: Page, error?: string): string {
  const opt = (value: string, label: string, selected: boolean) => html`<option value="${value}"${selected ? ' selected' : ''}>${label}</option>`;
  const form = html`<form class="filters" method="get" action="/migrations">
    <label>state<select name="state">${opt('', 'any', !q.states.length)}${STATE_NAMES.map((s) => opt(s, s, q.states.length === 1 && q.states[0] === s))}</select></label>
    <label>phone<input name="phone" inputmode="tel" value="${q.phone ?? ''}" placeholder="+1631…"></label>
    <label>batch<input name="batch" value="${q.batch ?? ''}"></label>
    <label>updated since<input name="updatedSince" value="${q.updatedSince ?? ''}" placeholder="2026-11-23T08:00Z"></label>
    <label>needs a person<select name="attention">${opt('', 'any', !q.attention)}${opt('true', 'yes', q.attention)}</select></label>
    <label>sort<select name="sort">${SORT_FIELDS.map((f) => opt(f, f, q.sort === f))}</select></label>
    <label>order<select name="order">${opt('desc', 'descending', q.order === 'desc')}${opt('asc', 'ascending', q.order === 'asc')}</select></label>
    <label>per page<input name="limit" type="number" min="1" max="500" value="${q.limit}"></label>
    <button type="submit">Filter</button> <a href="/migrations">reset</a>
  </form>`;
  const from = page.total ? page.offset + 1 : 0;
  const to = Math.min(page.offset + page.limit, page.total);
  const pager = html`<div class="pager"><span id="range">${from}–${to} of ${page.total}</span>
    ${page.offset > 0 ? html`<a rel="prev" href="${pageHref(q, Math.max(0, page.offset - page.limit))}">previous</a>` : ''}
    ${to < page.total ? html`<a rel="next" href="${pageHref(q, page.offset + page.limit)}">next</a>` : ''}</div>`;
  const table = html`<table id="migrations"><thead><tr><th>id</th><th>state</th><th>phone</th><th>phone_number_id</th><th>batch</th><th>updated (UTC)</th><th>next action</th></tr></thead><tbody>
    ${page.items.map(
      (m) =>
        html`<tr data-id="${m.id}" data-state="${m.state}"><td>${link(m.id)}</td><td data-field="state">${m.state}</td><td>${m.phone}</td><td data-field="phoneNumberId">${m.phoneNumberId ?? '—'}</td><td>${m.batch ?? ''}</td><td data-field="updatedAt">${m.updatedAt}</td><td class="next" data-field="nextAction">${m.nextAction}</td></tr>`,
    )}</tbody></table>`;
  return layout('Migrations', 'list', html`<h1>Migrations</h1>${form}${error ? html`<p class="failure" role="alert">${error}</p>` : ''}${pager}${table}${pager}`);
}

function callsList(calls: HistoryEntry['calls']): Html {
  if (!calls.length) return html``;
  return html`<ul class="calls">${calls.map(
    (c) =>
      html`<li><span class="method">${c.method}</span><span class="path">${c.path}</span><span class="status">HTTP ${c.status ?? '—'}</span><span class="code">code ${c.code ?? '—'}</span><span class="trace">fbtrace_id ${c.fbtraceId ?? '—'}</span><span class="ms">${c.durationMs} ms</span>${c.error ? html`<span class="err">${c.error}</span>` : ''}</li>`,
  )}</ul>`;
}

function actionForms(id: string, state: string, allowPin: boolean): Html {
  if (state === 'completed' || state === 'cancelled') return html``;
  const base = `/migrations/${encodeURIComponent(id)}`;
  const operator = html`<label>your name<input name="operator" required minlength="2" maxlength="64" autocomplete="name"></label>`;
  return html`<h2>Actions</h2><div class="actions">
    ${state === 'awaiting_code' ? html`<form method="post" action="${base}/code" class="filters"><strong>Submit the code</strong>${operator}<label>code<input name="code" required inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code"></label>${allowPin ? html`<label>register PIN (optional)<input name="pin" type="password" inputmode="numeric" pattern="[0-9]{6}" autocomplete="off"></label>` : ''}<button type="submit">Submit</button></form>` : ''}
    <form method="post" action="${base}/retry" class="filters"><strong>Retry now</strong>${operator}<button type="submit">Retry</button></form>
    <form method="post" action="${base}/cancel" class="filters"><strong>Cancel</strong>${operator}<label>reason<input name="reason" required minlength="3" maxlength="500"></label><button type="submit">Cancel migration</button></form>
  </div>`;
}

/** Document fields this page does not know (written by later layers: notifications, the
 *  On-Premises carry-over report, …), shown as they are rather than hidden. */
const KNOWN_FIELDS = new Set(['schemaVersion', 'id', 'createdAt', 'updatedAt', 'state', 'input', 'snapshot', 'history', 'batch', 'outbox']);

const NOTIFY_STATE_LABEL: Record<string, string> = { delivered: 'delivered', pending: 'pending', dead: 'dead', 'endpoint-disabled': 'endpoint disabled' };

/**
 * The Notifications panel: every event of the outbox with its delivery state. Rendered empty and
 * hidden when the migration has no outbox, so live updates (assets.ts) can fill it in if one
 * appears; the script rebuilds the rows from `/api/migrations/:id/notifications` with the same
 * columns, as text.
 */
function notificationsPanel(p: NotificationPanel | null): Html {
  const d = p?.endpointDisabled ?? null;
  return html`<section id="notifications-panel" class="panel"${p ? '' : ' hidden'}>
  <h2>Notifications</h2>
  <p id="notifications-disabled" class="panel-alert" role="status"${d ? '' : ' hidden'}><strong data-field="endpointDisabledLabel">${d?.label ?? ''}</strong> at <code data-field="endpointDisabledEndpoint">${d?.endpoint ?? ''}</code>: the receiver answered 410 Gone to event <code data-field="endpointDisabledEvent">${d?.eventId ?? ''}</code>. Nothing is sent to it; events wait. Fix the receiver, then run <code>waba-migrate notify enable</code>.</p>
  <table id="notifications"><thead><tr><th>#</th><th>event</th><th>webhook-id</th><th>state</th><th>attempts</th><th>next attempt (UTC)</th><th>last error</th></tr></thead><tbody>
  ${(p?.events ?? []).map(
    (e) =>
      html`<tr data-event="${e.id}" data-notify-state="${e.state}"><td class="n">${e.seq}</td><td class="type">${e.type}</td><td class="wid"><code>${e.id}</code></td><td class="nstate">${NOTIFY_STATE_LABEL[e.state]}${e.deliveredAt ? html`<span class="muted"> ${time(e.deliveredAt)}</span>` : ''}</td><td class="attempts">${e.attempts}</td><td class="next">${e.nextAttemptAt ? time(e.nextAttemptAt) : '—'}</td><td class="err">${e.lastError ?? '—'}</td></tr>`,
  )}
  </tbody></table></section>`;
}

/** The On-Premises carry-over report (issue 12): only on that path, once the snapshot is taken. */
function carryOverPanel(view: MigrationView): Html {
  const lines = view.carryOver ?? [];
  return html`<section id="carryover-panel" class="panel"${lines.length ? '' : ' hidden'}>
  <h2>On-Premises settings carried over</h2>
  <p class="muted">Each On-Premises application setting as stored (secrets redacted), its Cloud API equivalent, and whether waba-migrate applied it.</p>
  <table id="carry-over"><thead><tr><th>setting</th><th>On-Premises value</th><th>Cloud API equivalent</th><th>applied</th></tr></thead><tbody>
  ${lines.map(
    (l) =>
      html`<tr data-setting="${l.setting}" data-applied="${l.applied ? 'yes' : 'no'}"><td class="setting"><code>${l.setting}</code></td><td class="value"><code>${l.value}</code></td><td class="cloud">${l.cloud}</td><td class="applied">${l.applied ? 'yes' : 'no'}</td></tr>`,
  )}
  </tbody></table></section>`;
}

function otherRecords(doc: MigrationDocument): Html {
  const extra = Object.entries(doc as unknown as Record<string, unknown>).filter(([k, v]) => !KNOWN_FIELDS.has(k) && v !== null && v !== undefined);
  if (!extra.length) return html``;
  return html`<h2>Also recorded</h2>${extra.map(([k, v]) => html`<h3>${k}</h3><pre class="record">${JSON.stringify(v, null, 2)}</pre>`)}`;
}

/** The number's id before the migration: read from the source WABA by the checks (kept as is from On-Premises). */
function oldPhoneNumberId(view: MigrationView, doc: MigrationDocument): string {
  if (view.from === 'onprem') return view.phoneNumberId ? `${view.phoneNumberId} (kept: On-Premises keeps its id)` : 'not read yet (the prerequisite checks read it)';
  if (view.previousPhoneNumberId) return view.previousPhoneNumberId;
  const checked = doc.history.some((h) => h.from === 'checking');
  return checked ? 'not seen in the source WABA (e.g. the number was already in the destination)' : 'not read yet (the prerequisite checks read it)';
}

export function migrationPage(doc: MigrationDocument, view: MigrationView, holder: LockOwner | null, actions: { allowPin: boolean } | null = null, notifications: NotificationPanel | null = null): string {
  const ctx = doc.snapshot.context as Partial<MigrationContext>;
  const visited = new Set<string>(doc.history.flatMap((h) => [h.to, ...(h.from ? [h.from] : [])]));
  const row = (label: string, value: unknown, head?: string) => html`<dt>${label}</dt><dd${head ? html` data-head="${head}"` : ''}>${value ?? '—'}</dd>`;
  const head = html`<dl class="head">
    ${row('state', view.state + (view.substate ? ` (${view.substate})` : ''), 'state')}${row('phone', view.phone, 'phone')}
    ${row('verified name', doc.input.verifiedName ?? ctx.result?.verifiedName ?? null)}${row('business', view.businessId)}
    ${row('source WABA', view.sourceWabaId)}${row('destination WABA', view.destWabaId)}
    ${row('old phone_number_id (source WABA)', oldPhoneNumberId(view, doc))}
    ${row('new phone_number_id (destination)', view.phoneNumberId, 'phoneNumberId')}
    ${row('created', view.createdAt)}${row('updated', view.updatedAt, 'updatedAt')}
    ${row('register calls (72 h)', view.registerCallsLast72h)}${row('lock', holder ? `held by pid ${holder.pid} on ${holder.host}` : 'free')}
  </dl>`;
  const failure = view.failure
    ? html`<div class="failure" role="alert"><strong>Failed in ${view.failure.step}:</strong> ${view.failure.message}<br>code ${view.failure.code ?? '—'}${view.failure.subcode ? ` / ${view.failure.subcode}` : ''}, HTTP ${view.failure.httpStatus ?? '—'}, fbtrace_id ${view.failure.fbtraceId ?? '—'}<br><strong>Remedy:</strong> ${view.failure.remedy}</div>`
    : '';
  const retry = view.retry ? html`<p class="muted">Retrying ${view.retry.step} at ${view.retry.retryAt} after: ${view.retry.error}</p>` : '';
  const code = view.code
    ? html`<p class="muted">Code sent by ${view.code.method} at ${view.code.requestedAt}; resend allowed after ${view.code.resendAllowedAt}; stale after ${view.code.staleAt}; wrong attempts ${view.code.wrongAttempts}.</p>`
    : '';
  const warnings = view.warnings.length ? html`<ul>${view.warnings.map((w) => html`<li>${w}</li>`)}</ul>` : '';
  const checks = view.checks.length
    ? html`<table id="checks"><thead><tr><th>check</th><th>status</th><th>what was seen</th><th>fix</th></tr></thead><tbody>${view.checks.map(
        (c) =>
          html`<tr><td>${c.name}</td><td class="check-${c.status}">${c.status}</td><td>${c.detail}</td><td>${c.remedy}${c.confirmedBy ? html` <span class="muted">(confirmed by ${c.confirmedBy})</span>` : ''}</td></tr>`,
      )}</tbody></table>`
    : html`<p class="muted">Not checked yet.</p>`;
  const timeline = html`<table id="timeline"><thead><tr><th>#</th><th>at (UTC)</th><th>from → to</th><th>event</th><th>by</th><th>Graph calls</th></tr></thead><tbody>${doc.history.map(
    (h) => html`<tr data-n="${h.n}"><td class="n">${h.n}</td><td class="at">${h.at}</td><td class="move">${h.from ?? '—'} → ${h.to}</td><td class="event">${h.event.type}${h.note ? html`<br><span class="muted">${h.note}</span>` : ''}</td><td class="by">${h.by}</td><td>${callsList(h.calls)}</td></tr>`,
  )}</tbody></table>`;
  const main = html`<h1>Migration <code>${doc.id}</code> <span class="state-badge" data-head="state">${view.state}</span></h1>
    ${head}
    <div class="nextaction"><strong>Next:</strong> <span data-head="nextAction">${view.nextAction}</span></div>
    ${failure}${retry}${code}${warnings}
    <h2>State machine</h2><div class="diagram">${machineSvg(migrationMachine, view.state, visited)}</div>
    ${actions ? actionForms(doc.id, view.state, actions.allowPin) : ''}
    <h2>Checks</h2>${checks}
    ${carryOverPanel(view)}
    ${notificationsPanel(notifications)}
    <h2>Timeline</h2>${timeline}
    ${otherRecords(doc)}
    <p class="muted"><a href="/api/migrations/${encodeURIComponent(doc.id)}">JSON</a> · <a href="/api/migrations/${encodeURIComponent(doc.id)}/history">history JSON</a></p>`;
  return layout(`Migration ${doc.id}`, 'migration', main, doc.id);
}

export function errorPage(status: number, title: string, message: string): string {
  // Signed out, the page cannot load the (token-guarded) stylesheet and script: keep it bare.
  if (status === 401) return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title} · waba-migrate</title></head><body><h1>${title}</h1><p>${message}</p></body></html>`.text;
  return layout(title, 'error', html`<h1>${title}</h1><p>${message}</p><p class="muted">HTTP ${status}</p>`);
}
