/**
 * The django-otp import without Django: a hand-written file in dumpdata's exact format (what
 * `manage.py dumpdata --indent 1` writes) for every rule of the import, the command run in
 * process, a store that fails half way, and the engine's given-codes option it relies on.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importCommandId, importDjangoOtp, parseDjangoTime, parseDump, planImport, readDump } from '../../adapters/cli/django-import.ts';
import { main } from '../../adapters/cli/main.ts';
import { loadConfig } from '../../adapters/cli/parse.ts';
import { openRuntime, type Runtime } from '../../adapters/cli/runtime.ts';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { createEngine, type Engine } from '../../app/engine.ts';
import { StoreError, type EventStore } from '../../domain/ports.ts';

const T = Date.UTC(2026, 0, 15, 12, 0, 0);
const KEY10 = '0a1b2c3d4e5f60718293';
const KEY12_UPPER = 'ABCDEF0123456789ABCDEF01';

const user = (pk: number, username: string, email: string) => ({
  model: 'auth.user',
  pk,
  fields: {
    password: 'pbkdf2_sha256$260000$x$y=', last_login: null, is_superuser: false, username, first_name: '', last_name: '', email,
    is_staff: false, is_active: true, date_joined: '2025-12-01T09:00:00.123Z', groups: [], user_permissions: [],
  },
});
const totp = (pk: number, fields: Record<string, unknown>) => ({
  model: 'otp_totp.totpdevice',
  pk,
  fields: {
    user: 1, name: `TOTP ${pk}`, confirmed: true, throttling_failure_timestamp: null, throttling_failure_count: 0,
    key: KEY10, step: 30, t0: 0, digits: 6, tolerance: 1, drift: 0, last_t: -1, ...fields,
  },
});

/** Every rule of the import, in the shape dumpdata writes. */
const FIXTURE = [
  { model: 'contenttypes.contenttype', pk: 1, fields: { app_label: 'auth', model: 'user' } },
  user(1, 'ann', 'ann@example.com'),
  user(2, 'ben', ''),
  totp(10, { name: 'Phone', last_t: 58949280, drift: 1 }),
  totp(11, { user: 2, key: '0a1b2c3d4e5f607182934' }), // odd number of hex digits
  totp(12, { user: 2, key: '0a1b2c3d4e5f607182' }), // 9 bytes
  totp(13, { digits: 7 }),
  totp(14, { t0: -30 }),
  // A user with no auth.user row; a naive timestamp (USE_TZ = False) with microseconds.
  totp(15, { user: 99, throttling_failure_count: 2, throttling_failure_timestamp: '2026-01-15T11:59:59.250001' }),
  totp(16, { key: KEY12_UPPER, drift: 9, name: '' }),
  totp(10, {}), // the same row twice
  {
    model: 'otp_hotp.hotpdevice',
    pk: 3,
    fields: { user: 2, name: 'Fob', confirmed: false, throttling_failure_timestamp: '2026-01-15T11:59:58Z', throttling_failure_count: 1, key: KEY10, digits: 8, tolerance: 100, counter: 42 },
  },
  { model: 'otp_static.staticdevice', pk: 5, fields: { user: 2, name: 'Backup codes', confirmed: true, throttling_failure_timestamp: null, throttling_failure_count: 0 } },
  { model: 'otp_static.statictoken', pk: 1, fields: { device: 5, token: 'ABCD2345' } },
  { model: 'otp_static.statictoken', pk: 2, fields: { device: 5, token: 'abc' } },
  { model: 'otp_static.statictoken', pk: 3, fields: { device: 5, token: 'q1w2e3r4' } },
  { model: 'otp_static.statictoken', pk: 4, fields: { device: 77, token: 'orphan22' } },
  {
    model: 'otp_email.emaildevice',
    pk: 8,
    fields: { user: 2, name: 'Mail', confirmed: true, token: null, valid_until: '2026-01-15T11:00:00Z', throttling_failure_timestamp: null, throttling_failure_count: 0, email: null },
  },
  {
    model: 'otp_email.emaildevice',
    pk: 9,
    fields: { user: 1, name: 'Work', confirmed: true, token: '123456', valid_until: '2026-01-15T12:04:00Z', throttling_failure_timestamp: null, throttling_failure_count: 0, email: 'ann.work@example.org' },
  },
  { model: 'otp_yubikey.remoteyubikeydevice', pk: 1, fields: { user: 1, name: 'YubiKey', confirmed: true, public_id: 'cccccc' } },
];

