/**
 * `factorstream import django-otp` on a dumpdata file made by django-otp itself (Debian's
 * python3-django-otp, installed by .ci/run): a tiny Django site is created with devices of
 * every supported kind and non-default parameters, django-otp says which codes it would
 * accept at a fixed instant, the dump is imported with the real CLI, and the imported devices
 * must accept exactly those codes.
 */
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDump, planImport } from '../../adapters/cli/django-import.ts';
import { loadConfig } from '../../adapters/cli/parse.ts';
import { openRuntime } from '../../adapters/cli/runtime.ts';
import { at, cliSandbox, REPO } from './run.ts';

const run = promisify(execFile);

/** The Python that has django-otp: Debian's (the default python3 may be another one, e.g. pyenv's). */
const PYTHON = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import django_otp'], { stdio: 'ignore' }).status === 0);
if (!PYTHON) console.warn('django-otp is not installed (apt-get install python3-django-otp; .ci/run does): the django-otp import end-to-end test is skipped');

const NOW = 1_768_478_410; // 2026-01-15T12:00:10Z, 10 s into a 30 s step
const T = NOW * 1000;

interface Candidate {
  readonly code: string;
  readonly accepted: boolean;
  readonly step?: number;
  readonly counter?: number;
}
interface Expected {
  devices: {
    on_time: { ref: string; t: number; last_t: number; candidates: Candidate[] };
    drifted: { ref: string; candidates: Candidate[] };
    locked: { ref: string; locked_until: number; failure_count: number; candidates_now: Candidate[]; candidates_after: Candidate[]; accepted_at_unlock: boolean };
    hotp: { ref: string; candidates: Candidate[] };
    static: { ref: string; tokens: Record<string, boolean> };
    email_user: { ref: string; to: string };
    email_own: { ref: string; to: string; pending: { token: string; valid_until: string; valid_until_us: number; accepted: Record<'-1' | '0' | '1', boolean> } };
    short: { ref: string };
  };
}

interface ImportedDevice {
  reference: string;
  status: string;
  userId: string;
  userFrom: string;
  deviceId?: string;
  persistentId?: string;
  reason?: string;
  tokens?: number;
}

