/**
 * `factorstream serve` as a user runs it: a child process on a SQLite file, stopped by SIGTERM.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, cliSandbox, runCli } from '../cli/run.ts';

const TOKEN = 'serve-test-token-0123456789abcdef';
const sandboxes: { remove(): void }[] = [];
afterAll(() => {
  for (const s of sandboxes) s.remove();
});

const sandbox = () => {
  const s = cliSandbox('fs-serve-');
  sandboxes.push(s);
  return s;
};

/** The environment of a run: the caller's, minus anything of factorstream's or vitest's. */
const env = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FACTORSTREAM_') && !k.startsWith('VITEST') && k !== 'NODE_OPTIONS') out[k] = v;
  return { ...out, ...extra };
};

describe('factorstream serve', () => {
  it('refuses to start without FACTORSTREAM_ADMIN_TOKEN (exit 2), and opens nothing', async () => {
    const s = sandbox();
    const r = await runCli(['--store', `sqlite:${s.db}`, 'serve', '--port', '0'], { cwd: s.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to serve without an admin token: set FACTORSTREAM_ADMIN_TOKEN/);
    expect(r.stderr).toMatch(/--insecure-local/);
    expect(readdirSync(s.dir)).toEqual([]); // no database, no key file
    const j = await runCli(['--json', '--store', `sqlite:${s.db}`, 'serve', '--insecure-local', '--host', '0.0.0.0'], { cwd: s.dir });
    expect(j.code).toBe(2);
    expect(j.json).toMatchObject({ ok: false, error: { code: 'usage', message: expect.stringMatching(/loopback address only/) } });
    const short = await runCli(['--store', `sqlite:${s.db}`, 'serve'], { cwd: s.dir, env: { FACTORSTREAM_ADMIN_TOKEN: 'abc' } });
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/at least 16 characters/);
    expect(short.stderr).not.toContain('abc');
  });

  it('serves the page and the API with the token, follows the log, and stops cleanly on SIGTERM', async () => {
    const s = sandbox();
    const enrolled = await runCli(['--json', '--store', `sqlite:${s.db}`, 'enroll', 'totp', '--user', 'alice', '--name', 'Work phone', '--confirmed'], {
      cwd: s.dir,
    });
    expect(enrolled.code).toBe(0);

    const child = spawn(process.execPath, [BIN, '--store', `sqlite:${s.db}`, 'serve', '--port', '0'], {
      cwd: s.dir,
      env: env({ FACTORSTREAM_ADMIN_TOKEN: TOKEN }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (c: string) => {
          stdout += c;
          const m = /dashboard on (http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${stderr}`)));
      });
      expect(stdout).toContain('admin token required');
      expect(stdout + stderr).not.toContain(TOKEN);

      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('factorstream');
      expect((await fetch(`${url}/api/users/alice/devices`)).status).toBe(401);
      // The projection runner started by serve catches up with the enrolment made before.
      const authorized = { headers: { Authorization: `Bearer ${TOKEN}` } };
      let lag: { state: string; events: number } = { state: 'new', events: -1 };
      for (let i = 0; i < 500 && !(lag.state === 'live' && lag.events === 0); i++)
        lag = (await (await fetch(`${url}/api/lag`, authorized)).json()) as typeof lag;
      expect(lag).toMatchObject({ state: 'live', events: 0 });
      const r = await fetch(`${url}/api/users/alice/devices`, authorized);
      expect(((await r.json()) as { devices: { name: string }[] }).devices.map((x) => x.name)).toEqual(['Work phone']);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stdout).toContain('dashboard stopped (SIGTERM)');
    expect(stderr).not.toMatch(/error|at .*\.ts:\d+/i);
    expect(existsSync(join(s.dir, 'fs.db'))).toBe(true);
  });
});
