/**
 * Runs the real factorstream command as a user would: `node adapters/cli/bin.js …` in a child
 * process, with a temporary directory as its working directory and its own SQLite file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BIN = join(REPO, 'adapters', 'cli', 'bin.js');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON when --json was given (null if it was not JSON). */
  readonly json: Record<string, any> | null;
}

/** stdout parsed as JSON when --json was given (null if it was not JSON). */
export const jsonOf = (args: readonly string[], stdout: string): Record<string, any> | null => {
  if (!args.includes('--json')) return null;
  try {
    return JSON.parse(stdout) as Record<string, any>;
  } catch {
    return null;
  }
};

/** The environment of every run: the caller's, minus anything that would change the CLI's behaviour. */
const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FACTORSTREAM_') && !k.startsWith('VITEST') && k !== 'NODE_OPTIONS') env[k] = v;
  return env;
};

export const runCli = (
  args: readonly string[],
  options: { readonly cwd: string; readonly env?: Record<string, string>; readonly input?: string },
): Promise<CliResult> =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...baseEnv(), ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.stdin.end(options.input ?? '');
    child.on('close', (code) => resolvePromise({ code, stdout, stderr, json: jsonOf(args, stdout) }));
  });

/** A temporary directory with a CLI bound to a SQLite file in it (`--store sqlite:<dir>/fs.db`). */
export const cliSandbox = (prefix = 'fs-cli-') => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const db = join(dir, 'fs.db');
  const store = `sqlite:${db}`;
  return {
    dir,
    db,
    store,
    /** Runs `factorstream --store sqlite:<dir>/fs.db ARGS`. */
    run: (args: readonly string[], options: { env?: Record<string, string>; input?: string } = {}) =>
      runCli(['--store', store, ...args], { cwd: dir, ...options }),
    /** Runs with exactly the given arguments (no --store). */
    raw: (args: readonly string[], options: { env?: Record<string, string>; input?: string } = {}) => runCli(args, { cwd: dir, ...options }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
};

/** `@<unix seconds>` for --now. */
export const at = (ms: number): string => `@${ms / 1000}`;