const dir = mkdtempSync(join(tmpdir(), 'fs-import-unit-'));
const fixtureFile = join(dir, 'dump.json');
writeFileSync(fixtureFile, JSON.stringify(FIXTURE, null, 1));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the command in this process; returns its exit code and parsed --json output. */
const cli = async (args: string[]) => {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), env: {} });
  return { code, stdout, stderr, json: args.includes('--json') ? (JSON.parse(stdout) as Record<string, any>) : null };
};

describe('reading a dumpdata file', () => {
  it('refuses what is not a dumpdata JSON list, without quoting the content', () => {
    const secret = 'deadbeefdeadbeefdeadbeef';
    expect(() => parseDump(`[{"model": "otp_totp.totpdevice", "fields": {"key": "${secret}"`, 'd.json')).toThrow(/d\.json is not valid JSON \(at character \d+\)/);
    try {
      parseDump(`{"key": "${secret}" oops}`, 'd.json');
    } catch (e) {
      expect((e as Error).message).not.toContain(secret);
    }
    expect(() => parseDump('- model: otp_totp.totpdevice', 'd.yaml')).toThrow(/not valid JSON.*not XML or YAML/);
    expect(() => parseDump('{}', 'd.json')).toThrow(/not a dumpdata file: it is not a JSON list/);
    expect(() => parseDump('[{"model": "auth.user"}]', 'd.json')).toThrow(/item 1 has no "fields" object/);
    expect(() => readDump(join(dir, 'missing.json'))).toThrow(/cannot read .*missing\.json: no such file/);
  });

  it('reads Django date-times: UTC, offsets, and naive ones as UTC; sub-millisecond fractions round up', () => {
    const notes: string[] = [];
    expect(parseDjangoTime('2026-01-15T12:00:08.500Z', 'ts', notes)).toBe(Date.UTC(2026, 0, 15, 12, 0, 8, 500));
    expect(parseDjangoTime('2026-01-15T13:00:08+01:00', 'ts', notes)).toBe(Date.UTC(2026, 0, 15, 12, 0, 8));
    expect(notes).toEqual([]);
    expect(parseDjangoTime('2026-01-15T12:00:08.500001', 'ts', notes)).toBe(Date.UTC(2026, 0, 15, 12, 0, 8, 501));
    expect(notes).toEqual(['ts has no time zone (USE_TZ = False): read as UTC']);
    expect(parseDjangoTime(null, 'ts', notes)).toBeNull();
    expect(() => parseDjangoTime('yesterday', 'ts', [])).toThrow(/ts is not a date and time/);
  });

  it('keeps microseconds to the millisecond the safe way: a throttle start rounds up, an expiry down', () => {
    const at = (ms: number) => Date.UTC(2026, 0, 15, 12, 0, 8, ms);
    for (const [text, up, down] of [
      ['2026-01-15T12:00:08.123456Z', 124, 123],
      ['2026-01-15T12:00:08.123000Z', 123, 123],
      ['2026-01-15T12:00:08.000001Z', 1, 0],
      ['2026-01-15T12:00:08.999999Z', 1000, 999],
      ['2026-01-15T12:00:08Z', 0, 0],
    ] as const) {
      expect(parseDjangoTime(text, 'ts', []), text).toBe(at(up));
      expect(parseDjangoTime(text, 'ts', [], 'down'), text).toBe(at(down));
    }
  });

  it('an e-mail code pending in the dump is carried over (valid_until rounded down), or said why not', () => {
    const row = (pk: number, fields: Record<string, unknown>) => ({
      model: 'otp_email.emaildevice',
      pk,
      fields: { user: 1, name: 'Mail', confirmed: true, email: 'm@example.com', throttling_failure_count: 0, throttling_failure_timestamp: null, ...fields },
    });
    const plan = planImport([
      row(1, { token: '135790', valid_until: '2026-01-15T12:05:00.999999Z' }),
      row(2, { token: 'abc', valid_until: '2026-01-15T12:05:00Z' }),
      row(3, { token: null, valid_until: '2026-01-15T12:05:00Z' }),
    ]);
    const [one, two, three] = plan.devices;
    expect(one!.input).toMatchObject({ pendingCode: { code: '135790', validUntil: Date.UTC(2026, 0, 15, 12, 5, 0, 999) } });
    expect(one!.notes.join(' ')).toMatch(/stays valid until 2026-01-15T12:05:00\.999Z/);
    expect(JSON.stringify(one!.notes)).not.toContain('135790');
    expect(two!.input).not.toHaveProperty('pendingCode');
    expect(two!.notes.join(' ')).toMatch(/was not carried over/);
    expect(three!.input).not.toHaveProperty('pendingCode');
  });

  it('the imported pending code verifies strictly before its valid_until, to the millisecond, and only once', async () => {
    const engine = createEngine({ store: createMemoryEventStore(), vault: createMemoryVault(), sender: { send: async () => ({ ok: true }) }, clock: { now: () => T }, random: { bytes: (n) => randomBytes(n) } });
    const validUntil = T + 120_123;
    const register = async () => {
      const r = await engine.register({ kind: 'email', userId: `u${Math.random()}`, destination: 'm@example.com', confirmed: true, pendingCode: { code: '135790', validUntil } })();
      if (r._tag === 'Left') throw new Error(r.left.message);
      return r.right.deviceId;
    };
    const verify = async (device: string, at: number, token = '135790') => {
      const r = await engine.verify(device, token, { now: at })();
      return r._tag === 'Right' ? r.right : null;
    };
    // Each instant on a device of its own: a refused code is a failure, and the next try waits.
    expect(await verify(await register(), validUntil)).toMatchObject({ ok: false, reason: 'expired' });
    expect(await verify(await register(), validUntil + 1)).toMatchObject({ ok: false, reason: 'expired' });
    const b = await register();
    expect(await verify(await register(), validUntil - 1, '246801')).toMatchObject({ ok: false, reason: 'invalid' });
    expect(await verify(b, validUntil - 1)).toMatchObject({ ok: true });
    expect(await verify(b, validUntil - 1)).toMatchObject({ ok: false, reason: 'no-challenge' });
    // Only e-mail and SMS devices take one; the code is 6 or 8 digits, never echoed.
    const wrong = await engine.register({ kind: 'email', userId: 'x', destination: 'm@example.com', pendingCode: { code: '12ab56', validUntil } } as never)();
    expect(wrong._tag === 'Left' && wrong.left.message).toMatch(/pendingCode\.code must be 6 or 8 digits/);
    expect(wrong._tag === 'Left' && wrong.left.message).not.toContain('12ab56');
  });
});

