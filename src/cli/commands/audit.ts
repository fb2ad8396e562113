/**
 * `waba-migrate audit <id>`: the full history, as a table, JSON or CSV; events in words. A
 * migration from On-Premises adds its settings carry-over report (table: after the history; JSON:
 * `carryOver`; CSV: `--carry-over` prints the report instead of the history, one row per setting).
 */
import type { Command } from 'commander';

export function registerAudit(program: Command): void {
  program
    .command('audit <id>')
    .description('the full history: time, from → to, what happened, Graph calls, who')
    .option('--format <format>', 'table, json or csv', 'table')
    .option('--since <time>', 'only entries at or after this ISO time (e.g. 2026-01-01T00:00:00Z)')
    .option('--limit <n>', 'only the last n entries (after --since)')
    .option('--carry-over', 'only the On-Premises settings carry-over report (setting, value, cloud, applied), in the chosen format')
    .action(async (id: string, o: { format: string; since?: string; limit?: string; carryOver?: boolean }, cmd: Command) => {
      const { stringify } = await import('csv-stringify/sync');
      const { InputError } = await import('../../runner/validate.js');
      const { globals } = await import('../globals.js');
      const { formatCarryOver, toView } = await import('../../runner/view.js');
      const { openStore } = await import('../../store/open.js');
      const { printJson } = await import('../output.js');
      const { eventInWords, formatTime, renderTable } = await import('../format.js');
      const g = globals(cmd);
      const format = g.json ? 'json' : o.format;
      if (!['table', 'json', 'csv'].includes(format)) throw new InputError('--format', `${JSON.stringify(o.format)} is not a format: use table, json or csv`);
      const since = o.since !== undefined ? Date.parse(o.since) : undefined;
      if (since !== undefined && !Number.isFinite(since)) throw new InputError('--since', `${JSON.stringify(o.since)} is not a time: use ISO 8601, e.g. 2026-01-01T00:00:00Z`);
      const limit = o.limit !== undefined ? Number(o.limit) : undefined;
      if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new InputError('--limit', `${JSON.stringify(o.limit)} must be a whole number > 0`);
      const { parseMigrationId } = await import('../../runner/validate.js');
      parseMigrationId(id);
      const store = await openStore(g.store);
      const doc = await store.load(id).finally(() => store.close());
      // The settings carry-over report (On-Premises path; null otherwise): what changed for this customer.
      const carryOver = toView(doc).carryOver;
      let history = doc.history;
      if (since !== undefined) history = history.filter((h) => Date.parse(h.at) >= since);
      if (limit !== undefined) history = history.slice(-limit);
      if (o.carryOver) {
        if (format === 'json') return printJson({ id, carryOver });
        if (!carryOver) {
          if (format === 'table') process.stdout.write(`${id} has no settings carry-over report: it ${doc.input.from === 'onprem' ? 'has not snapshotted its On-Premises settings yet' : 'is not a migration from On-Premises'}.\n`);
          else process.stdout.write(stringify([['setting', 'value', 'cloud', 'applied']]));
          return;
        }
        if (format === 'csv') return void process.stdout.write(stringify([['setting', 'value', 'cloud', 'applied'], ...carryOver.map((l) => [l.setting, l.value, l.cloud, l.applied ? 'yes' : 'no'])]));
        return void process.stdout.write(`${formatCarryOver(carryOver)}\n`);
      }
      if (format === 'json') return printJson({ id, history: history.map((h) => ({ ...h, summary: eventInWords(h.event, h.by) })), carryOver });
      if (format === 'csv') {
        const rows: unknown[][] = [['n', 'time', 'from', 'to', 'event', 'by', 'method', 'path', 'http_status', 'code', 'fbtrace_id', 'duration_ms', 'error', 'summary']];
        for (const h of history) {
          // New columns go last so scripts that read by position keep working.
          const base = [h.n, h.at, h.from ?? '', h.to, h.event.type, h.by];
          const words = eventInWords(h.event, h.by);
          if (!h.calls.length) rows.push([...base, '', '', '', '', '', '', '', words]);
          for (const c of h.calls) rows.push([...base, c.method, c.path, c.status ?? '', c.code ?? '', c.fbtraceId ?? '', c.durationMs, c.error ?? '', words]);
        }
        process.stdout.write(stringify(rows));
        return;
      }
      const report = carryOver?.length ? `\n${formatCarryOver(carryOver)}\n` : '';
      if (!history.length) {
        process.stdout.write(`No history entries${since !== undefined ? ` since ${formatTime(since, g.localTime)}` : ''} for ${id}.\n${report}`);
        return;
      }
      const rows = history.map((h) => [
        String(h.n),
        formatTime(h.at, g.localTime),
        `${h.from ?? '∅'} → ${h.to}`,
        eventInWords(h.event, h.by),
        h.calls.map((c) => `${c.method} ${c.path} → ${c.status ?? 'no answer'}${c.code ? ` code ${c.code}` : ''}${c.fbtraceId ? ` fbtrace ${c.fbtraceId}` : ''} ${c.durationMs} ms`).join('\n') || '-',
        h.by,
      ]);
      process.stdout.write(`${await renderTable(['#', 'time', 'from → to', 'what happened', 'Graph calls', 'by'], rows, { fixed: [true, true, true, false, false, true], weights: [0, 0, 0, 3, 4, 0] })}\n${report}`);
    });
}
