/**
 * The dashboard's only static files, shipped inside the module so `dist/` is self-contained:
 * one stylesheet and one small script (no framework, no CDN, no inline code; the CSP is
 * `default-src 'self'`). The script subscribes to `/api/events` and patches the page with
 * `textContent` only, so data from the server is never parsed as HTML in the browser either.
 */
import { createHash } from 'node:crypto';

const CLIENT_JS = String.raw`'use strict';
(function () {
  var body = document.body;
  var page = body.getAttribute('data-page');
  var current = body.getAttribute('data-id');
  var live = document.getElementById('live');
  var seen = 0;

  function setLive(text, cls) {
    if (!live) return;
    live.textContent = text;
    live.className = 'live ' + cls;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function dash(v) { return v === null || v === undefined || v === '' ? '—' : String(v); }
  function each(selector, fn, scope) { Array.prototype.forEach.call((scope || document).querySelectorAll(selector), fn); }
  function rowsOf(id) {
    return Array.prototype.filter.call(document.querySelectorAll('tr[data-id]'), function (r) { return r.getAttribute('data-id') === id; });
  }
  function setField(scope, name, value) {
    each('[data-field="' + name + '"]', function (e) { e.textContent = dash(value); }, scope);
  }

  function applyCounts(counts) {
    var total = 0;
    Object.keys(counts).forEach(function (s) {
      total += counts[s];
      each('[data-count="' + s + '"]', function (e) { e.textContent = String(counts[s]); });
    });
    each('[data-count="total"]', function (e) { e.textContent = String(total); });
  }

  function applySummary(m) {
    rowsOf(m.id).forEach(function (r) {
      r.setAttribute('data-state', m.state);
      ['state', 'nextAction', 'updatedAt', 'phoneNumberId'].forEach(function (f) { setField(r, f, m[f]); });
      r.classList.remove('flash');
      void r.offsetWidth;
      r.classList.add('flash');
    });
  }

  function callsList(calls) {
    var ul = el('ul', 'calls');
    calls.forEach(function (c) {
      var li = el('li');
      li.appendChild(el('span', 'method', c.method));
      li.appendChild(el('span', 'path', c.path));
      li.appendChild(el('span', 'status', 'HTTP ' + dash(c.status)));
      li.appendChild(el('span', 'code', 'code ' + dash(c.code)));
      li.appendChild(el('span', 'trace', 'fbtrace_id ' + dash(c.fbtraceId)));
      li.appendChild(el('span', 'ms', c.durationMs + ' ms'));
      ul.appendChild(li);
    });
    return ul;
  }

  function applyMigrationPage(t) {
    var m = t.migration;
    each('[data-head]', function (e) { e.textContent = dash(m[e.getAttribute('data-head')]); });
    body.setAttribute('data-state', m.state);
    each('g.node', function (g) {
      var s = g.getAttribute('data-state-node');
      g.classList.toggle('current', s === m.state);
      if (s === t.to || s === t.from) g.classList.add('visited');
    });
    var tbody = document.querySelector('#timeline tbody');
    if (tbody && !tbody.querySelector('tr[data-n="' + t.n + '"]')) {
      var tr = el('tr');
      tr.setAttribute('data-n', String(t.n));
      tr.appendChild(el('td', 'n', t.n));
      tr.appendChild(el('td', 'at', t.at));
      tr.appendChild(el('td', 'move', dash(t.from) + ' → ' + t.to));
      tr.appendChild(el('td', 'event', t.event));
      tr.appendChild(el('td', 'by', t.by));
      var td = el('td');
      td.appendChild(callsList(t.calls));
      tr.appendChild(td);
      tr.classList.add('flash');
      tbody.appendChild(tr);
    }
  }

  // Panels of the migration page that change without a transition (a notification delivered):
  // re-read as JSON on every write the event stream reports, rebuilt with textContent only.
  var NOTIFY_LABEL = { delivered: 'delivered', pending: 'pending', dead: 'dead', 'endpoint-disabled': 'endpoint disabled' };
  function time(iso) { return iso ? String(iso).replace('T', ' ').slice(0, 19) : '—'; }
  var panelTimer = null;
  var panelUpdates = 0;
  function getJson(path) {
    return fetch(path, { credentials: 'same-origin' }).then(function (r) { return r.ok ? r.json() : null; });
  }
  function refreshPanels() {
    if (page !== 'migration' || !current || panelTimer) return;
    panelTimer = setTimeout(function () {
      panelTimer = null;
      var base = '/api/migrations/' + encodeURIComponent(current);
      Promise.all([getJson(base + '/notifications'), getJson(base)]).then(function (r) {
        if (r[0]) applyNotifications(r[0]);
        if (r[1]) applyCarryOver(r[1].carryOver);
        body.setAttribute('data-panels', String(++panelUpdates));
      }).catch(function () {});
    }, 100);
  }
  function applyNotifications(n) {
    var panel = document.getElementById('notifications-panel');
    if (!panel) return;
    panel.hidden = !n.events;
    var alert = document.getElementById('notifications-disabled');
    var d = n.endpointDisabled;
    if (alert) {
      alert.hidden = !d;
      if (d) {
        setField(alert, 'endpointDisabledLabel', d.label);
        setField(alert, 'endpointDisabledEndpoint', d.endpoint);
        setField(alert, 'endpointDisabledEvent', d.eventId);
      }
    }
    var tbody = panel.querySelector('tbody');
    if (!tbody || !n.events) return;
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    n.events.forEach(function (e) {
      var tr = el('tr');
      tr.setAttribute('data-event', e.id);
      tr.setAttribute('data-notify-state', e.state);
      tr.appendChild(el('td', 'n', e.seq));
      tr.appendChild(el('td', 'type', e.type));
      var wid = el('td', 'wid');
      wid.appendChild(el('code', null, e.id));
      tr.appendChild(wid);
      var st = el('td', 'nstate', NOTIFY_LABEL[e.state] || e.state);
      if (e.deliveredAt) st.appendChild(el('span', 'muted', ' ' + time(e.deliveredAt)));
      tr.appendChild(st);
      tr.appendChild(el('td', 'attempts', e.attempts));
      tr.appendChild(el('td', 'next', e.nextAttemptAt ? time(e.nextAttemptAt) : '—'));
      tr.appendChild(el('td', 'err', dash(e.lastError)));
      tbody.appendChild(tr);
    });
  }
  function applyCarryOver(lines) {
    var panel = document.getElementById('carryover-panel');
    if (!panel) return;
    panel.hidden = !(lines && lines.length);
    var tbody = panel.querySelector('tbody');
    if (!tbody || !lines) return;
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    lines.forEach(function (l) {
      var tr = el('tr');
      tr.setAttribute('data-setting', l.setting);
      tr.setAttribute('data-applied', l.applied ? 'yes' : 'no');
      var set = el('td', 'setting');
      set.appendChild(el('code', null, l.setting));
      tr.appendChild(set);
      var val = el('td', 'value');
      val.appendChild(el('code', null, l.value));
      tr.appendChild(val);
      tr.appendChild(el('td', 'cloud', l.cloud));
      tr.appendChild(el('td', 'applied', l.applied ? 'yes' : 'no'));
      tbody.appendChild(tr);
    });
  }

  function applyActivity(t) {
    var list = document.getElementById('activity');
    if (!list) return;
    var li = el('li', 'flash');
    li.appendChild(el('time', null, t.at.slice(11, 19)));
    var a = el('a', null, t.id);
    a.setAttribute('href', '/migrations/' + encodeURIComponent(t.id));
    li.appendChild(a);
    li.appendChild(el('span', 'move', ' ' + dash(t.from) + ' → ' + t.to));
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 20) list.removeChild(list.lastChild);
    var empty = document.getElementById('activity-empty');
    if (empty) empty.remove();
  }

  var overviewTimer = null;
  function refreshAttention() {
    // The "needs a person" list can gain or lose rows: re-read it (JSON) rather than guess.
    if (overviewTimer) return;
    overviewTimer = setTimeout(function () {
      overviewTimer = null;
      fetch('/api/overview', { credentials: 'same-origin' }).then(function (r) { return r.ok ? r.json() : null; }).then(function (o) {
        if (!o) return;
        var tbody = document.querySelector('#attention tbody');
        if (tbody) {
          while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
          o.attention.items.forEach(function (m) {
            var tr = el('tr');
            tr.setAttribute('data-id', m.id);
            tr.setAttribute('data-state', m.state);
            var td = el('td');
            var a = el('a', null, m.id);
            a.setAttribute('href', '/migrations/' + encodeURIComponent(m.id));
            td.appendChild(a);
            tr.appendChild(td);
            tr.appendChild(el('td', null, m.phone));
            var st = el('td', 'state', m.state);
            st.setAttribute('data-field', 'state');
            tr.appendChild(st);
            tr.appendChild(el('td', 'why', m.attention));
            var na = el('td', 'next', m.nextAction);
            na.setAttribute('data-field', 'nextAction');
            tr.appendChild(na);
            tbody.appendChild(tr);
          });
        }
        each('[data-attention-total]', function (e) { e.textContent = String(o.attention.total); });
        o.batches.forEach(function (b) {
          each('progress[data-batch]', function (p) {
            if (p.getAttribute('data-batch') !== b.id) return;
            p.value = b.completed;
          });
          each('[data-batch-done]', function (e) {
            if (e.getAttribute('data-batch-done') === b.id) e.textContent = b.completed + ' / ' + b.total;
          });
        });
      }).catch(function () {});
    }, 300);
  }

  function onTransition(e) {
    var t = JSON.parse(e.data);
    seen = t.seq;
    applyCounts(t.counts);
    applySummary(t.migration);
    applyActivity(t);
    if (page === 'migration' && t.id === current) {
      applyMigrationPage(t);
      refreshPanels();
    }
    if (page === 'overview') refreshAttention();
    body.setAttribute('data-events', String(seen));
  }

  if (!window.EventSource) return;
  var url = '/api/events' + (page === 'migration' && current ? '?id=' + encodeURIComponent(current) : '');
  var es = new EventSource(url, { withCredentials: true });
  es.addEventListener('open', function () { setLive('live', 'on'); body.setAttribute('data-live', 'on'); });
  es.addEventListener('error', function () { setLive('reconnecting…', 'off'); body.setAttribute('data-live', 'off'); });
  es.addEventListener('transition', onTransition);
  es.addEventListener('update', function (e) {
    var u = JSON.parse(e.data);
    if (page === 'migration' && u.id === current) refreshPanels();
  });
})();
`;

