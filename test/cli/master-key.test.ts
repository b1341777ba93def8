/**
 * The master key file: created with mode 0600 beside the database on first use, with a
 * notice; a wrong FACTORSTREAM_MASTER_KEY afterwards exits 3 and writes nothing; `keys
 * rotate` replaces the key file and everything enrolled before still verifies.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { hotpCode } from '../../domain/kinds/oath.ts';
import { at, cliSandbox } from './run.ts';

const KEY_HEX = '0123456789abcdef0123456789abcdef01234567';
const KEY = Buffer.from(KEY_HEX, 'hex');
const T = Date.UTC(2026, 0, 15, 12, 0, 0);
const code = (ms: number) => hotpCode(KEY, Math.floor(ms / 30_000), 6);

describe('factorstream CLI: the master key', () => {
  const box = cliSandbox();
  afterAll(() => box.remove());

  it('is created beside the database, refuses a wrong key without writing, and rotates', async () => {
    const keyFile = `${box.db}.key`;
    expect(existsSync(keyFile)).toBe(false);
    const enrolled = await box.run(['enroll', 'totp', '--user', 'kim', '--secret', KEY_HEX, '--confirmed', '--now', at(T), '--json']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const device = enrolled.json!.deviceId as string;
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(enrolled.stderr).toContain(`created the master key file ${keyFile} (mode 0600)`);
    const backup = await box.run(['backup-codes', '--user', 'kim', '--count', '2', '--now', at(T), '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stderr).toBe(''); // the notice is given once
    const codes = backup.json!.codes as string[];

    // A wrong key from the environment: exit 3, a clear message, nothing written.
    const wrong = await box.run(['verify', '--device', device, '--token', code(T + 30_000), '--now', at(T + 30_000)], {
      env: { FACTORSTREAM_MASTER_KEY: 'ab'.repeat(32) },
    });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toMatch(/master key does not match/);
    expect(wrong.stderr).not.toContain('ab'.repeat(32));
    expect(wrong.stderr).not.toContain('    at ');
    const history = await box.run(['history', '--device', device, '--json']);
    expect((history.json!.events as unknown[]).length).toBe(1); // DeviceRegistered only

    const before = readFileSync(keyFile, 'utf8');
    const rotated = await box.run(['keys', 'rotate', '--json']);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.json).toMatchObject({ ok: true, keyFile, rewrapped: expect.any(Number) });
    expect(rotated.json!.rewrapped).toBeGreaterThanOrEqual(2);
    const after = readFileSync(keyFile, 'utf8');
    expect(after).not.toBe(before);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(rotated.stdout).not.toContain(after.trim());

    // What was enrolled under the old key still works: the TOTP key and the backup codes.
    const [verified, matched] = await Promise.all([
      box.run(['verify', '--device', device, '--token', code(T + 30_000), '--now', at(T + 30_000), '--json']),
      box.run(['match', '--user', 'kim', '--token', codes[0]!, '--now', at(T + 31_000), '--json']),
    ]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(matched.code, matched.stderr).toBe(0);
    expect(matched.json).toMatchObject({ ok: true, persistentId: backup.json!.persistentId });
  }, 120_000);
});
