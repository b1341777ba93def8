/**
 * What a CLI command writes to and reads its environment from: stdout, stderr and the
 * environment variables. main.ts passes the process's; tests pass their own.
 */
export interface Io {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
}
