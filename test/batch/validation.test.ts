/**
 * Batch files through the real CLI: every bad row is reported (line, column, fix), exit 2, and the
 * state directory is byte-identical afterwards: nothing is written, not even the batch record.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, snapshotDir, tempDir, world, type World } from '../helpers/env.js';

let w: World;
let env: Record<string, string>;
let files: string;

const S = FIXTURES.sourceWabaId;
const D = FIXTURES.destWabaId;

beforeAll(async () => {
  w = await world();
  files = await tempDir('waba-batch-files-');
  env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_GRAPH_URL: w.url, WABA_MIGRATE_STATE_DIR: w.dir };
  // An unfinished migration of +16315551000 already in the store.
  await w.engine().start(w.startRequest({ id: 'live-one' }));
});
afterAll(async () => {
  await w.close();
});

async function file(name: string, text: string): Promise<string> {
  const p = join(files, name);
  await writeFile(p, text);
  return p;
}

type Case = [name: string, fileName: string, text: string, expected: RegExp[]];

const ok = (phone: string) => `${phone},${S},${D}`;
const cases: Case[] = [
  [
    'several bad rows are all reported, each with line and column',
    'a.csv',
    `phone,source_waba,dest_waba,code_method\n${ok('+16315552001')},sms\n6315552002,${S},${D},sms\n+16315552003,abc,${D},fax\n+16315552004,${S},${S},sms\n`,
    [/3 bad rows|4 bad rows/, /line 3, column phone: "6315552002" has no country code/, /line 4, column source_waba: "abc" is not a Graph ID/, /line 4, column code_method: "fax" is not a code method/, /line 5, column dest_waba: is the same as --source-waba/],
  ],
  ['a phone twice in the file', 'dup.csv', `phone,source_waba,dest_waba\n${ok('+16315552001')}\n${ok('+16315552002')}\n${ok('+16315552001')}\n`, [/line 4, column phone: \+16315552001 is also on line 2/]],
  [
    'a phone with an unfinished migration in the store',
    'live.csv',
    `phone,source_waba,dest_waba\n${ok('+16315552001')}\n${ok(FIXTURES.phone)}\n`,
    [/line 3, column phone: \+16315551000 already has an unfinished migration "live-one" \(awaiting_code\).*cancel/],
  ],
  ['a missing required column value', 'empty.csv', `phone,source_waba,dest_waba\n+16315552001,,${D}\n`, [/line 2, column source_waba: is required and empty/]],
  ['an unknown column', 'col.csv', `phone,source_waba,dest_waba,colour\n${ok('+16315552001')},blue\n`, [/column colour: is not a column of this file: use phone, source_waba, dest_waba/]],
  ['a broken CSV quote', 'quote.csv', `phone,source_waba,dest_waba,verified_name\n${ok('+16315552001')},"Jasper's\n`, [/not valid CSV/]],
  ['a row with too many cells', 'cells.csv', `phone,source_waba,dest_waba\n${ok('+16315552001')},extra\n`, [/line 2.*not valid CSV/]],
  ['an empty file', 'none.csv', `phone,source_waba,dest_waba\n`, [/no data rows/]],
  ['JSON Lines: a line that is not JSON', 'a.jsonl', `{"phone":"+16315552001","source_waba":"${S}","dest_waba":"${D}"}\n{phone: oops}\n`, [/line 2, column -: not valid JSON/]],
  ['JSON Lines: a bad confirm', 'b.jsonl', `{"phone":"+16315552001","source_waba":"${S}","dest_waba":"${D}","confirm":["two_step_disabled","vibes"]}\n`, [/line 1, column confirm: "vibes" is not a check/]],
  ['an id used twice', 'ids.csv', `phone,source_waba,dest_waba,id\n${ok('+16315552001')},x1\n${ok('+16315552002')},x1\n`, [/line 3, column id: "x1" is also on line 2/]],
  ['an id taken by another migration', 'taken.csv', `phone,source_waba,dest_waba,id\n${ok('+16315552001')},live-one\n`, [/line 2, column id: migration id "live-one" is already used/]],
];

describe('batch start refuses bad files and writes nothing', () => {
  it.each(cases)('%s', async (_name, fileName, text, expected) => {
    const before = await snapshotDir(w.dir);
    const r = await runCli(['batch', 'start', await file(fileName, text), '--id', 'bad'], env);
    expect(r.code, r.stderr).toBe(2);
    for (const re of expected) expect(r.stderr).toMatch(re);
    expect(r.stderr).toMatch(/nothing was written/);
    expect(await snapshotDir(w.dir)).toEqual(before);
  });

  it('a batch id too long for its migration ids is refused', async () => {
    const before = await snapshotDir(w.dir);
    const r = await runCli(['batch', 'start', await file('long.csv', `phone,source_waba,dest_waba\n${ok('+16315552001')}\n`), '--id', 'x'.repeat(64)], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--id: .*too long/);
    expect(await snapshotDir(w.dir)).toEqual(before);
  });

  it('an unreadable file is a usage error', async () => {
    const r = await runCli(['batch', 'start', join(files, 'nope.csv')], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/file: cannot read/);
  });
});

describe('batch codes refuses bad rows and sends nothing', () => {
  it('reports unknown numbers, bad codes and PINs, duplicates; nothing is sent', async () => {
    const numbers = await file('good.csv', `phone,source_waba,dest_waba,confirm\n${ok('+16315552101')},two_step_disabled\n${ok('+16315552102')},two_step_disabled\n`);
    const started = await runCli(['batch', 'start', numbers, '--id', 'codes-test'], env);
    expect(started.code, started.stderr).toBe(0);
    const before = await snapshotDir(w.dir);
    const calls = w.sandbox.counters['POST verify_code']?.calls ?? 0;
    const codes = await file('codes.csv', `phone,code,pin\n+16315552101,12345,\n+19995550000,123456,\n+16315552102,123456,12\n+16315552102,654321,\n`);
    const r = await runCli(['batch', 'codes', 'codes-test', codes], env);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/line 2, column code: must be the 6 digits/);
    expect(r.stderr).toMatch(/line 3, column phone: \+19995550000 is not a number of batch codes-test/);
    expect(r.stderr).toMatch(/line 4, column pin: the register PIN must be exactly 6 digits/);
    expect(r.stderr).toMatch(/line 5, column phone: \+16315552102 already has a code on line 4/);
    expect(await snapshotDir(w.dir)).toEqual(before);
    expect(w.sandbox.counters['POST verify_code']?.calls ?? 0).toBe(calls);
  });

  it('an unknown batch is exit 2', async () => {
    const r = await runCli(['batch', 'status', 'no-such-batch'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no batch "no-such-batch"/);
  });
});