describe.skipIf(!PYTHON)('import django-otp: a dump made by django-otp itself', () => {
  const box = cliSandbox('fs-django-');
  const site = join(box.dir, 'site');
  let expected: Expected;
  let imported: Map<string, ImportedDevice>;
  const id = (ref: string) => imported.get(ref)!.deviceId!;

  beforeAll(async () => {
    await run(PYTHON!, [join(REPO, 'test/cli/django/make_site.py'), site, String(NOW)], { timeout: 120_000 });
    expected = JSON.parse(readFileSync(join(site, 'expected.json'), 'utf8')) as Expected;
    const apps = ['otp_totp', 'otp_hotp', 'otp_static', 'otp_email'];
    await Promise.all([
      run(PYTHON!, ['manage.py', 'dumpdata', 'auth.user', ...apps, '--indent', '2', '-o', join(box.dir, 'dump.json')], { cwd: site, timeout: 120_000 }),
      run(PYTHON!, ['manage.py', 'dumpdata', ...apps, '--natural-foreign', '-o', join(box.dir, 'natural.json')], { cwd: site, timeout: 120_000 }),
    ]);
  }, 240_000);
  afterAll(() => box.remove());

  it('imports every device django-otp can use, names the users, and says which device it skipped and why', async () => {
    const r = await box.run(['--now', at(T), 'import', 'django-otp', join(box.dir, 'dump.json'), '--json']);
    // One device (a key of 8 bytes) cannot come over: exit 2, with the rest imported.
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.json).toMatchObject({
      ok: false,
      users: { source: 'auth.user' },
      summary: { imported: 7, alreadyImported: 0, skipped: 1 },
      error: { code: 'import-incomplete' },
    });
    imported = new Map((r.json!.devices as ImportedDevice[]).map((d) => [d.reference, d]));
    const e = expected.devices;
    expect(imported.get(e.short.ref)).toMatchObject({ status: 'skipped', userId: 'carol', reason: expect.stringMatching(/8 bytes.*at least 10/) });
    for (const [name, user] of [['on_time', 'alice'], ['drifted', 'alice'], ['locked', 'bob'], ['hotp', 'bob'], ['static', 'alice'], ['email_user', 'alice'], ['email_own', 'bob']] as const)
      expect(imported.get(e[name].ref), name).toMatchObject({ status: 'imported', userId: user, userFrom: 'auth.user', deviceId: expect.any(String) });
    expect(imported.get(e.static.ref)!.tokens).toBe(3); // 'bad-token!' cannot be typed as a factorstream code
    // No key and no token in the report.
    const dump = readFileSync(join(box.dir, 'dump.json'), 'utf8');
    for (const key of [...dump.matchAll(/"key": "([0-9a-f]+)"/g)].map((m) => m[1]!)) expect(r.stdout + r.stderr).not.toContain(key);
    for (const token of Object.keys(e.static.tokens)) expect(r.stdout + r.stderr).not.toContain(token);

    // The devices as registered: parameters, throttling state and where each came from.
    const [drifted, hotp, locked, history] = await Promise.all([
      box.run(['show', '--device', id(e.drifted.ref), '--now', at(T), '--json']),
      box.run(['show', '--device', id(e.hotp.ref), '--now', at(T), '--json']),
      box.run(['show', '--device', id(e.locked.ref), '--now', at(T), '--json']),
      box.run(['history', '--device', id(e.on_time.ref), '--json']),
    ]);
    expect(drifted.json!.device).toMatchObject({
      name: 'Old token',
      confirmed: true,
      totp: { algorithm: 'SHA1', digits: 8, step: 60, t0: 1000, tolerance: 2, drift: -1, lastStep: -1 },
      origin: { system: 'django-otp', reference: e.drifted.ref },
    });
    expect(hotp.json!.device).toMatchObject({ hotp: { digits: 8, tolerance: 3, counter: 7 }, origin: { system: 'django-otp', reference: e.hotp.ref } });
    expect(locked.json!.device).toMatchObject({
      confirmed: false,
      throttle: { failureCount: 3, lockedUntil: new Date(e.locked.locked_until * 1000).toISOString() },
    });
    const first = (history.json!.events as { type: string; data: Record<string, any> }[])[0]!;
    expect(first).toMatchObject({
      type: 'DeviceRegistered',
      data: { origin: { system: 'django-otp', reference: e.on_time.ref }, config: { kind: 'totp', lastStep: e.on_time.last_t, drift: 0 } },
    });
  }, 120_000);

  it('each imported TOTP and HOTP device accepts exactly the codes django-otp accepts', async () => {
    const e = expected.devices;
    const checks: { name: string; device: string; at: number; candidates: Candidate[] }[] = [
      { name: 'on_time', device: id(e.on_time.ref), at: T, candidates: e.on_time.candidates },
      { name: 'drifted', device: id(e.drifted.ref), at: T, candidates: e.drifted.candidates },
      { name: 'hotp', device: id(e.hotp.ref), at: T, candidates: e.hotp.candidates },
      { name: 'locked now', device: id(e.locked.ref), at: T, candidates: e.locked.candidates_now },
      { name: 'locked after', device: id(e.locked.ref), at: (Math.floor(e.locked.locked_until) + 1) * 1000, candidates: e.locked.candidates_after },
    ];
    // django-otp accepts something in each window (or nothing, while locked).
    expect(checks.map((c) => c.candidates.filter((x) => x.accepted).length)).toEqual([1, 5, 4, 0, 3]);
    for (const c of checks)
      for (const candidate of c.candidates) {
        // Each code is tried on its own copy of the imported store, as django-otp tried each on the row as dumped.
        const outcome = await onCopy(box.db, c.at, async (engine) => engine.verify(c.device, candidate.code, { now: c.at })());
        expect(outcome._tag).toBe('Right');
        const v = outcome._tag === 'Right' ? outcome.right : null;
        expect(v?.ok, `${c.name}: ${JSON.stringify(candidate)} → ${JSON.stringify(v)}`).toBe(candidate.accepted);
        // The code of the step django-otp last accepted (last_t) is a replay.
        if (c.name === 'on_time' && candidate.step === e.on_time.last_t) expect(v).toMatchObject({ ok: false, reason: 'replay' });
        if (c.name === 'locked now') expect(v).toMatchObject({ ok: false, reason: 'throttled', retryAt: Math.round(e.locked.locked_until * 1000) });
      }
  }, 180_000);

  it('static tokens work once each (a duplicated token twice), as in django-otp', async () => {
    const e = expected.devices;
    const device = id(e.static.ref);
    const results = await onCopy(box.db, T, async (engine) => {
      const out: boolean[] = [];
      // 2 s apart: a failure locks the device for 1 s.
      let now = T;
      for (const token of ['abcd2345', 'abcd2345', 'zyxw7654', 'zyxw7654', 'zyxw7654', 'nope2345']) {
        const r = await engine.verify(device, token, { now })();
        out.push(r._tag === 'Right' && r.right.ok);
        now += 2_000;
      }
      return out;
    });
    expect(e.static.tokens).toEqual({ abcd2345: true, zyxw7654: true, nope2345: false });
    expect(results).toEqual([true, false, true, true, false, false]);
  }, 60_000);

  it('the e-mail code pending at the dump works to the millisecond as django-otp takes it (microseconds in the dump)', async () => {
    const p = expected.devices.email_own.pending;
    // django-otp: valid strictly before valid_until.
    expect(p.accepted).toEqual({ '-1': true, '0': false, '1': false });
    expect(p.valid_until).toMatch(/\.123456Z$/);
    // dumpdata's JSON keeps milliseconds only; a dump of another making (or a hand-edited one)
    // may hold Django's microseconds: both are imported, valid_until rounded down to the ms.
    const dump = JSON.parse(readFileSync(join(box.dir, 'dump.json'), 'utf8')) as { model: string; pk: number; fields: Record<string, unknown> }[];
    const row = dump.find((r) => `${r.model}/${r.pk}` === expected.devices.email_own.ref)!;
    expect(String(row.fields.valid_until)).toMatch(/^2026-01-15T12:01:50\.123/);
    row.fields.valid_until = p.valid_until;
    const plan = planImport(dump);
    const planned = plan.devices.find((d) => d.reference === expected.devices.email_own.ref)!;
    const validUntil = Math.floor(p.valid_until_us / 1000);
    expect(planned.input).toMatchObject({ pendingCode: { code: p.token, validUntil } });
    expect(JSON.stringify(planned.notes)).not.toContain(p.token);

    const device = id(expected.devices.email_own.ref);
    const tryAt = (ms: number, token = p.token) =>
      onCopy(box.db, ms, async (engine) => {
        const r = await engine.verify(device, token, { now: ms })();
        return r._tag === 'Right' ? r.right : null;
      });
    // The imported device: 1 ms before valid_until accepted; at it and 1 ms after refused (expired).
    expect(await tryAt(validUntil - 1)).toMatchObject({ ok: true });
    expect(await tryAt(validUntil)).toMatchObject({ ok: false, reason: 'expired' });
    expect(await tryAt(validUntil + 1)).toMatchObject({ ok: false, reason: 'expired' });
    expect(await tryAt(validUntil - 1, '000000')).toMatchObject({ ok: false, reason: 'invalid' });
    // The code is kept as a keyed digest, never in the clear.
    const history = await box.run(['history', '--device', device, '--json']);
    expect(history.stdout).not.toContain(p.token);
    expect((history.json!.events as { data: Record<string, any> }[])[0]!.data.pendingCode).toMatchObject({ validUntil, codeDigest: expect.any(String) });
  }, 60_000);

  it('through the CLI: the next code verifies, a replay and a locked device are refused, e-mail devices send to the right address', async () => {
    const e = expected.devices;
    const next = e.on_time.candidates.find((c) => c.accepted)!;
    const lockedCode = e.locked.candidates_after.find((c) => c.accepted && c.step === Math.floor(e.locked.locked_until / 30))!;
    const [ok, locked, backup, mailUser, mailOwn] = await Promise.all([
      box.run(['verify', '--device', id(e.on_time.ref), '--token', next.code, '--now', at(T), '--json']),
      box.run(['verify', '--device', id(e.locked.ref), '--token', lockedCode.code, '--now', at(T), '--json']),
      box.run(['match', '--user', 'alice', '--token', 'abcd2345', '--now', at(T), '--json']),
      box.run(['challenge', '--device', id(e.email_user.ref), '--now', at(T)]),
      box.run(['challenge', '--device', id(e.email_own.ref), '--now', at(T)]),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(locked.code).toBe(1);
    expect(locked.json).toMatchObject({ ok: false, reason: 'throttled', failureCount: 3, retryAt: new Date(e.locked.locked_until * 1000).toISOString() });
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.json!.persistentId).toBe(imported.get(e.static.ref)!.persistentId);
    // The console sender masks the address to its first letter and domain: the user's own for
    // the device without an address, the device's for the other.
    expect(mailUser.code, mailUser.stderr).toBe(0);
    expect(mailUser.stderr).toContain('(to a***@example.com)');
    expect(mailOwn.code, mailOwn.stderr).toBe(0);
    expect(mailOwn.stderr).toContain('(to b***@example.net)');

    const [replay, atUnlock, backupAgain] = await Promise.all([
      box.run(['verify', '--device', id(e.on_time.ref), '--token', next.code, '--now', at(T + 1_000), '--json']),
      box.run(['verify', '--device', id(e.locked.ref), '--token', lockedCode.code, '--now', at(Math.round(e.locked.locked_until * 1000)), '--json']),
      box.run(['match', '--user', 'alice', '--token', 'abcd2345', '--now', at(T + 1_000), '--json']),
    ]);
    expect(replay.code).toBe(1);
    expect(replay.json).toMatchObject({ ok: false, reason: 'replay' });
    // At the instant django-otp's lock ends, the device accepts again (as django-otp does).
    expect(e.locked.accepted_at_unlock).toBe(true);
    expect(atUnlock.code, atUnlock.stdout).toBe(0);
    expect(backupAgain.code).toBe(1);
  }, 120_000);

  it('running the import again imports nothing new and leaves the devices as they are', async () => {
    const r = await box.run(['--now', at(T + 60_000), 'import', 'django-otp', join(box.dir, 'dump.json'), '--json']);
    expect(r.code).toBe(2); // the short key is still skipped
    expect(r.json).toMatchObject({ summary: { imported: 0, alreadyImported: 7, skipped: 1 } });
    for (const d of r.json!.devices as ImportedDevice[]) if (d.status !== 'skipped') expect(d.deviceId).toBe(imported.get(d.reference)!.deviceId);
    const e = expected.devices;
    const [used, history] = await Promise.all([
      box.run(['match', '--user', 'alice', '--token', 'abcd2345', '--now', at(T + 70_000), '--json']),
      box.run(['history', '--device', id(e.static.ref), '--json']),
    ]);
    expect(used.code).toBe(1); // the used token was not brought back
    expect((history.json!.events as { type: string }[]).filter((x) => x.type === 'StaticTokensIssued')).toHaveLength(1);
  }, 120_000);

  it('a dump made with --natural-foreign names users by username; without auth.user rows an e-mail device with no address is skipped', () => {
    const plan = planImport(parseDump(readFileSync(join(box.dir, 'natural.json'), 'utf8'), 'natural.json'));
    expect(plan.users.source).toBe('natural-key');
    const byRef = new Map(plan.devices.map((d) => [d.reference, d]));
    const e = expected.devices;
    expect(byRef.get(e.on_time.ref)).toMatchObject({ userId: 'alice', userFrom: 'natural-key' });
    expect(byRef.get(e.hotp.ref)).toMatchObject({ userId: 'bob', userFrom: 'natural-key' });
    expect(byRef.get(e.email_own.ref)?.skip).toBeUndefined();
    expect(byRef.get(e.email_user.ref)?.skip).toMatch(/no e-mail address of its own.*add auth\.user/);
  });
});

/** Runs `f` on an engine over a copy of the SQLite store (and its key file), then deletes the copy. */
const onCopy = async <A>(db: string, now: number, f: (engine: Awaited<ReturnType<typeof openRuntime>>['engine']) => Promise<A>): Promise<A> => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-copy-'));
  try {
    const copy = join(dir, 'fs.db');
    for (const suffix of ['', '-wal', '-shm', '.key']) if (existsSync(db + suffix)) copyFileSync(db + suffix, copy + suffix);
    const rt = await openRuntime({ store: `sqlite:${copy}`, now, config: loadConfig(undefined) });
    try {
      return await f(rt.engine);
    } finally {
      await rt.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
