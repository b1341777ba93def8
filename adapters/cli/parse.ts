/**
 * Parsing of command-line values: instants, numbers, hex secrets and the policy file.
 * Every failure is a UsageError whose message names the option and the rule.
 */
import { readFileSync } from 'node:fs';
import * as t from 'io-ts';
import { decodeWith } from '../../domain/codecs.ts';
import { makePolicy, policyProblems, type Policy } from '../../domain/policies/policy.ts';

/** Bad usage or input: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** An instant: ISO-8601 (`2026-11-28T12:00:00Z`) or `@<unix seconds>` like oathtool's -N. */
export const parseInstant = (value: string, option: string): number => {
  const v = value.trim();
  if (/^@-?\d+(\.\d+)?$/.test(v)) {
    const ms = Math.round(Number(v.slice(1)) * 1000);
    if (Number.isSafeInteger(ms) && Math.abs(ms) <= 8.64e15) return ms;
  } else if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) {
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(`${option} must be an ISO-8601 time like 2026-11-28T12:00:00Z or @<unix seconds> (got "${value.slice(0, 40)}")`);
};

export const parseInteger = (value: string, option: string, min: number, max: number): number => {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`${option} must be a whole number from ${min} to ${max} (got "${value.slice(0, 20)}")`);
  return n;
};

/** A key given in hex; the message gives the problem, never the value. */
export const parseHexSecret = (value: string, option: string): Uint8Array => {
  const v = value.trim().replace(/\s+/g, '');
  if (!/^[0-9a-fA-F]*$/.test(v) || v.length % 2 !== 0)
    throw new UsageError(`${option} must be hexadecimal with an even number of digits (the value was not echoed)`);
  return Buffer.from(v, 'hex');
};

const nonNegative = new t.Type<number, number, unknown>(
  'number ≥ 0',
  (u): u is number => typeof u === 'number' && Number.isFinite(u) && u >= 0,
  (u, c) => (typeof u === 'number' && Number.isFinite(u) && u >= 0 ? t.success(u) : t.failure(u, c, 'must be a number ≥ 0')),
  t.identity,
);
const nullableNonNegative = t.union([nonNegative, t.null]);
const ThrottleFile = t.partial({ factor: nonNegative, maxDelaySeconds: nullableNonNegative, failureExpirySeconds: nullableNonNegative });

/** The --config file: policy settings, and defaults for enrolment. Unknown keys are refused. */
export const ConfigFile = t.exact(
  t.partial({
    throttle: t.exact(t.partial({ totp: ThrottleFile, hotp: ThrottleFile, static: ThrottleFile, email: ThrottleFile, sms: ThrottleFile })),
    matchThrottle: ThrottleFile,
    cooldownSeconds: nonNegative,
    codeValiditySeconds: nonNegative,
    codeDigits: t.union([t.literal(6), t.literal(8)]),
    maxDrift: nonNegative,
    totpSync: t.boolean,
    backupCodeCount: nonNegative,
    /** Default tolerance of new TOTP devices (steps) and HOTP devices (look-ahead). */
    totpTolerance: nonNegative,
    hotpTolerance: nonNegative,
    /** Issuer shown in authenticator apps. */
    issuer: t.string,
  }),
);
export type ConfigFile = t.TypeOf<typeof ConfigFile>;

export interface Config {
  readonly policy: Policy;
  readonly totpTolerance?: number;
  readonly hotpTolerance?: number;
  readonly issuer?: string;
}

export const loadConfig = (path: string | undefined): Config => {
  if (!path) return { policy: makePolicy() };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the config file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    // JSON.parse quotes the text around the error: never repeat a file's content.
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new UsageError(`the config file ${path} is not valid JSON${at ? ` (at character ${at})` : ''}`);
  }
  if (typeof json === 'object' && json !== null) {
    const known = new Set(Object.keys(ConfigFile.type.props));
    const unknown = Object.keys(json).filter((k) => !known.has(k));
    if (unknown.length > 0)
      throw new UsageError(`the config file ${path} has unknown settings: ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
  }
  const decoded = decodeWith(ConfigFile, json);
  if (decoded._tag === 'Left') throw new UsageError(`the config file ${path} is not valid: ${decoded.left}`);
  const { totpTolerance, hotpTolerance, issuer, ...policy } = decoded.right;
  const p = makePolicy(policy as Parameters<typeof makePolicy>[0]);
  const problems = policyProblems(p);
  if (problems.length > 0) throw new UsageError(`the config file ${path} is not valid: ${problems.join('; ')}`);
  return {
    policy: p,
    ...(totpTolerance === undefined ? {} : { totpTolerance }),
    ...(hotpTolerance === undefined ? {} : { hotpTolerance }),
    ...(issuer === undefined ? {} : { issuer }),
  };
};
