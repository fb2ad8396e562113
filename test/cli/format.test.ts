/** renderTable draws long tables in slices (cli-table3 is quadratic in rows): same output as one table. */
import Table from 'cli-table3';
import { afterEach, describe, expect, it } from 'vitest';
import { fitWidths, renderTable } from '../../src/cli/format.js';

const saved = process.env.COLUMNS;
afterEach(() => {
  if (saved === undefined) delete process.env.COLUMNS;
  else process.env.COLUMNS = saved;
});

describe('renderTable', () => {
  it('a 450-row table drawn in slices is line for line the table cli-table3 draws in one piece', async () => {
    process.env.COLUMNS = '120';
    const head = ['id', 'state', 'next action'];
    const rows = Array.from({ length: 450 }, (_, i) => [`m-${i}`, i % 3 ? 'awaiting_code' : 'completed', `enter the code sent by SMS to +1631555${String(i).padStart(4, '0')}: waba-migrate resume m-${i} --code <6 digits>; a long sentence that wraps`]);
    const opts = { fixed: [true, true, false], weights: [0, 0, 1] };
    const widths = fitWidths(rows, head, opts.fixed, opts.weights, 120)!;
    const whole = new Table({ head, colWidths: widths, wordWrap: true, wrapOnWordBoundary: false, style: { head: [], border: [] } });
    for (const r of rows) whole.push(r);
    const sliced = await renderTable(head, rows, opts);
    expect(sliced.split('\n').length).toBeGreaterThan(900);
    expect(sliced).toBe(whole.toString());
  });

  it('an empty and a one-row table are drawn as before', async () => {
    process.env.COLUMNS = '120';
    const head = ['id', 'state'];
    for (const rows of [[], [['a', 'b']]]) {
      const whole = new Table({ head, colWidths: fitWidths(rows, head, [true, false], [0, 1], 120)!, wordWrap: true, wrapOnWordBoundary: false, style: { head: [], border: [] } });
      for (const r of rows) whole.push(r);
      expect(await renderTable(head, rows, { fixed: [true, false], weights: [0, 1] })).toBe(whole.toString());
    }
  });
});
