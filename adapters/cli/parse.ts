/**
 * Parsing of command-line values: instants, numbers, hex secrets and the policy file.
 * Every failure is a UsageError whose message names the option and the rule.
 */
import { readFileSync, statSync } from 'node:fs';
import * as t from 'io-ts';
import { decodeWith } from '../../domain/codecs.ts';
import { makePolicy, policyProblems, type Policy } from '../../domain/policies/policy.ts';
import { isPrintable, printable } from './printable.ts';

/** Bad usage or input: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The instants a command takes (--now, --at, ?at=): 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z. */
export const INSTANT_BOUNDS = { min: 0, max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) } as const;

/** A value shown back in an error: short, and with control and bidi characters escaped. */
const quoted = (value: string, max: number): string => JSON.stringify(printable(value.slice(0, max)));

/**
 * An instant: ISO-8601 (`2026-11-28T12:00:00Z`) or `@<unix seconds>` like oathtool's -N,
 * within INSTANT_BOUNDS (a clock in the year 275760 would lock a device for ever).
 */
export const parseInstant = (value: string, option: string): number => {
  const v = value.trim();
  if (v === '') throw new UsageError(`${option} must not be empty: give an ISO-8601 time like 2026-11-28T12:00:00Z or @<unix seconds>`);
  let ms = Number.NaN;
  if (/^@-?\d+(\.\d+)?$/.test(v)) ms = Math.round(Number(v.slice(1)) * 1000);
  else if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) ms = Date.parse(v);
  if (Number.isNaN(ms))
    throw new UsageError(`${option} must be an ISO-8601 time like 2026-11-28T12:00:00Z or @<unix seconds> (got ${quoted(value, 40)})`);
  if (!Number.isSafeInteger(ms) || ms < INSTANT_BOUNDS.min || ms > INSTANT_BOUNDS.max)
    throw new UsageError(`${option} must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z (got ${quoted(value, 40)})`);
  return ms;
};

export const parseInteger = (value: string, option: string, min: number, max: number): number => {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`${option} must be a whole number from ${min} to ${max} (got ${quoted(value, 20)})`);
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

/**
 * Bounds of the config file's enrolment defaults (the policy's own are POLICY_BOUNDS): the
 * tolerances are the domain's (TOTP 0–10 steps, HOTP 0–100 look-ahead); the issuer is what an
 * otpauth URI and a QR code can carry: 1–64 characters, no control characters and no ":"
 * (the separator of an otpauth label).
 */
export const CONFIG_BOUNDS = {
  totpTolerance: { min: 0, max: 10 },
  hotpTolerance: { min: 0, max: 100 },
  issuerLength: { min: 1, max: 64 },
} as const;

/** Why an issuer (what an authenticator app shows) is refused, or null: "must …". */
export const issuerProblem = (issuer: string): string | null => {
  const { min, max } = CONFIG_BOUNDS.issuerLength;
  if ([...issuer].length < min || [...issuer].length > max) return `must be ${min}–${max} characters long (got ${[...issuer].length})`;
  if (!isPrintable(issuer) || /[\u0000-\u001f\u007f]/.test(issuer)) return 'must not contain control, bidi or zero-width characters';
  if (issuer.includes(':')) return 'must not contain ":" (it separates the issuer from the account in an otpauth label)';
  return null;
};

const wholeIn = (name: string, min: number, max: number) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => Number.isInteger(u) && (u as number) >= min && (u as number) <= max,
    (u, c) => (Number.isInteger(u) && (u as number) >= min && (u as number) <= max ? t.success(u as number) : t.failure(u, c, `must be a whole number from ${min} to ${max}`)),
    t.identity,
  );

const Issuer = new t.Type<string, string, unknown>(
  'issuer',
  (u): u is string => typeof u === 'string' && issuerProblem(u) === null,
  (u, c) => (typeof u !== 'string' ? t.failure(u, c, 'issuer must be a string') : issuerProblem(u) === null ? t.success(u) : t.failure(u, c, issuerProblem(u)!)),
  t.identity,
);

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
    totpTolerance: wholeIn('totpTolerance', CONFIG_BOUNDS.totpTolerance.min, CONFIG_BOUNDS.totpTolerance.max),
    hotpTolerance: wholeIn('hotpTolerance', CONFIG_BOUNDS.hotpTolerance.min, CONFIG_BOUNDS.hotpTolerance.max),
    /** Issuer shown in authenticator apps. */
    issuer: Issuer,
  }),
);
export type ConfigFile = t.TypeOf<typeof ConfigFile>;

export interface Config {
  readonly policy: Policy;
  readonly totpTolerance?: number;
  readonly hotpTolerance?: number;
  readonly issuer?: string;
}

/** A config file is a few settings; anything bigger is not one (and is not read whole). */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export const loadConfig = (path: string | undefined): Config => {
  if (!path) return { policy: makePolicy() };
  let text: string;
  try {
    if (statSync(path).size > MAX_CONFIG_BYTES) throw new UsageError(`the config file ${path} is larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB: it is not a factorstream config`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read the config file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let json: unknown;
  try {
    // A byte-order mark is what some editors put first; it is not part of the JSON.
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    // JSON.parse quotes the text around the error: never repeat a file's content.
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new UsageError(`the config file ${path} is not valid JSON${at ? ` (at character ${at})` : ''}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new UsageError(
      `the config file ${path} must hold a JSON object of settings, like {"cooldownSeconds": 60} (got ${json === null ? 'null' : Array.isArray(json) ? 'a list' : typeof json})`,
    );
  const known = new Set(Object.keys(ConfigFile.type.props));
  const unknown = Object.keys(json).filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw new UsageError(
      `the config file ${path} has unknown settings: ${unknown.slice(0, 5).map((k) => printable(k.slice(0, 40))).join(', ')}${unknown.length > 5 ? ', …' : ''} (known: ${[...known].join(', ')})`,
    );
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
