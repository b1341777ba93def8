/**
 * How commands report: a result with an exit code, a JSON object for --json, and lines of
 * text for people. Exit codes: 0 success, 1 verification rejected or refused, 2 bad usage or
 * input, 3 store or delivery failure.
 */
import type { EngineError } from '../../app/engine.ts';

export const EXIT = { ok: 0, rejected: 1, usage: 2, failure: 3 } as const;

export interface Result {
  readonly exit: number;
  readonly json: Record<string, unknown>;
  readonly text: readonly string[];
}

export const ok = (json: Record<string, unknown>, text: readonly string[]): Result => ({ exit: EXIT.ok, json: { ok: true, ...json }, text });

export const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** Engine errors that are the caller's fault exit 2; the rest (store, vault, conflicts) exit 3. */
export const exitFor = (e: EngineError): number => {
  switch (e.code) {
    case 'invalid-command':
    case 'device-not-found':
    case 'device-removed':
    case 'device-exists':
    case 'wrong-kind':
    case 'no-challenge':
    case 'not-configured':
      return EXIT.usage;
    case 'conflict':
    case 'store-unavailable':
    case 'corrupt-event':
    case 'unstorable-event':
    case 'vault-error':
    case 'internal':
      return EXIT.failure;
    default: {
      const unreachable: never = e.code;
      return unreachable;
    }
  }
};

export const failed = (exit: number, code: string, message: string): Result => ({
  exit,
  json: { ok: false, error: { code, message } },
  text: [],
});

/** Keeps one line: error messages are one line on stderr. */
export const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').slice(0, 1000);
