/**
 * The CLI end to end, as a user drives it: one walk-through of a device's life in real
 * processes on a temporary SQLite file, with --now making every instant exact.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hotpCode } from '../../domain/kinds/oath.ts';
import { at, cliSandbox } from './run.ts';

const KEY_HEX = '3132333435363738393031323334353637383930'; // RFC 6238's SHA1 key
const KEY = Buffer.from(KEY_HEX, 'hex');
const T = Date.UTC(2026, 0, 15, 12, 0, 0); // a whole 30 s step
const S = T / 30_000;
const code = (step: number) => hotpCode(KEY, step, 6);
/** A 6-digit code that is none of the codes around step S. */
const WRONG = ['000000', '111111', '222222'].find((c) => ![-2, -1, 0, 1, 2].some((o) => code(S + o) === c))!;
const iso = (ms: number) => new Date(ms).toISOString();

describe('factorstream CLI walk-through', () => {
  const box = cliSandbox();
  afterAll(() => box.remove());

  it('enrol → QR → confirm → replay refused → throttled → unlock → backup code → remove', async () => {
    const qr = join(box.dir, 'qr.png');
    const enrolled = await box.run(['enroll', 'totp', '--user', 'alice', '--name', 'Phone', '--secret', KEY_HEX, '--qr', qr, '--now', at(T), '--json']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const device = enrolled.json!.deviceId as string;
    expect(enrolled.json).toMatchObject({ ok: true, kind: 'totp', persistentId: `totp/${device}`, qrFile: qr });
    expect(enrolled.json!.otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    // The QR code is a PNG only its owner can read: it holds the secret.
    expect(existsSync(qr)).toBe(true);
    expect(readFileSync(qr).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(statSync(qr).mode & 0o777).toBe(0o600);

    const confirmed = await box.run(['confirm', '--device', device, '--token', code(S), '--now', at(T + 5_000), '--json']);
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect(confirmed.json).toMatchObject({ ok: true, confirmed: true });

    // The same code again: a replay, rejected and counted (1 failure, 1 s lock).
    const replay = await box.run(['verify', '--device', device, '--token', code(S), '--now', at(T + 6_000), '--json']);
    expect(replay.code).toBe(1);
    expect(replay.json).toMatchObject({ ok: false, reason: 'replay' });
    // A wrong code once the lock is over: 2 failures, locked for 2 s from T+7 s.
    const wrong = await box.run(['verify', '--device', device, '--token', WRONG, '--now', at(T + 7_000), '--json']);
    expect(wrong.code).toBe(1);
    expect(wrong.json).toMatchObject({ ok: false, reason: 'invalid' });
    // Inside the lock even the right code is refused, with the instant to come back at.
    const refused = await box.run(['verify', '--device', device, '--token', code(S + 1), '--now', at(T + 8_000)]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain(`try again at ${iso(T + 9_000)}`);
    const refusedJson = await box.run(['verify', '--device', device, '--token', WRONG, '--now', at(T + 8_500), '--json']);
    expect(refusedJson.code).toBe(1);
    expect(refusedJson.json).toMatchObject({ ok: false, reason: 'throttled', retryAt: iso(T + 9_000), failureCount: 2 });

    const unlocked = await box.run(['unlock', '--device', device, '--reason', 'user called the help desk', '--actor', 'helpdesk:bob', '--now', at(T + 8_600), '--json']);
    expect(unlocked.code, unlocked.stderr).toBe(0);
    expect(unlocked.json!.device.throttle).toMatchObject({ failureCount: 0, lockedUntil: null });
    const next = await box.run(['verify', '--device', device, '--token', code(S + 1), '--now', at(T + 31_000)]);
    expect(next.code, next.stdout + next.stderr).toBe(0);
    expect(next.stdout).toMatch(/^accepted: totp\//);

    const backup = await box.run(['backup-codes', '--user', 'alice', '--count', '3', '--now', at(T + 40_000), '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    const codes = backup.json!.codes as string[];
    expect(codes).toHaveLength(3);
    expect(codes.every((c) => /^[a-z2-7]{8}$/.test(c))).toBe(true);
    const used = await box.run(['match', '--user', 'alice', '--token', codes[0]!, '--now', at(T + 41_000), '--json']);
    expect(used.code, used.stderr).toBe(0);
    expect(used.json).toMatchObject({ ok: true, persistentId: backup.json!.persistentId });
    const again = await box.run(['match', '--user', 'alice', '--token', codes[0]!, '--now', at(T + 42_000), '--json']);
    expect(again.code).toBe(1);
    expect(again.json).toMatchObject({ ok: false, reason: 'no-match' });

    // A second, unconfirmed device, for the listing filters.
    const hotp = await box.run(['enroll', 'hotp', '--user', 'alice', '--name', 'Fob', '--now', at(T + 43_000), '--json']);
    expect(hotp.code, hotp.stderr).toBe(0);

    // Reads, side by side: the listing filters, the past, the histories.
    const [all, onlyConfirmed, onlyUnconfirmed, past, history, userHistory] = await Promise.all([
      box.run(['devices', '--user', 'alice', '--json']),
      box.run(['devices', '--user', 'alice', '--confirmed', '--json']),
      box.run(['devices', '--user', 'alice', '--unconfirmed']),
      box.run(['show', '--device', device, '--at', iso(T + 8_000), '--json']),
      box.run(['history', '--device', device, '--json']),
      box.run(['history', '--user', 'alice', '--json']),
    ]);
    for (const r of [all, onlyConfirmed, onlyUnconfirmed, past, history, userHistory]) expect(r.code, r.stderr).toBe(0);
    const names = (r: typeof all) => (r.json!.devices as { name: string }[]).map((d) => d.name).sort();
    expect(names(all)).toEqual(['Backup codes', 'Fob', 'Phone']);
    expect(names(onlyConfirmed)).toEqual(['Backup codes', 'Phone']);
    expect(onlyUnconfirmed.stdout).toContain('"Fob"');
    expect(onlyUnconfirmed.stdout).not.toContain('"Phone"');
    // The device as it was while locked.
    expect(past.json).toMatchObject({ at: iso(T + 8_000), device: { deviceId: device, confirmed: true } });
    expect(past.json!.device.throttle).toMatchObject({ failureCount: 2, lockedUntil: iso(T + 9_000) });
    const events = history.json!.events as { type: string; data: Record<string, unknown>; metadata: { actor: string } }[];
    expect(events.map((e) => e.type)).toEqual([
      'DeviceRegistered',
      'TokenVerified',
      'DeviceConfirmed',
      'VerificationFailed',
      'VerificationFailed',
      'VerificationRefused',
      'VerificationRefused',
      'ThrottleReset',
      'TokenVerified',
    ]);
    expect(events.filter((e) => e.type === 'VerificationFailed').map((e) => e.data.reason)).toEqual(['replay', 'invalid']);
    expect(events.find((e) => e.type === 'ThrottleReset')).toMatchObject({ data: { reason: 'user called the help desk' }, metadata: { actor: 'helpdesk:bob' } });
    // Nothing secret in the history: neither the key nor any code.
    for (const secret of [KEY_HEX, code(S), code(S + 1), ...codes]) expect(history.stdout + userHistory.stdout).not.toContain(secret);
    const userEvents = (userHistory.json!.events as { type: string }[]).map((e) => e.type);
    expect(userEvents.filter((t) => t === 'DeviceAttached')).toHaveLength(3);
    expect(userEvents).toContain('MatchFailed');

    const removed = await box.run(['remove', '--device', device, '--reason', 'phone lost', '--now', at(T + 50_000), '--json']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.json!.device).toMatchObject({ removed: true });
    const afterRemove = await box.run(['verify', '--device', device, '--token', code(S + 2), '--now', at(T + 61_000), '--json']);
    expect(afterRemove.code).toBe(2);
    expect(afterRemove.json).toMatchObject({ ok: false, error: { code: 'device-removed' } });
  }, 180_000);
});
