/**
 * otpauth:// URIs (Google Authenticator's Key URI Format), built and parsed with otplib.
 * The URI holds the secret: it is returned once, at enrolment, and never stored or logged.
 */
import { base32 } from '@otplib/plugin-base32-scure';
import { generate, parse } from '@otplib/uri';
import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { Algorithm, Digits } from '../codecs.ts';

export const toBase32 = (key: Uint8Array): string => base32.encode(key).replace(/=+$/, '');

export interface UriParams {
  readonly kind: 'totp' | 'hotp';
  readonly key: Uint8Array;
  /** Account name shown by the app (django-otp uses the username). */
  readonly account: string;
  /** Service name; ":" is removed from it, as django-otp does. Empty: no issuer. */
  readonly issuer: string;
  readonly algorithm: Algorithm;
  readonly digits: Digits;
  readonly step?: number;
  readonly counter?: number;
}

export const otpauthUri = (p: UriParams): string => {
  const issuer = p.issuer.replace(/:/g, '');
  const label = issuer ? `${issuer}:${p.account}` : p.account;
  const uri = generate({
    type: p.kind,
    label,
    params: {
      secret: toBase32(p.key),
      ...(issuer ? { issuer } : {}),
      ...(p.kind === 'hotp' ? { counter: p.counter ?? 0 } : {}),
    },
  });
  // otplib leaves out parameters at their default values; we always state them, as django-otp
  // does, so an app that assumes other defaults still computes the right codes.
  const extra = new URLSearchParams({ algorithm: p.algorithm, digits: String(p.digits) });
  if (p.kind === 'totp') extra.set('period', String(p.step ?? 30));
  return `${uri}&${extra.toString()}`;
};

export interface ParsedUri {
  readonly kind: 'totp' | 'hotp';
  readonly key: Uint8Array;
  readonly account: string;
  readonly issuer: string | null;
  readonly algorithm: Algorithm;
  readonly digits: number;
  readonly step: number | null;
  readonly counter: number | null;
}

/** Parses an otpauth:// URI. Errors never echo the URI (it holds the secret). */
/** Longer than any URI an authenticator app makes or a QR code holds. */
export const MAX_URI_LENGTH = 4096;

export const parseOtpauthUri = (uri: string): Either<string, ParsedUri> => {
  if (uri.length > MAX_URI_LENGTH) return left(`the otpauth URI is longer than ${MAX_URI_LENGTH} characters (got ${uri.length})`);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(uri);
  } catch (e) {
    // otplib echoes the whole input when the scheme or type separator is wrong, and that
    // input may be the secret itself (pasted where a URI was expected): never repeat it.
    const raw = e instanceof Error ? e.message : 'unreadable';
    const why = raw.includes(uri)
      ? 'it must look like otpauth://totp/<label>?secret=… or otpauth://hotp/<label>?secret=…'
      : raw.replace(/secret=[^&\s]*/gi, 'secret=…');
    return left(`the otpauth URI is not valid: ${why.slice(0, 200)}`);
  }
  const params = parsed.params;
  let key: Uint8Array;
  try {
    key = base32.decode(String(params.secret).toUpperCase());
  } catch {
    return left('the otpauth URI has a secret that is not valid base32');
  }
  const alg = String(params.algorithm ?? 'sha1').toUpperCase();
  if (alg !== 'SHA1' && alg !== 'SHA256' && alg !== 'SHA512')
    return left(`the otpauth URI names algorithm ${alg.slice(0, 20)}; supported are SHA1, SHA256 and SHA512`);
  const colon = parsed.label.indexOf(':');
  return right({
    kind: parsed.type === 'hotp' ? 'hotp' : 'totp',
    key,
    account: colon >= 0 ? parsed.label.slice(colon + 1) : parsed.label,
    issuer: params.issuer ?? (colon >= 0 ? parsed.label.slice(0, colon) : null),
    algorithm: alg,
    digits: Number(params.digits ?? 6),
    step: params.period === undefined ? null : Number(params.period),
    counter: params.counter === undefined ? null : Number(params.counter),
  });
};