describe('planning an import', () => {
  const plan = planImport(parseDump(JSON.stringify(FIXTURE), 'dump.json'));
  const byRef = (ref: string) => plan.devices.filter((d) => d.reference === ref);
  const one = (ref: string) => byRef(ref)[0]!;

  it('imports TOTP devices with every parameter django-otp had, keyed from 10 bytes up', () => {
    const d = one('otp_totp.totpdevice/10');
    expect(d).toMatchObject({ kind: 'totp', userId: 'ann', userFrom: 'auth.user' });
    expect(d.skip).toBeUndefined();
    expect(d.input).toMatchObject({
      kind: 'totp', userId: 'ann', name: 'Phone', confirmed: true, algorithm: 'SHA1', digits: 6, step: 30, t0: 0, tolerance: 1, drift: 1, lastStep: 58949280,
      origin: { system: 'django-otp', reference: 'otp_totp.totpdevice/10' },
    });
    expect(Buffer.from((d.input as { secret: Uint8Array }).secret).toString('hex')).toBe(KEY10);
    expect(d.input).not.toHaveProperty('throttle');
    // Upper-case hex, no name (the engine's default name), a drift beyond maxDrift (kept, with a note).
    const upper = one('otp_totp.totpdevice/16');
    expect(Buffer.from((upper.input as { secret: Uint8Array }).secret).toString('hex')).toBe(KEY12_UPPER.toLowerCase());
    expect(upper.input).not.toHaveProperty('name');
    expect(upper.input).toMatchObject({ drift: 9 });
    expect(upper.notes.join()).toMatch(/drift of 9 steps is beyond maxDrift \(4\).*capped at ±4/);
  });

  it('skips what django-otp itself could not use, or factorstream cannot take, with the reason and without the key', () => {
    expect(one('otp_totp.totpdevice/11').skip).toMatch(/not valid hexadecimal with an even number of digits/);
    expect(one('otp_totp.totpdevice/12').skip).toMatch(/9 bytes long; factorstream needs at least 10/);
    expect(one('otp_totp.totpdevice/13').skip).toMatch(/digits must be one of 6, 8/);
    expect(one('otp_totp.totpdevice/14').skip).toMatch(/t0 must be a whole number from 0/);
    const twice = byRef('otp_totp.totpdevice/10');
    expect(twice).toHaveLength(2);
    expect(twice[1]!.skip).toBe('it appears twice in the dump');
    expect(one('otp_yubikey.remoteyubikeydevice/1').skip).toMatch(/otp_yubikey.remoteyubikeydevice devices are not supported/);
    for (const d of plan.devices) expect(d.skip ?? '').not.toContain(KEY10);
  });

  it('names users by username from auth.user rows, else by their Django id, and says so', () => {
    expect(one('otp_totp.totpdevice/15')).toMatchObject({ userId: '99', userFrom: 'pk' });
    expect(plan.users.source).toBe('mixed');
    const pkOnly = planImport(parseDump(JSON.stringify(FIXTURE.filter((r) => r.model !== 'auth.user')), 'd.json'));
    expect(pkOnly.users).toMatchObject({ source: 'pk', note: expect.stringMatching(/Django user id.*--natural-foreign/) });
    expect(pkOnly.devices.find((d) => d.reference === 'otp_totp.totpdevice/10')).toMatchObject({ userId: '1', userFrom: 'pk' });
    const custom = planImport(parseDump(JSON.stringify(FIXTURE.map((r) => (r.model === 'auth.user' ? { ...r, model: 'accounts.user' } : r))), 'd.json'), { userModel: 'accounts.user' });
    expect(custom.devices.find((d) => d.reference === 'otp_totp.totpdevice/10')).toMatchObject({ userId: 'ann', userFrom: 'auth.user' });
  });

  it('carries the throttling state over; a naive timestamp is read as UTC, with a note', () => {
    expect(one('otp_totp.totpdevice/15').input).toMatchObject({ throttle: { failureCount: 2, lastFailureAt: Date.UTC(2026, 0, 15, 11, 59, 59, 251) } });
    expect(one('otp_totp.totpdevice/15').notes).toContain('throttling_failure_timestamp has no time zone (USE_TZ = False): read as UTC');
    expect(one('otp_hotp.hotpdevice/3').input).toMatchObject({
      kind: 'hotp', userId: 'ben', confirmed: false, digits: 8, tolerance: 100, counter: 42,
      throttle: { failureCount: 1, lastFailureAt: Date.UTC(2026, 0, 15, 11, 59, 58) },
    });
  });

  it('brings static tokens that can be typed, and says what it left out', () => {
    const s = one('otp_static.staticdevice/5');
    expect(s.input).toMatchObject({ kind: 'static', userId: 'ben', name: 'Backup codes' });
    expect(s.tokens).toEqual(['abcd2345', 'q1w2e3r4']);
    expect(s.notes.join('\n')).toMatch(/1 of 3 static token\(s\) left out/);
    expect(s.notes.join('\n')).toMatch(/1 static token\(s\) have capitals/);
    expect(plan.warnings.join('\n')).toMatch(/1 static token\(s\) belong to static devices that are not in the dump/);
    expect(plan.warnings.join('\n')).toMatch(/ignored: contenttypes\.contenttype \(1\)/);
  });

  it("sends e-mail to the device's address, else its user's; with neither it is skipped", () => {
    expect(one('otp_email.emaildevice/9').input).toMatchObject({ kind: 'email', userId: 'ann', destination: 'ann.work@example.org' });
    // Issue 14: the pending code is now carried over (it was dropped before), valid until django-otp's valid_until.
    expect(one('otp_email.emaildevice/9').input).toMatchObject({ pendingCode: { code: '123456', validUntil: Date.UTC(2026, 0, 15, 12, 4, 0) } });
    expect(one('otp_email.emaildevice/9').notes.join()).toMatch(/code sent before the import stays valid until 2026-01-15T12:04:00\.000Z/);
    expect(one('otp_email.emaildevice/8').skip).toBe('neither it nor its user has an e-mail address');
  });
});

