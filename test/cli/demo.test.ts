/**
 * `factorstream demo` runs to the end on a fresh directory: it creates factorstream.db and
 * the key file there (the default store), in text and in --json.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliSandbox } from './run.ts';

describe('factorstream demo', () => {
  const text = cliSandbox('fs-demo-');
  const json = cliSandbox('fs-demo-json-');
  afterAll(() => {
    text.remove();
    json.remove();
  });

  it('runs to the end with exit 0 in a fresh directory, in text and with --json', async () => {
    const [t, j] = await Promise.all([text.raw(['demo']), json.raw(['demo', '--json'])]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('10. Remove it');
    expect(t.stdout).toContain('Done.');
    expect(t.stderr).toContain('created the master key file');
    expect(t.stderr).toContain('[factorstream] code for e-mail device');
    expect(t.stderr).not.toContain('    at ');
    for (const dir of [text.dir, json.dir]) {
      expect(existsSync(join(dir, 'factorstream.db'))).toBe(true);
      expect(statSync(join(dir, 'factorstream.db.key')).mode & 0o777).toBe(0o600);
    }
    expect(j.code, j.stderr).toBe(0);
    expect(j.json).toMatchObject({ ok: true, command: 'demo', totp: expect.stringMatching(/^totp\//), email: expect.stringMatching(/^email\//) });
    expect((j.json!.transcript as string[]).join('\n')).toContain('replay');
  }, 120_000);
});
