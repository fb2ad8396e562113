/**
 * Bad input, table-driven, through the real CLI: each case gets a clear message naming what is
 * wrong, exit 2 (bad input) or 6 (damaged state document), and the state directory is
 * byte-identical afterwards: a damaged document is never overwritten.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, snapshotDir, world, type World } from '../helpers/env.js';

let w: World;
let env: Record<string, string>;
let before: Map<string, string>;

const start = (over: Record<string, string | null> = {}) => {
  const base: Record<string, string | null> = {
    '--phone': FIXTURES.phone,
    '--source-waba': FIXTURES.sourceWabaId,
    '--dest-waba': FIXTURES.destWabaId,
    '--confirm': 'two_step_disabled',
    ...over,
  };
  return ['start', ...Object.entries(base).flatMap(([k, v]) => (v === null ? [] : [k, v]))];
};

type Case = [name: string, args: string[], env: Record<string, string | undefined>, exit: 2 | 6, message: RegExp];

const PIN = { WABA_REGISTER_PIN: '123456' };
const cases: Case[] = [
  // phone numbers
  ['phone: letters only', start({ '--phone': 'abc' }), {}, 2, /phone: "abc" has no country code/],
  ['phone: letters inside', start({ '--phone': '+1631555abcd' }), {}, 2, /phone: .*not digits/],
  ['phone: too short', start({ '--phone': '+1' }), {}, 2, /phone: "\+1" is not a phone number/],
  ['phone: three digits', start({ '--phone': '+123' }), {}, 2, /phone: /],
  ['phone: no country code', start({ '--phone': '6315551000' }), {}, 2, /phone: .*no country code/],
  ['phone: country code without +', start({ '--phone': '16315551000' }), {}, 2, /phone: .*no country code/],
  ['phone: too few digits for US', start({ '--phone': '+16315551' }), {}, 2, /phone: "\+16315551" is not a valid number for country code \+1: check the digits/],
  ['phone: too long', start({ '--phone': '+16315551000123456' }), {}, 2, /phone: /],
  ['phone: unknown country code', start({ '--phone': '+9991234567' }), {}, 2, /phone: /],
  ['phone: invalid for GB', start({ '--phone': '+44201' }), {}, 2, /phone: /],
  ['phone: empty', start({ '--phone': '' }), {}, 2, /phone: is required/],
  ['phone: double plus', start({ '--phone': '++16315551000' }), {}, 2, /phone: /],
  ['phone: emoji', start({ '--phone': '+1631555📞' }), {}, 2, /phone: .*not digits/],
  ['phone: invalid for FR', start({ '--phone': '+33123' }), {}, 2, /phone: /],
  // ids
  ['source WABA: letters', start({ '--source-waba': 'abc' }), {}, 2, /source-waba: "abc" is not a Graph ID/],
  ['source WABA: mixed', start({ '--source-waba': '12a4' }), {}, 2, /source-waba: .*digits only/],
  ['source WABA: negative', start({ '--source-waba': '-5' }), {}, 2, /source-waba|unknown option|argument/],
  ['source WABA: decimal', start({ '--source-waba': '1.5' }), {}, 2, /source-waba: /],
  ['dest WABA: letters', start({ '--dest-waba': 'xyz' }), {}, 2, /dest-waba: "xyz" is not a Graph ID/],
  ['dest WABA: same as source', start({ '--dest-waba': FIXTURES.sourceWabaId }), {}, 2, /dest-waba: is the same as --source-waba/],
  ['dest WABA: missing', start({ '--dest-waba': null }), {}, 2, /--dest-waba/],
  ['business: letters', start({ '--business': 'biz' }), {}, 2, /business: "biz" is not a Graph ID/],
  ['business: spaces', start({ '--business': '12 34' }), {}, 2, /business: /],
  // other start options
  ['code method: fax', start({ '--code-method': 'fax' }), {}, 2, /code-method: "fax" is not a code method: use sms or voice/],
  ['language: word', start({ '--language': 'english' }), {}, 2, /language: "english" is not a language code/],
  ['language: wrong case', start({ '--language': 'EN_us' }), {}, 2, /language: /],
  ['confirm: unknown check', start({ '--confirm': 'vibes_ok' }), {}, 2, /confirm: "vibes_ok" is not a check/],
  ['id: space', start({ '--id': 'bad id' }), {}, 2, /id: "bad id" is not a migration id/],
  ['id: path traversal', start({ '--id': '../etc' }), {}, 2, /id: "..\/etc" is not a migration id/],
  ['id: hidden', start({ '--id': '.hidden' }), {}, 2, /id: /],
  ['id: too long', start({ '--id': 'a'.repeat(65) }), {}, 2, /id: /],
  ['id: taken', start({ '--id': 'good' }), {}, 2, /id: a migration "good" already exists/],
  ['verified name: too short', start({ '--verified-name': 'x' }), {}, 2, /verified-name: must be 2 to 75 characters/],
  ['retry base: negative', start({ '--retry-base-ms': '-1' }), {}, 2, /--retry-base-ms: "-1" must be a non-negative number/],
  ['max attempts: word', start({ '--max-attempts': 'many' }), {}, 2, /--max-attempts: /],
  // codes and PINs
  ['code: five digits', ['resume', 'good', '--code', '12345'], PIN, 2, /--code: must be the 6 digits/],
  ['code: seven digits', ['resume', 'good', '--code', '1234567'], PIN, 2, /--code: must be the 6 digits/],
  ['code: letters', ['resume', 'good', '--code', 'abcdef'], PIN, 2, /--code: /],
  ['code: with space', ['resume', 'good', '--code', '123 45'], PIN, 2, /--code: /],
  ['code: empty', ['resume', 'good', '--code', ''], PIN, 2, /--code: /],
  ['PIN: three digits', ['resume', 'good', '--code', '123456'], { WABA_REGISTER_PIN: '123' }, 2, /WABA_REGISTER_PIN: the register PIN must be exactly 6 digits/],
  ['PIN: letters', ['resume', 'good', '--code', '123456'], { WABA_REGISTER_PIN: 'abcdef' }, 2, /WABA_REGISTER_PIN: /],
  ['PIN file: missing', ['resume', 'good', '--code', '123456', '--pin-file', '/nonexistent/pin'], {}, 2, /--pin-file: cannot read \/nonexistent\/pin/],
  ['code missing, no TTY', ['resume', 'good'], PIN, 2, /verification code missing: pipe it in with --code -, or use --code-file/],
  ['PIN missing, no TTY', ['resume', 'good', '--code', '123456'], {}, 2, /register PIN missing: set WABA_REGISTER_PIN/],
  ['resend: bad method', ['resend-code', 'good', '--code-method', 'pigeon'], {}, 2, /--code-method: /],
  // unknown migrations
  ['unknown id: resume', ['resume', 'nope', '--code', '123456'], PIN, 2, /no migration "nope"/],
  ['unknown id: status', ['status', 'nope'], {}, 2, /no migration "nope"/],
  ['unknown id: audit', ['audit', 'nope'], {}, 2, /no migration "nope"/],
  ['unknown id: cancel', ['cancel', 'nope'], {}, 2, /no migration "nope"/],
  ['unknown id: resend-code', ['resend-code', 'nope'], {}, 2, /no migration "nope"/],
  ['bad id: status', ['status', '../x'], {}, 2, /id: /],
  // token and URL
  ['token missing: start', start(), { WABA_ACCESS_TOKEN: undefined }, 2, /access token missing: set WABA_ACCESS_TOKEN or pass --token-file/],
  ['token missing: resume', ['resume', 'good', '--code', '123456'], { ...PIN, WABA_ACCESS_TOKEN: undefined }, 2, /access token missing/],
  ['token missing: check', ['check', '--phone', FIXTURES.phone, '--source-waba', '1', '--dest-waba', '2'], { WABA_ACCESS_TOKEN: undefined }, 2, /access token missing/],
  ['token file missing', [...start(), '--token-file', '/nonexistent/token'], { WABA_ACCESS_TOKEN: undefined }, 2, /--token-file: cannot read/],
  ['graph URL: plain http to a remote host', [...start(), '--graph-url', 'http://graph.example.com'], {}, 2, /must use https/],
  ['graph URL: not a URL', [...start(), '--graph-url', 'graph'], {}, 2, /is not a URL/],
  ['timeout: word', [...start(), '--timeout', 'soon'], {}, 2, /--timeout: "soon" is not a number of milliseconds/],
  // other commands
  ['audit: unknown format', ['audit', 'good', '--format', 'xml'], {}, 2, /--format: "xml" is not a format/],
  ['sandbox: bad port', ['sandbox', '--port', '99999'], {}, 2, /--port: 99999 is not a port/],
  ['sandbox: unknown scenario', ['sandbox', '--scenario', 'chaos'], {}, 2, /--scenario: chaos is not a scenario/],
  ['unknown command', ['migrate-everything'], {}, 2, /unknown command/],
  ['unknown option', ['list', '--everything'], {}, 2, /unknown option/],
  // damaged state documents
  ...(['status', 'resume', 'cancel', 'audit'] as const).flatMap((cmd): Case[] => [
    [`corrupt JSON: ${cmd}`, [cmd, 'corrupt'], PIN, 6, /corrupt\.json is not valid JSON.*left untouched/],
    [`truncated: ${cmd}`, [cmd, 'truncated'], PIN, 6, /truncated\.json is not valid JSON/],
    [`future schema: ${cmd}`, [cmd, 'future'], PIN, 6, /future\.json has schemaVersion 99; this waba-migrate reads version 1/],
    [`tampered state name: ${cmd}`, [cmd, 'tampered'], PIN, 6, /tampered\.json is not a valid state document \(state: /],
    [`state and snapshot disagree: ${cmd}`, [cmd, 'mismatch'], PIN, 6, /"state" says completed but the saved machine is in awaiting_code/],
    [`missing fields: ${cmd}`, [cmd, 'noinput'], PIN, 6, /noinput\.json is not a valid state document \(input: /],
  ]),
  ['empty file', ['status', 'empty'], {}, 6, /empty\.json is not valid JSON/],
  ['binary garbage', ['status', 'garbage'], {}, 6, /garbage\.json is not valid JSON/],
  ['history not a list', ['status', 'nohistory'], {}, 6, /nohistory\.json is not a valid state document \(history: /],
  ['unknown machine state in snapshot', ['status', 'badsnap'], {}, 6, /badsnap\.json: the saved machine state .* is not a state of this machine/],
];

beforeAll(async () => {
  w = await world();
  env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
  await w.engine().start(w.startRequest({ id: 'good' }));
  const goodText = await readFile(join(w.dir, 'migrations', 'good.json'), 'utf8');
  const good = JSON.parse(goodText);
  const put = (id: string, content: string | Buffer) => writeFile(join(w.dir, 'migrations', `${id}.json`), content, { mode: 0o600 });
  await put('corrupt', '{"schemaVersion": 1, "id": "corrupt", }');
  await put('truncated', goodText.slice(0, Math.floor(goodText.length / 2)));
  await put('future', JSON.stringify({ ...good, id: 'future', schemaVersion: 99 }));
  await put('tampered', JSON.stringify({ ...good, id: 'tampered', state: 'flying' }));
  await put('mismatch', JSON.stringify({ ...good, id: 'mismatch', state: 'completed' }));
  const { input: _input, ...noInput } = good;
  await put('noinput', JSON.stringify({ ...noInput, id: 'noinput' }));
  await put('empty', '');
  await put('garbage', Buffer.from([0xff, 0xfe, 0x00, 0x13, 0x37]));
  await put('nohistory', JSON.stringify({ ...good, id: 'nohistory', history: 'lost' }));
  await put('badsnap', JSON.stringify({ ...good, id: 'badsnap', state: 'awaiting_code', snapshot: { ...good.snapshot, value: 'teleporting' } }));
  before = await snapshotDir(w.dir);
});
afterAll(async () => {
  await w?.close();
});

describe(`${cases.length} bad inputs`, () => {
  it('has at least 50 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(50);
  });

  it.concurrent.each(cases)('%s', async (_name, args, extraEnv, exit, message) => {
    const r = await runCli(args, { ...env, ...extraEnv });
    expect(r.code, r.stderr + r.stdout).toBe(exit);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(await snapshotDir(w.dir)).toEqual(before);
  });
});