describe('the import command, in process', () => {
  it('imports, reports each device, is idempotent, and --dry-run writes nothing', async () => {
    const store = `sqlite:${join(dir, 'a.db')}`;
    const dry = await cli(['--store', store, '--now', `@${T / 1000}`, '--json', 'import', 'django-otp', fixtureFile, '--dry-run']);
    expect(dry.code).toBe(2);
    expect(dry.json).toMatchObject({ dryRun: true, summary: { imported: 0, alreadyImported: 0, skipped: 7, wouldImport: 6 } });
    const none = await cli(['--store', store, '--json', 'devices', '--user', 'ann']);
    expect(none.json!.devices).toEqual([]);

    const first = await cli(['--store', store, '--now', `@${T / 1000}`, 'import', 'django-otp', fixtureFile]);
    expect(first.code).toBe(2);
    expect(first.stdout).toMatch(/^django-otp import from .*dump\.json: 6 device\(s\) imported, 0 already imported, 7 skipped$/m);
    expect(first.stdout).toMatch(/^ {2}imported {9}otp_totp\.totpdevice\/15 -> totp\/\S+ {2}user 99 \(Django user id\)$/m);
    expect(first.stdout).toMatch(/^ {2}skipped {10}otp_totp\.totpdevice\/12 {2}user ben: its key is 9 bytes long/m);
    expect(first.stdout).toMatch(/otp_static\.staticdevice\/5 -> static\/\S+ {2}user ben {2}2 token\(s\)$/m);
    expect(first.stderr).toMatch(/^factorstream: 7 device\(s\) could not be imported/m);
    expect(first.stdout + first.stderr).not.toMatch(new RegExp(`${KEY10}|abcd2345|q1w2e3r4|ann\\.work@`, 'i'));

    const again = await cli(['--store', store, '--now', `@${T / 1000 + 60}`, '--json', 'import', 'django-otp', fixtureFile]);
    expect(again.json).toMatchObject({ summary: { imported: 0, alreadyImported: 6, skipped: 7 } });

    // The static tokens work, once each, typed in either case.
    const [upper, lower, other] = [
      await cli(['--store', store, '--now', `@${T / 1000 + 100}`, '--json', 'match', '--user', 'ben', '--token', 'ABCD2345']),
      await cli(['--store', store, '--now', `@${T / 1000 + 200}`, '--json', 'match', '--user', 'ben', '--token', 'abcd2345']),
      await cli(['--store', store, '--now', `@${T / 1000 + 300}`, '--json', 'match', '--user', 'ben', '--token', 'q1w2e3r4']),
    ];
    expect([upper.code, lower.code, other.code]).toEqual([0, 1, 0]);
  });

  it('finishes a static device whose tokens an interrupted run did not issue, and never issues them twice', async () => {
    const store = `sqlite:${join(dir, 'b.db')}`;
    const plan = planImport(parseDump(JSON.stringify(FIXTURE), 'dump.json'));
    const s = plan.devices.find((d) => d.reference === 'otp_static.staticdevice/5')!;
    // An earlier run registered the device and stopped before its tokens.
    const rt = await openRuntime({ store, now: T, config: loadConfig(undefined) });
    try {
      const r = await rt.engine.register(s.input!, { commandId: importCommandId(s.reference) })();
      expect(r._tag).toBe('Right');
    } finally {
      await rt.close();
    }
    const resumed = await cli(['--store', store, '--now', `@${T / 1000}`, '--json', 'import', 'django-otp', fixtureFile]);
    expect(resumed.json!.devices.find((d: { reference: string }) => d.reference === s.reference)).toMatchObject({ status: 'already-imported' });
    const used = await cli(['--store', store, '--now', `@${T / 1000}`, '--json', 'match', '--user', 'ben', '--token', 'q1w2e3r4']);
    expect(used.code).toBe(0);
    await cli(['--store', store, '--now', `@${T / 1000 + 10}`, '--json', 'import', 'django-otp', fixtureFile]);
    const reused = await cli(['--store', store, '--now', `@${T / 1000 + 20}`, '--json', 'match', '--user', 'ben', '--token', 'q1w2e3r4']);
    expect(reused.code).toBe(1);
  });

  it('a store that fails half way: exit 3, what was done is reported, and a second run completes it', async () => {
    const memory = createMemoryEventStore({ now: () => T });
    let appends = 0;
    let failAfter = 4;
    const flaky: EventStore = {
      ...memory,
      appendToStream: async (...args: Parameters<EventStore['appendToStream']>) => {
        if (++appends > failAfter) throw new StoreError('unavailable', 'the database went away');
        return memory.appendToStream(...args);
      },
    };
    const engine: Engine = createEngine({ store: flaky, vault: createMemoryVault(), clock: { now: () => T }, random: { bytes: (n) => new Uint8Array(randomBytes(n)) } });
    const rt = { engine } as unknown as Runtime;
    const g = { store: 'memory:', config: loadConfig(undefined), now: T };
    const stopped = await importDjangoOtp(rt, g, fixtureFile, {});
    expect(stopped.exit).toBe(3);
    expect(stopped.json).toMatchObject({
      ok: false,
      summary: { imported: 2, notReached: expect.any(Number) },
      error: { code: 'store-unavailable', message: expect.stringMatching(/stopped at otp_totp\.totpdevice\/16: the database went away.*Run it again/) },
    });
    failAfter = Infinity;
    const completed = await importDjangoOtp(rt, g, fixtureFile, {});
    expect(completed.exit).toBe(2);
    expect(completed.json).toMatchObject({ summary: { imported: 4, alreadyImported: 2, skipped: 7 } });
  });
});

