/**
 * Runs the factorstream command in this process (`main(argv, io)`), capturing what it prints:
 * much faster than a child process, for sweeps of many cases. The environment is the caller's
 * `env` only (nothing of the test runner's FACTORSTREAM_* leaks in).
 */
import { main } from '../../adapters/cli/main.ts';
import { jsonOf } from './run.ts';

export interface MainResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON when --json was given (null if it was not JSON). */
  readonly json: Record<string, any> | null;
}

export const runMain = async (args: readonly string[], env: Record<string, string> = {}): Promise<MainResult> => {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), env: { ...env } });
  return { code, stdout, stderr, json: jsonOf(args, stdout) };
};
