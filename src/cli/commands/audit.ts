/** `waba-migrate audit <id>`: the full history, as a table, JSON or CSV. */
import type { Command } from 'commander';

export function registerAudit(program: Command): void {
  program
    .command('audit <id>')
    .description('the full history: time, from → to, event, Graph calls, who')
    .option('--format <format>', 'table, json or csv', 'table')
    .action(async (id: string, o: { format: string }, cmd: Command) => {
      const { default: Table } = await import('cli-table3');
      const { stringify } = await import('csv-stringify/sync');
      const { InputError } = await import('../../runner/validate.js');
      const { globals } = await import('../globals.js');
      const { getHistory } = await import('../../runner/read.js');
      const { FileStore } = await import('../../store/store.js');
      const { printJson } = await import('../output.js');
      const g = globals(cmd);
      const format = g.json ? 'json' : o.format;
      if (!['table', 'json', 'csv'].includes(format)) throw new InputError('--format', `${JSON.stringify(o.format)} is not a format: use table, json or csv`);
      const history = await getHistory(new FileStore(g.stateDir), id);
      if (format === 'json') return printJson({ id, history });
      if (format === 'csv') {
        const rows: unknown[][] = [['n', 'time', 'from', 'to', 'event', 'by', 'method', 'path', 'http_status', 'code', 'fbtrace_id', 'duration_ms']];
        for (const h of history) {
          const base = [h.n, h.at, h.from ?? '', h.to, h.event.type, h.by];
          if (!h.calls.length) rows.push([...base, '', '', '', '', '', '']);
          for (const c of h.calls) rows.push([...base, c.method, c.path, c.status ?? '', c.code ?? '', c.fbtraceId ?? '', c.durationMs]);
        }
        process.stdout.write(stringify(rows));
        return;
      }
      const t = new Table({ head: ['#', 'time', 'from → to', 'event', 'Graph calls', 'by'], colWidths: [5, 26, 34, 34, 70, 12], wordWrap: true, style: { head: [], border: [] } });
      for (const h of history) {
        const calls = h.calls
          .map((c) => `${c.method} ${c.path} → ${c.status ?? 'no answer'}${c.code ? ` code ${c.code}` : ''}${c.fbtraceId ? ` fbtrace ${c.fbtraceId}` : ''} ${c.durationMs} ms`)
          .join('\n');
        const extra = h.event.type.startsWith('xstate.error') ? `\n${String((h.event.error as { message?: string })?.message ?? '')}` : '';
        t.push([h.n, h.at, `${h.from ?? '∅'} → ${h.to}`, h.event.type + extra, calls || '-', h.by]);
      }
      process.stdout.write(`${t.toString()}\n`);
    });
}
