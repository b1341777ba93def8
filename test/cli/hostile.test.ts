/**
 * The command against hostile input, table-driven and in-process (runMain): every option that
 * takes text with empty, 10 MB, Unicode, control-character and NUL values; config files that
 * are malformed, have unknown keys, negative, zero, fractional or huge numbers; stores that
 * cannot be used; django-otp dumps that are malformed, too big, of the wrong shape, with keys
 * of the wrong length, duplicate primary keys and missing users; and an import killed
 * mid-way, run again. Each case: its exit code, a one-line message naming the problem, no
 * stack trace, no secret, no half-made device or file.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DUMP_BYTES } from '../../adapters/cli/django-import.ts';
import { printable } from '../../adapters/cli/printable.ts';
import { runMain, type MainResult } from './run-main.ts';
import { BIN, cliSandbox } from './run.ts';

const box = cliSandbox('fs-hostile-');
const T = Date.UTC(2026, 10, 28, 12);
const NOW = `@${T / 1000}`;
const S = ['--store', box.store, '--now', NOW];
afterAll(() => box.remove());

const TEN_MB = 'x'.repeat(10 * 1024 * 1024);
const SECRET_HEX = '3132333435363738393031323334353637383930';

/** Exit 2 or 3: nothing on stdout, one line on stderr that starts with "factorstream: " and matches `names`; never a stack. */
const expectOneLine = (r: MainResult, exit: number, names: RegExp) => {
  expect(r.code, r.stderr + r.stdout).toBe(exit);
  const lines = r.stderr.split('\n').filter((l) => l !== '' && !/created the master key file/.test(l));
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^factorstream: /);
  expect(lines[0]).toMatch(names);
  expect(lines[0]!.length).toBeLessThan(1200);
  expect(r.stderr + r.stdout).not.toMatch(/\n\s+at |\.ts:\d+|node:internal|TypeError|RangeError/);
};