describe('engine: issueBackupCodes with given codes (what the import issues static tokens with)', () => {
  const setup = () =>
    createEngine({ store: createMemoryEventStore({ now: () => T }), vault: createMemoryVault(), clock: { now: () => T }, random: { bytes: (n) => new Uint8Array(randomBytes(n)) } });

  it('stores the given codes as digests (normalised to lower case); each works once', async () => {
    const engine = setup();
    const s = await engine.register({ kind: 'static', userId: 'zoe' })();
    if (s._tag === 'Left') throw new Error(s.left.message);
    const issued = await engine.issueBackupCodes({ device: s.right.deviceId }, { codes: ['ABCD2345', 'wxyz7654', 'wxyz7654'], commandId: 'import-1' })();
    expect(issued).toMatchObject({ _tag: 'Right', right: { codes: ['abcd2345', 'wxyz7654', 'wxyz7654'], replayed: false } });
    const history = await engine.history(s.right.deviceId)();
    expect(JSON.stringify(history)).not.toMatch(/abcd2345|wxyz7654/i);
    const results: boolean[] = [];
    for (const token of ['abcd2345', 'abcd2345', 'wxyz7654', 'wxyz7654', 'wxyz7654']) {
      const r = await engine.verify(s.right.deviceId, token, { now: T + results.length * 10_000 })();
      results.push(r._tag === 'Right' && r.right.ok);
    }
    expect(results).toEqual([true, false, true, true, false]);
    // The same command id again: nothing issued, no codes shown.
    const replay = await engine.issueBackupCodes({ device: s.right.deviceId }, { codes: ['abcd2345'], commandId: 'import-1' })();
    expect(replay).toMatchObject({ _tag: 'Right', right: { codes: [], replayed: true } });
  });

  it('refuses codes that cannot be typed, an empty list, and codes with a count; the code is not echoed', async () => {
    const engine = setup();
    const s = await engine.register({ kind: 'static', userId: 'zoe' })();
    if (s._tag === 'Left') throw new Error(s.left.message);
    const device = { device: s.right.deviceId };
    const bad = await engine.issueBackupCodes(device, { codes: ['good2345', 'bad-one!'] })();
    expect(bad).toMatchObject({ _tag: 'Left', left: { code: 'invalid-command', message: 'codes[1] is not a backup code: 4–16 letters and digits' } });
    expect(await engine.issueBackupCodes(device, { codes: [] })()).toMatchObject({ _tag: 'Left', left: { code: 'invalid-command' } });
    expect(await engine.issueBackupCodes(device, { codes: ['good2345'], count: 1 })()).toMatchObject({ _tag: 'Left', left: { code: 'invalid-command' } });
    const view = await engine.device(s.right.deviceId)();
    expect(view).toMatchObject({ _tag: 'Right', right: { backupCodesLeft: 0 } });
  });
});