const CSS = `
:root { --bg: #f7f7f5; --fg: #1d2327; --muted: #646970; --line: #dcdcde; --accent: #128c7e; --warn: #b26200; --bad: #b32d2e; --ok: #1a7f37; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #075e54; color: #fff; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header nav a { font-weight: 400; margin-right: 1rem; opacity: .9; }
.live { margin-left: auto; font-size: 12px; padding: .1rem .5rem; border-radius: 1rem; background: #ffffff33; }
.live.on::before { content: "● "; color: #7dff9b; }
.live.off::before { content: "● "; color: #ffb4a8; }
main { padding: 1rem 1.2rem 3rem; max-width: 1400px; }
h1 { font-size: 20px; margin: .2rem 0 1rem; } h2 { font-size: 16px; margin: 1.6rem 0 .6rem; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; background: #f0f0f1; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
td.next { max-width: 560px; }
td.at, td.move { white-space: nowrap; font: 12px ui-monospace, monospace; }
.counts { display: flex; flex-wrap: wrap; gap: .5rem; list-style: none; padding: 0; margin: 0; }
.counts li a { display: block; min-width: 120px; padding: .5rem .8rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; color: var(--fg); text-decoration: none; }
.counts .n { display: block; font-size: 22px; font-weight: 600; }
.counts .state-failed .n, .counts .state-blocked .n { color: var(--bad); }
.counts .state-awaiting_code .n { color: var(--warn); }
.counts .state-completed .n { color: var(--ok); }
tr[data-state="failed"] td[data-field="state"], tr[data-state="blocked"] td[data-field="state"] { color: var(--bad); font-weight: 600; }
tr[data-state="completed"] td[data-field="state"] { color: var(--ok); }
tr[data-state="awaiting_code"] td[data-field="state"] { color: var(--warn); font-weight: 600; }
.flash { animation: flash 1.5s ease-out; }
@keyframes flash { from { background: #fff3bf; } to { background: transparent; } }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; margin-bottom: 1rem; padding: .7rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: .15rem; }
form.filters input, form.filters select, form.filters button { font: inherit; padding: .25rem .4rem; }
.pager { display: flex; gap: 1rem; margin: .7rem 0; align-items: center; }
dl.head { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: .3rem 1rem; background: #fff; border: 1px solid var(--line); padding: .8rem 1rem; border-radius: 6px; margin: 0; }
dl.head dt { color: var(--muted); } dl.head dd { margin: 0; font-family: ui-monospace, monospace; }
.state-badge { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; background: #e7f5f3; color: #075e54; font-weight: 600; }
.failure { border-left: 4px solid var(--bad); background: #fff; padding: .5rem .8rem; margin: .8rem 0; }
.nextaction { border-left: 4px solid var(--accent); background: #fff; padding: .5rem .8rem; margin: .8rem 0; }
.diagram { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .5rem; overflow-x: auto; }
svg.machine { max-width: 100%; height: auto; font: 12px ui-monospace, monospace; }
svg.machine .edge { fill: none; stroke: #a7aaad; stroke-width: 1.2; }
svg.machine .edge.walked { stroke: #4f9b92; stroke-width: 1.8; }
svg.machine marker path { fill: #8c8f94; }
svg.machine .node rect { fill: #fff; stroke: #8c8f94; }
svg.machine .node.visited rect { fill: #e7f5f3; stroke: #4f9b92; }
svg.machine .node.current rect { fill: #128c7e; stroke: #075e54; stroke-width: 2.5; }
svg.machine .node.current text { fill: #fff; font-weight: 700; }
svg.machine .node.choice rect { stroke-dasharray: 3 2; }
svg.machine circle.start { fill: #1d2327; }
.note { color: var(--muted); font-size: 12px; margin: .3rem 0 0; }
.check-pass { color: var(--ok); } .check-fail { color: var(--bad); font-weight: 600; } .check-unknown { color: var(--warn); font-weight: 600; }
ul.calls { list-style: none; margin: 0; padding: 0; font: 12px ui-monospace, monospace; }
ul.calls li span { margin-right: .6rem; } ul.calls .method { font-weight: 700; }
ul#activity { list-style: none; padding: 0; margin: 0; font-size: 13px; } ul#activity time { color: var(--muted); margin-right: .5rem; font-family: ui-monospace, monospace; }
progress { width: 160px; vertical-align: middle; }
.muted { color: var(--muted); }
pre.record { background: #fff; border: 1px solid var(--line); padding: .6rem; overflow-x: auto; font-size: 12px; }
h3 { font-size: 14px; margin: 1rem 0 .3rem; }
section.panel { margin-top: 1.6rem; }
section.panel[hidden] { display: none; }
.panel-alert { border-left: 4px solid var(--bad); background: #fff; padding: .5rem .8rem; margin: .4rem 0 .8rem; }
.panel-alert[hidden] { display: none; }
#notifications td.wid code, #carry-over code { font-size: 12px; word-break: break-all; }
#notifications td.next, #notifications td.attempts, #notifications td.n { white-space: nowrap; font: 12px ui-monospace, monospace; }
tr[data-notify-state="delivered"] td.nstate { color: var(--ok); }
tr[data-notify-state="pending"] td.nstate { color: var(--warn); font-weight: 600; }
tr[data-notify-state="dead"] td.nstate, tr[data-notify-state="endpoint-disabled"] td.nstate { color: var(--bad); font-weight: 600; }
tr[data-applied="yes"] td.applied { color: var(--ok); font-weight: 600; }
tr[data-applied="no"] td.applied { color: var(--muted); }
`;

export interface Asset {
  body: string;
  type: string;
  etag: string;
}

const asset = (body: string, type: string): Asset => ({ body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });

export const ASSETS: Record<string, Asset> = {
  'live.js': asset(CLIENT_JS, 'text/javascript; charset=utf-8'),
  'app.css': asset(CSS, 'text/css; charset=utf-8'),
};