const deviceCount = (user: string): number => {
  const db = new Database(box.db, { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM events WHERE type = 'DeviceRegistered' AND data LIKE ?").get(`%"userId":${JSON.stringify(user)}%`) as { n: number }).n;
  } finally {
    db.close();
  }
};

let tokenDevice: string;
beforeAll(async () => {
  const r = await runMain([...S, 'enroll', 'totp', '--user', 'owner', '--secret', SECRET_HEX, '--confirmed', '--json']);
  expect(r.code, r.stderr).toBe(0);
  tokenDevice = r.json!.deviceId as string;
  // Throttling off, so that every token below is judged.
  writeFileSync(join(box.dir, 'no-throttle.json'), JSON.stringify({ throttle: { totp: { factor: 0 } } }));
});

// ---- every option that takes text -----------------------------------------------------------

type Value = 'empty' | '10 MB' | 'Unicode' | 'control' | 'NUL';
const VALUES: Record<Value, string> = {
  empty: '',
  '10 MB': TEN_MB,
  Unicode: 'Zoë ✓ 日本語 🙂',
  control: 'a\u0007b\u001b[2Jc',
  NUL: 'a\u0000b',
};

interface OptionCase {
  readonly option: string;
  readonly args: (v: string, user: string) => string[];
  /** Exit code per value (and what the message must name when it is 2). */
  readonly expect: Record<Value, readonly [number, RegExp?]>;
  /** The user whose devices must not have grown when the command failed. */
  readonly enrols?: boolean;
}

const OPTION_CASES: readonly OptionCase[] = [
  {
    option: '--user',
    args: (v) => ['enroll', 'totp', '--user', v, '--confirmed'],
    enrols: true,
    expect: { empty: [2, /--user is required/], '10 MB': [2, /userId must be 1–128 characters/], Unicode: [0], control: [2, /userId must not contain control characters/], NUL: [2, /userId must not contain control characters/] },
  },
  {
    option: '--name',
    args: (v, u) => ['enroll', 'totp', '--user', u, '--name', v, '--confirmed'],
    enrols: true,
    expect: { empty: [2, /name must be 1–64 characters/], '10 MB': [2, /name must be 1–64 characters/], Unicode: [0], control: [2, /name must not contain control characters/], NUL: [2, /name must not contain control characters/] },
  },
  {
    option: '--to',
    args: (v, u) => ['enroll', 'email', '--user', u, '--to', v.includes('@') || v === '' || v.length > 1000 ? v : `${v}@example.com`, '--confirmed'],
    enrols: true,
    expect: { empty: [2, /--to is required/], '10 MB': [2, /destination must be an e-mail address/], Unicode: [2, /destination must be an e-mail address/], control: [2, /destination must be an e-mail address/], NUL: [2, /destination must be an e-mail address/] },
  },
  {
    option: '--secret',
    args: (v, u) => ['enroll', 'totp', '--user', u, '--secret', v, '--confirmed'],
    enrols: true,
    expect: { empty: [2, /secret must be 10–128 bytes long \(got 0\)/], '10 MB': [2, /--secret must be hexadecimal/], Unicode: [2, /--secret must be hexadecimal/], control: [2, /--secret must be hexadecimal/], NUL: [2, /--secret must be hexadecimal/] },
  },
  {
    option: '--uri',
    args: (v, u) => ['enroll', 'totp', '--user', u, '--uri', v, '--confirmed'],
    enrols: true,
    expect: { empty: [2, /otpauth URI is not valid/], '10 MB': [2, /otpauth URI is longer than 4096 characters/], Unicode: [2, /otpauth URI is not valid/], control: [2, /otpauth URI is not valid/], NUL: [2, /otpauth URI is not valid/] },
  },
  {
    option: '--now',
    args: (v, u) => ['--now', v, 'devices', '--user', u],
    expect: { empty: [2, /--now must not be empty/], '10 MB': [2, /--now must be an ISO-8601 time/], Unicode: [2, /--now must be an ISO-8601 time/], control: [2, /--now must be an ISO-8601 time/], NUL: [2, /--now must be an ISO-8601 time/] },
  },
  {
    option: '--token',
    // A token is what the user typed: judged (and refused), never a usage error.
    args: (v) => ['--config', join(box.dir, 'no-throttle.json'), 'verify', '--device', tokenDevice, '--token', v],
    expect: { empty: [1], '10 MB': [1], Unicode: [1], control: [1], NUL: [1] },
  },
];

describe('every option that takes text', () => {
  const cases = OPTION_CASES.flatMap((c) => (Object.keys(VALUES) as Value[]).map((v) => [c.option, v, c] as const));
  it.each(cases)('%s with a %s value', async (option, value, c) => {
    const user = `u${OPTION_CASES.indexOf(c)}-${Object.keys(VALUES).indexOf(value)}`;
    const raw = VALUES[value];
    const args = c.args(raw, user);
    // --now is the case itself: no default --now before it.
    const r = await runMain(option === '--now' ? ['--store', box.store, ...args] : [...S, ...args]);
    const [exit, names] = c.expect[value];
    if (exit === 0) expect(r.code, r.stderr).toBe(0);
    else if (exit === 1) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toMatch(/^rejected: (malformed|invalid)\n$/);
      expect(r.stderr).toBe('');
    } else {
      expectOneLine(r, exit, names!);
      if (c.enrols) expect(deviceCount(user), 'a failed enrolment left a device behind').toBe(0);
    }
    // The value is never repeated whole: not 10 MB of it, not a secret, not raw control characters.
    if (raw.length > 100) expect(r.stdout.length + r.stderr.length).toBeLessThan(10_000);
    expect(r.stderr).not.toMatch(/[\u0000-\u0008\u001b]/);
  });

  it('a user name with a bidi override or control characters is stored as given and printed escaped', async () => {
    const user = 'mallory\u202Egnp.exe';
    const r = await runMain([...S, 'enroll', 'totp', '--user', user, '--confirmed']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('enrolled totp device for mallory\\u202egnp.exe');
    const list = await runMain([...S, 'devices', '--user', user]);
    expect(list.stdout).not.toContain('\u202E');
    const json = await runMain([...S, 'devices', '--user', user, '--json']);
    expect(json.json!.userId).toBe(user);
    expect(printable('a\u001b[2J\u0000b\u2066c\\d')).toBe('a\\u001b[2J\\u0000b\\u2066c\\\\d');
  });

  it.each([
    ['@8639999999999', /from 1970-01-01T00:00:00Z to 9999-12-31/],
    ['@-99999999999', /from 1970-01-01T00:00:00Z to 9999-12-31/],
    ['@-1', /from 1970-01-01/],
    ['+275760-09-13T00:00:00Z', /ISO-8601/],
    ['10000-01-01T00:00:00Z', /ISO-8601/],
    ['   ', /must not be empty/],
  ])('--now %s is refused', async (value, names) => {
    expectOneLine(await runMain(['--store', box.store, '--now', value, 'devices', '--user', 'x']), 2, names);
  });

  it('--now at the ends of its window is taken', async () => {
    for (const v of ['@0', '9999-12-31T23:59:59Z']) expect((await runMain(['--store', box.store, '--now', v, 'devices', '--user', 'x'])).code).toBe(0);
  });

  it.each([
    ['--step', '1e400', /--step must be a whole number from 1 to 86400/],
    ['--step', '0', /--step must be a whole number from 1 to 86400/],
    ['--step', '86401', /--step must be a whole number from 1 to 86400/],
    ['--t0', '-1', /--t0 must be a whole number from 0/],
    ['--tolerance', '11', /--tolerance must be a whole number from 0 to 10/],
  ])('enroll totp %s %s names the domain range', async (option, value, names) => {
    expectOneLine(await runMain([...S, 'enroll', 'totp', '--user', 'ranges', option, value]), 2, names);
    expect(deviceCount('ranges')).toBe(0);
  });
});

// ---- --config --------------------------------------------------------------------------------

describe('--config', () => {
  const file = (name: string, content: string | Buffer) => {
    const path = join(box.dir, name);
    writeFileSync(path, content);
    return path;
  };
  it.each([
    ['malformed', '{"cooldownSeconds": ', 2, /is not valid JSON/],
    ['not JSON at all', 'cooldownSeconds = 5', 2, /is not valid JSON/],
    ['empty', '', 2, /is not valid JSON/],
    ['a list', '[]', 2, /must hold a JSON object of settings.*got a list/],
    ['null', 'null', 2, /must hold a JSON object of settings.*got null/],
    ['a string', '"cooldown"', 2, /must hold a JSON object of settings.*got string/],
    ['unknown keys', '{"colour": "blue", "cooldownSecond": 5}', 2, /unknown settings: colour, cooldownSecond/],
    ['an unknown key with control characters', '{"a\\u001b[2Jb": 1}', 2, /unknown settings: a\\u001b\[2Jb/],
    ['negative', '{"cooldownSeconds": -1}', 2, /cooldownSeconds: must be a number ≥ 0/],
    ['a negative factor', '{"throttle": {"totp": {"factor": -2}}}', 2, /factor: must be a number ≥ 0/],
    ['zero validity', '{"codeValiditySeconds": 0}', 2, /codeValiditySeconds must be a number from 1 to 86400/],
    ['fractional drift', '{"maxDrift": 1.5}', 2, /maxDrift must be a whole number from 0 to 100/],
    ['fractional backup code count', '{"backupCodeCount": 2.5}', 2, /backupCodeCount must be a whole number from 1 to 100/],
    ['a huge cooldown', '{"cooldownSeconds": 1e308}', 2, /cooldownSeconds must be a number from 0 to 86400 \(got 1e\+308\)/],
    ['a huge validity', '{"cooldownSeconds": 1e308, "codeValiditySeconds": 99999999999999999999}', 2, /codeValiditySeconds must be a number from 1 to 86400/],
    ['an infinite number', '{"cooldownSeconds": 1e999}', 2, /cooldownSeconds: must be a number ≥ 0/],
    ['a huge tolerance', '{"totpTolerance": 100000}', 2, /totpTolerance: must be a whole number from 0 to 10/],
    ['a fractional tolerance', '{"hotpTolerance": 2.5}', 2, /hotpTolerance: must be a whole number from 0 to 100/],
    ['an issuer with ":"', '{"issuer": "Acme: Inc"}', 2, /issuer: must not contain ":"/],
    ['an issuer with NUL', '{"issuer": "Acme\\u0000"}', 2, /issuer: must not contain control/],
    ['an issuer with a bidi override', '{"issuer": "Acme\\u202e"}', 2, /issuer: must not contain control, bidi/],
    ['an empty issuer', '{"issuer": ""}', 2, /issuer: must be 1–64 characters long \(got 0\)/],
    ['a 5 MB issuer', JSON.stringify({ issuer: 'i'.repeat(5 * 1024 * 1024) }), 2, /issuer: must be 1–64 characters long \(got 5242880\)/],
    ['a UTF-8 BOM', '\uFEFF{"cooldownSeconds": 5}', 0, null],
    ['zero cooldown and fractional seconds', '{"cooldownSeconds": 0, "codeValiditySeconds": 1.5}', 0, null],
  ] as const)('%s', async (name, content, exit, names) => {
    const path = file(`config-${name.replace(/\W+/g, '-')}.json`, content);
    const r = await runMain([...S, '--config', path, 'enroll', 'totp', '--user', `config-${name}`, '--confirmed']);
    if (exit === 0) expect(r.code, r.stderr).toBe(0);
    else {
      expectOneLine(r, exit, names!);
      expect(r.stderr).toContain(path);
      expect(deviceCount(`config-${name}`)).toBe(0);
    }
  });

  it('a config file bigger than 8 MiB is refused without being read whole', async () => {
    const path = file('huge.json', '');
    truncateSync(path, 100 * 1024 * 1024);
    expectOneLine(await runMain([...S, '--config', path, 'devices', '--user', 'x']), 2, /larger than 8 MiB/);
  });

  it('a config that cannot make a poisoned event: a challenge with the largest bounds decodes', async () => {
    const path = file('largest.json', JSON.stringify({ cooldownSeconds: 86_400, codeValiditySeconds: 86_400 }));
    const enrolled = await runMain([...S, '--config', path, 'enroll', 'email', '--user', 'bounds', '--to', 'b@example.com', '--confirmed', '--json']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const challenge = await runMain([...S, '--config', path, 'challenge', '--device', enrolled.json!.deviceId, '--json'], {});
    expect(challenge.code, challenge.stderr).toBe(0);
    expect(challenge.json!.validUntil).toBe(new Date(T + 86_400_000).toISOString());
    expect((await runMain([...S, 'show', '--device', enrolled.json!.deviceId])).code).toBe(0);
  });
});

// ---- --store and --vault ---------------------------------------------------------------------

describe('--store and --vault that cannot be used', () => {
  const isRoot = process.getuid?.() === 0;
  it.each([
    ['a missing directory', (): string => `sqlite:${join(box.dir, 'no', 'such', 'dir', 'fs.db')}`, 2, /the directory .*no\/such\/dir does not exist; create it first/],
    ['a directory', (): string => `sqlite:${box.dir}`, 2, /names a directory, not a database file/],
    [
      'a file that is not a database',
      (): string => {
        const p = join(box.dir, 'not-a-db.db');
        writeFileSync(p, 'this is a text file, not SQLite\n'.repeat(200));
        return `sqlite:${p}`;
      },
      3,
      /is not a usable SQLite database/,
    ],
    ['an unsupported scheme', (): string => 'mysql://localhost/x', 2, /unsupported event store "mysql:\/\/localhost\/x"/],
    ['sqlite with //', (): string => 'sqlite://fs.db', 2, /without "\/\/"/],
    ['an empty value', (): string => '', 2, /unsupported event store|names no file/],
    ['PostgreSQL on a closed port', (): string => 'postgres://nobody:hunter2secret@127.0.0.1:1/x', 3, /PostgreSQL at postgres:\/\/nobody:\*+@127\.0\.0\.1:1\/x is unavailable/],
    ['PostgreSQL on a host that does not resolve', (): string => 'postgres://nobody@no-such-host.invalid:5432/x', 3, /PostgreSQL at .*no-such-host\.invalid.* is unavailable/],
  ] as const)('%s', async (_, url, exit, names) => {
    const store = url();
    const before = readdirSync(box.dir).length;
    const r = await runMain(['--store', store, 'devices', '--user', 'x']);
    expectOneLine(r, exit, names);
    expect(r.stderr).not.toContain('hunter2secret');
    expect(readdirSync(box.dir).length, 'a file was left behind').toBe(before);
  });

  it.skipIf(isRoot)('a read-only database file', async () => {
    const ro = cliSandbox('fs-ro-');
    try {
      expect((await runMain(['--store', ro.store, 'devices', '--user', 'x'])).code).toBe(0);
      chmodSync(ro.db, 0o444);
      chmodSync(ro.dir, 0o555);
      expectOneLine(await runMain(['--store', ro.store, 'enroll', 'totp', '--user', 'x']), 3, /SQLite database .*fs\.db/);
    } finally {
      chmodSync(ro.dir, 0o755);
      ro.remove();
    }
  });

  it('a --vault in a missing directory leaves no empty event database behind', async () => {
    const dir = join(box.dir, 'vault-case');
    mkdirSync(dir);
    const r = await runMain(['--store', `sqlite:${join(dir, 'fs.db')}`, '--vault', `sqlite:${join(dir, 'missing', 'keys.db')}`, 'devices', '--user', 'x']);
    expectOneLine(r, 2, /--vault sqlite:.*missing\/keys\.db: the directory .* does not exist/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

// ---- import django-otp -------------------------------------------------------------------------

const totpRow = (pk: number, fields: Record<string, unknown> = {}) => ({
  model: 'otp_totp.totpdevice',
  pk,
  fields: { user: 1, name: `Phone ${pk}`, confirmed: true, key: SECRET_HEX, step: 30, t0: 0, digits: 6, tolerance: 1, drift: 0, last_t: -1, throttling_failure_count: 0, throttling_failure_timestamp: null, ...fields },
});
const userRow = (pk: number, username: string) => ({ model: 'auth.user', pk, fields: { username, email: `${username}@example.com` } });

describe('import django-otp', () => {
  const dump = (name: string, content: unknown) => {
    const path = join(box.dir, `dump-${name.replace(/\W+/g, '-')}.json`);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };

  it.each([
    ['malformed JSON', `[{"model": "otp_totp.totpdevice", "fields": {"key": "${SECRET_HEX}"`, /is not valid JSON \(at character \d+\)/],
    ['YAML', '- model: otp_totp.totpdevice\n', /is not valid JSON.*not XML or YAML/],
    ['an object, not a list', { model: 'otp_totp.totpdevice' }, /is not a dumpdata file: it is not a JSON list/],
    ['rows without a model', [{ pk: 1 }], /item 1 has no "model"/],
    ['rows whose fields are not an object', [{ model: 'otp_totp.totpdevice', pk: 1, fields: [] }], /item 1 has no "fields" object/],
    ['a list of numbers', [1, 2, 3], /item 1 has no "model"/],
    ['no devices', [userRow(1, 'alice')], /holds no django-otp devices/],
  ])('%s: exit 2, one line, nothing written', async (name, content, names) => {
    const store = `sqlite:${join(box.dir, `import-${name.replace(/\W+/g, '-')}.db`)}`;
    const r = await runMain(['--store', store, 'import', 'django-otp', dump(name, content)]);
    expectOneLine(r, 2, names);
    expect(r.stderr).not.toContain(SECRET_HEX);
  });

  it('a 100 MB file is refused without being read whole', async () => {
    const path = dump('huge', '');
    truncateSync(path, 100 * 1024 * 1024);
    const r = await runMain([...S, 'import', 'django-otp', path]);
    expectOneLine(r, 2, new RegExp(`larger than ${MAX_DUMP_BYTES / 1024 / 1024} MiB`));
  });

  it('rows of the wrong shape, keys of the wrong length, duplicate primary keys and missing users: each device says why', async () => {
    const path = dump('mixed', [
      userRow(1, 'alice'),
      totpRow(1),
      totpRow(1, { name: 'the same pk again' }),
      totpRow(2, { key: '00112233' }), // 4 bytes
      totpRow(3, { key: 'ab'.repeat(200) }), // 200 bytes
      totpRow(4, { key: 'xyz' }),
      totpRow(5, { step: 'thirty' }),
      totpRow(6, { throttling_failure_timestamp: 'yesterday' }),
      totpRow(7, { user: 99 }), // no auth.user row: named by the Django user id
      totpRow(8, { user: null }),
      { model: 'otp_email.emaildevice', pk: 1, fields: { user: 42, name: 'Mail', confirmed: true, email: null } },
      { model: 'otp_static.statictoken', pk: 1, fields: { device: 77, token: 'abcd2345' } },
    ]);
    const r = await runMain([...S, 'import', 'django-otp', path, '--json']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.json!.error.code).toBe('import-incomplete');
    const byRef = Object.fromEntries((r.json!.devices as { reference: string; status: string; reason?: string; userId: string }[]).map((d) => [d.reference, d]));
    expect(byRef['otp_totp.totpdevice/1']).toMatchObject({ status: 'skipped', reason: 'it appears twice in the dump' });
    expect(byRef['otp_totp.totpdevice/2']).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/4 bytes long; factorstream needs at least 10/) });
    expect(byRef['otp_totp.totpdevice/3']).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/200 bytes long; factorstream takes at most 128/) });
    expect(byRef['otp_totp.totpdevice/4']).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/not valid hexadecimal/) });
    expect(byRef['otp_totp.totpdevice/5']).toMatchObject({ status: 'skipped', reason: 'step is not a whole number' });
    expect(byRef['otp_totp.totpdevice/6']).toMatchObject({ status: 'skipped', reason: 'throttling_failure_timestamp is not a date and time' });
    expect(byRef['otp_totp.totpdevice/7']).toMatchObject({ status: 'imported', userId: '99', userFrom: 'pk' });
    expect(byRef['otp_totp.totpdevice/8']).toMatchObject({ status: 'skipped', reason: 'it has no user' });
    expect(byRef['otp_email.emaildevice/1']).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/dump has no row for its user/) });
    expect(r.json!.warnings).toContain('1 static token(s) belong to static devices that are not in the dump: left out');
    expect(r.stdout + r.stderr).not.toContain(SECRET_HEX);
  });

  it('--dry-run creates no store and no key file', async () => {
    const dir = join(box.dir, 'dry');
    mkdirSync(dir);
    const r = await runMain(['--store', `sqlite:${join(dir, 'fs.db')}`, 'import', 'django-otp', dump('dry', [userRow(1, 'alice'), totpRow(1)]), '--dry-run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json!.summary).toMatchObject({ wouldImport: 1, imported: 0 });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('an import killed mid-way (SIGKILL) and run again finishes, and imports nothing twice', async () => {
    const kill = cliSandbox('fs-kill-');
    try {
      const rows = [userRow(1, 'alice'), ...Array.from({ length: 200 }, (_, i) => totpRow(i + 1))];
      rows.push({ model: 'otp_static.staticdevice', pk: 1, fields: { user: 1, name: 'Backup', confirmed: true, throttling_failure_count: 0, throttling_failure_timestamp: null } } as never);
      for (const [i, token] of ['abcd2345', 'zyxw7654', 'mnop2345'].entries()) rows.push({ model: 'otp_static.statictoken', pk: i + 1, fields: { device: 1, token } } as never);
      const file = join(kill.dir, 'dump.json');
      writeFileSync(file, JSON.stringify(rows));
      const registered = () => {
        if (!existsSync(kill.db)) return 0;
        const db = new Database(kill.db, { readonly: true, fileMustExist: true });
        try {
          return (db.prepare("SELECT count(*) AS n FROM events WHERE type = 'DeviceRegistered'").get() as { n: number }).n;
        } catch {
          return 0;
        } finally {
          db.close();
        }
      };
      const child = spawn(process.execPath, [BIN, '--store', kill.store, '--now', NOW, 'import', 'django-otp', file], { cwd: kill.dir, stdio: 'ignore' });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      // Kill it once some, not all, devices are in.
      for (let i = 0; i < 3000 && registered() < 20; i++) await new Promise((r) => setTimeout(r, 10));
      child.kill('SIGKILL');
      await exited;
      const before = registered();
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThan(201);

      const again = await runMain(['--store', kill.store, '--now', NOW, 'import', 'django-otp', file, '--json']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.json!.summary.imported + again.json!.summary.alreadyImported).toBe(201);
      const db = new Database(kill.db, { readonly: true });
      try {
        const perDevice = db.prepare("SELECT stream_name, count(*) AS n FROM events WHERE type = 'DeviceRegistered' GROUP BY stream_name HAVING n > 1").all();
        expect(perDevice).toEqual([]);
        expect((db.prepare("SELECT count(*) AS n FROM events WHERE type = 'DeviceRegistered'").get() as { n: number }).n).toBe(201);
        expect((db.prepare("SELECT count(*) AS n FROM events WHERE type = 'StaticTokensIssued'").get() as { n: number }).n).toBe(1);
      } finally {
        db.close();
      }
      // A third run finds everything there.
      const third = await runMain(['--store', kill.store, '--now', NOW, 'import', 'django-otp', file, '--json']);
      expect(third.json!.summary).toMatchObject({ imported: 0, alreadyImported: 201 });
    } finally {
      kill.remove();
    }
  }, 120_000);
});
