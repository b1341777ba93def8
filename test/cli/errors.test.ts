/**
 * Exit codes and errors of the real CLI: bad usage exits 2 with one line on stderr (or a JSON
 * error object with --json), hostile tokens are rejected verifications (exit 1, recorded),
 * an unreachable store exits 3, a secret is never echoed, and every command has --help.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../adapters/cli/main.ts';
import { at, cliSandbox, type CliResult } from './run.ts';

const T = Date.UTC(2026, 0, 15, 12, 0, 0);

/** Exit 2, one line on stderr, no stack trace. */
const expectUsage = (r: CliResult, mentions: RegExp) => {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(2);
  expect(r.stderr).not.toContain('    at ');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^factorstream: /);
  expect(lines[0]).toMatch(mentions);
};

describe('factorstream CLI: exit codes and errors', () => {
  const box = cliSandbox();
  let device = '';
  beforeAll(async () => {
    // The first run creates the database and the key file (and says so on stderr).
    const r = await box.run(['enroll', 'totp', '--user', 'mallory', '--confirmed', '--now', at(T), '--json']);
    expect(r.code, r.stderr).toBe(0);
    device = r.json!.deviceId as string;
    writeFileSync(join(box.dir, 'unknown-key.json'), JSON.stringify({ throttle: { totp: { factor: 2 } }, colour: 'blue' }));
    writeFileSync(join(box.dir, 'no-throttle.json'), JSON.stringify({ throttle: { totp: { factor: 0 } } }));
  }, 60_000);
  afterAll(() => box.remove());

  it('bad usage exits 2 with one clear line on stderr and no stack trace', async () => {
    const secret = 'deadbeefcafe1'; // an odd number of hex digits
    const [unknown, noDevice, digits, step, now, configKey, configFile, ftp, oddSecret] = await Promise.all([
      box.run(['frobnicate']),
      box.run(['verify', '--token', '123456']),
      box.run(['enroll', 'totp', '--user', 'a', '--digits', '7']),
      box.run(['enroll', 'totp', '--user', 'a', '--step', '0']),
      box.run(['--now', 'garbage', 'devices', '--user', 'a']),
      box.run(['--config', join(box.dir, 'unknown-key.json'), 'devices', '--user', 'a']),
      box.run(['--config', join(box.dir, 'missing.json'), 'devices', '--user', 'a']),
      box.raw(['--store', 'ftp://x', 'devices', '--user', 'a']),
      box.run(['enroll', 'totp', '--user', 'a', '--secret', secret]),
    ]);
    expectUsage(unknown, /unknown command 'frobnicate'/);
    expectUsage(noDevice, /--device/);
    expectUsage(digits, /digits must be one of 6, 8/);
    expectUsage(step, /step must be a whole number from 1/);
    expectUsage(now, /--now must be an ISO-8601 time.*"garbage"/);
    expectUsage(configKey, /unknown settings: colour/);
    expectUsage(configFile, /cannot read the config file .*missing\.json/);
    expectUsage(ftp, /ftp:\/\/x/);
    expectUsage(oddSecret, /--secret must be hexadecimal with an even number of digits/);
    expect(oddSecret.stdout + oddSecret.stderr).not.toContain(secret);
  }, 120_000);

  it('with --json an error is one JSON object on stdout, with a code and a message', async () => {
    const [unknown, digits, now] = await Promise.all([
      box.run(['frobnicate', '--json']),
      box.run(['enroll', 'totp', '--user', 'a', '--digits', '7', '--json']),
      box.run(['--json', '--now', 'garbage', 'devices', '--user', 'a']),
    ]);
    for (const r of [unknown, digits, now]) {
      expect(r.code).toBe(2);
      expect(r.json, r.stdout).toMatchObject({ ok: false, error: { code: expect.any(String), message: expect.any(String) } });
      expect(r.stderr).toBe('');
    }
    expect(unknown.json!.error).toMatchObject({ code: 'usage', message: expect.stringContaining('frobnicate') });
    expect(digits.json!.error.code).toBe('invalid-command');
  }, 120_000);

  it('a token is user input: empty, malformed or hostile ones are rejected verifications, recorded as malformed', async () => {
    const tokens = ['', 'abc', '7'.repeat(5_000), '١٢٣٤٥٦', "'; DROP TABLE events; --"];
    // Throttling off (factor 0) so that all five are judged, side by side, at the same instant.
    const config = join(box.dir, 'no-throttle.json');
    const results = await Promise.all(
      tokens.map((token) => box.run(['--config', config, 'verify', '--device', device, '--token', token, '--now', at(T + 60_000), '--json'])),
    );
    for (const r of results) {
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.json).toMatchObject({ ok: false, reason: 'malformed' });
      expect(r.stderr).toBe('');
    }
    const history = await box.run(['history', '--device', device, '--json']);
    expect(history.code).toBe(0);
    const failed = (history.json!.events as { type: string; data: { reason?: string } }[]).filter((e) => e.type === 'VerificationFailed');
    expect(failed.map((e) => e.data.reason)).toEqual(tokens.map(() => 'malformed'));
    // The tokens are not written anywhere, and the events table is still there.
    expect(history.stdout).not.toContain('DROP TABLE');
    expect(history.stdout).not.toContain('١٢٣٤٥٦');
    const list = await box.run(['devices', '--user', 'mallory', '--json']);
    expect(list.json!.devices[0].throttle.failureCount).toBe(5);
  }, 120_000);

  it('a store that cannot be opened exits 3; the password is not shown', async () => {
    const r = await box.raw(['--store', 'postgres://nobody:hunter2@127.0.0.1:1/x', 'devices', '--user', 'a']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).not.toContain('    at ');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toContain('hunter2');
  }, 60_000);

  it('--help on every command exits 0 with its usage', async () => {
    const commands = [
      [],
      ['enroll'],
      ['backup-codes'],
      ['confirm'],
      ['verify'],
      ['match'],
      ['challenge'],
      ['devices'],
      ['show'],
      ['history'],
      ['unlock'],
      ['rename'],
      ['remove'],
      ['keys'],
      ['keys', 'rotate'],
      ['import'],
      ['import', 'django-otp'],
      ['demo'],
    ];
    const usage = (c: string[]) => `Usage: factorstream${c.length > 0 ? ` ${c.join(' ')}` : ''} [options]`;
    // Every command through main() itself (help needs no store), …
    for (const c of commands) {
      let stdout = '';
      let stderr = '';
      const code = await main([...c, '--help'], { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), env: {} });
      expect(code, `${c.join(' ')} --help: ${stderr}`).toBe(0);
      expect(stdout).toContain(usage(c));
      expect(stderr).toBe('');
    }
    // … and a few as real processes, as a user types them.
    const real = [[], ['enroll'], ['import', 'django-otp']];
    const results = await Promise.all(real.map((c) => box.raw([...c, '--help'])));
    results.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(usage(real[i]!));
      expect(r.stderr).toBe('');
    });
  }, 120_000);

  it('a bare command or group shows its own help on stderr and exits 2', async () => {
    for (const c of [[], ['keys'], ['import'], ['audit']]) {
      let stdout = '';
      let stderr = '';
      const code = await main(c, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), env: {} });
      expect(code, c.join(' ')).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(`Usage: factorstream${c.length > 0 ? ` ${c.join(' ')}` : ''} [options] [command]`);
    }
  });

  it('a config file that is not JSON is named, and none of its content is repeated', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const file = join(mkdtempSync(join(tmpdir(), 'fs-cfg-')), 'policy.json');
    writeFileSync(file, 'MASTER=9f8e7d6c5b4a39281706f5e4d3c2b1a0\n');
    let stderr = '';
    const code = await main(['--config', file, 'devices', '--user', 'u'], { stdout: () => {}, stderr: (s) => void (stderr += s), env: {} });
    expect(code).toBe(2);
    expect(stderr).toContain(`the config file ${file} is not valid JSON`);
    expect(stderr).not.toContain('9f8e7d6c');
    expect(stderr).not.toContain('MASTER');
  });
});
