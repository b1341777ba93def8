/**
 * The poison event, as a user met it: a config value that once made the engine write an event
 * it could not read back is refused when the config loads, and a store that already holds
 * such an event (here edited into the SQLite file) no longer stops the read models or an
 * erasure.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { at, cliSandbox } from './run.ts';

const T = 1_800_000_000_000;

describe('a config that would write an unreadable event', () => {
  const box = cliSandbox('fs-cli-poison-');
  afterAll(() => box.remove());

  it('is refused when it loads, naming each setting and its range, before anything is written', async () => {
    const config = join(box.dir, 'c.json');
    writeFileSync(config, '{"cooldownSeconds":1e308,"codeValiditySeconds":99999999999999999999}');
    const r = await box.run(['--config', config, 'enroll', 'email', '--user', 'bob', '--to', 'bob@example.com']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('cooldownSeconds must be a number from 0 to 86400');
    expect(r.stderr).toContain('codeValiditySeconds must be a number from 1 to 86400');
    expect(r.stderr).not.toContain('bob@example.com');
    expect(existsSync(box.db)).toBe(false);
  });
});

describe('a store that holds an event that does not decode', () => {
  const box = cliSandbox('fs-cli-poison-');
  afterAll(() => box.remove());

  it('is set aside by the read models, listed by quarantine, and erase still works', async () => {
    const email = await box.run(['--json', '--now', at(T), 'enroll', 'email', '--user', 'bob', '--to', 'bob@example.com', '--confirmed']);
    expect(email.code).toBe(0);
    const id = email.json!.deviceId as string;
    expect((await box.run(['--now', at(T), 'challenge', '--device', id])).code).toBe(0);
    const other = await box.run(['--json', '--now', at(T), 'enroll', 'totp', '--user', 'carol']);
    expect(other.code).toBe(0);
    // What an older version wrote: a code valid until past the end of Date.
    const raw = new Database(box.db);
    raw.prepare(`UPDATE events SET data = json_set(data, '$.validUntil', 1e20) WHERE stream_name = ? AND version = 2`).run(`otpdevice-${id}`);
    raw.close();

    const show = await box.run(['--now', at(T), 'show', '--device', id]);
    expect(show.code).toBe(3);
    expect(show.stderr).toContain(`otpdevice-${id} version 2`);

    const stats = await box.run(['--json', '--now', at(T + 1000), 'stats']);
    expect(stats.code).toBe(0);
    expect(stats.json!.devices.total).toEqual({ confirmed: 1, unconfirmed: 1, removed: 0 });
    expect(stats.stderr).toContain('set aside 1 stored event(s) that do not decode');

    const listed = await box.run(['--json', 'quarantine']);
    expect(listed.code).toBe(0);
    expect(listed.json!.events).toEqual([
      expect.objectContaining({ streamName: `otpdevice-${id}`, version: 2, type: 'ChallengeGenerated', userId: 'bob', deviceId: id }),
    ]);
    expect(listed.json!.events[0].problem).toContain('validUntil');

    const erased = await box.run(['--json', '--now', at(T + 2000), 'erase', '--user', 'bob', '--reason', 'GDPR request']);
    expect(erased.code).toBe(0);
    expect(erased.json!.removed).toEqual([id]);
    const after = await box.run(['--json', '--now', at(T + 3000), 'stats']);
    expect(after.json!.devices.total).toEqual({ confirmed: 0, unconfirmed: 1, removed: 1 });
  });
});
