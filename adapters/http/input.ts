/**
 * What a request brings in, checked with the domain's own io-ts codecs (domain/codecs.ts)
 * before anything reaches the read side or the engine. Messages name the field and the rule,
 * and never repeat a value that could be secret.
 */
import * as t from 'io-ts';
import { Actor, DeviceId, DeviceName, Kind, RESERVED_ACTOR_PREFIX, Reason, UserId, decodeWith } from '../../domain/codecs.ts';
import { UsageError, parseInstant } from '../cli/parse.ts';
import { HttpError, badInput } from './errors.ts';

const decode = <A>(codec: t.Decoder<unknown, A>, value: unknown, prefix = ''): A => {
  const r = decodeWith(codec, value);
  if (r._tag === 'Left') throw badInput(prefix + r.left);
  return r.right;
};

export const userIdParam = (raw: string): string => decode(UserId, raw);

/** A device id (lower-case UUID) or persistent id (`<kind>/<uuid>`, with the slash percent-encoded in a path). */
export const deviceParam = (raw: string): { readonly device: string; readonly deviceId: string; readonly kind: Kind | null } => {
  const slash = raw.indexOf('/');
  if (slash < 0) {
    const r = decodeWith(DeviceId, raw);
    if (r._tag === 'Right') return { device: r.right, deviceId: r.right, kind: null };
  } else {
    const kind = decodeWith(Kind, raw.slice(0, slash));
    const id = decodeWith(DeviceId, raw.slice(slash + 1));
    if (kind._tag === 'Right' && id._tag === 'Right') return { device: raw, deviceId: id.right, kind: kind.right };
  }
  throw badInput(
    `device must be a device id (a lower-case UUID) or a persistent id (<kind>/<uuid>, kind one of totp, hotp, static, email, sms; got "${raw.slice(0, 80).replace(/[\u0000-\u001f\u007f]/g, '?')}")`,
  );
};

/** ISO-8601 (`2026-11-28T12:00:00Z`) or `@<unix seconds>`, as the CLI takes them. */
export const instantParam = (raw: string, name: string): number => {
  try {
    return parseInstant(raw, name);
  } catch (e) {
    if (e instanceof UsageError) throw badInput(e.message.replace(/[\u0000-\u001f\u007f]/g, '?'));
    throw e;
  }
};

export const booleanParam = (raw: string | undefined, name: string): boolean | undefined => {
  if (raw === undefined) return undefined;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw badInput(`${name} must be true or false (got "${raw.slice(0, 20).replace(/[\u0000-\u001f\u007f]/g, '?')}")`);
};

export const integerParam = (raw: string | undefined, name: string, min: number, max: number): number | undefined => {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max)
    throw badInput(`${name} must be a whole number from ${min} to ${max} (got "${raw.slice(0, 20).replace(/[\u0000-\u001f\u007f]/g, '?')}")`);
  return n;
};

export const cursorParam = (raw: string | undefined): string | undefined => {
  if (raw === undefined || raw === '') return undefined;
  if (raw.length > 512 || !/^[A-Za-z0-9_-]+$/.test(raw)) throw badInput('cursor is not one this API returned; start again without it');
  return raw;
};

/**
 * The X-Factorstream-Actor header: a name the token holder says they act for (1–128 characters,
 * no control characters). It is recorded as onBehalfOf, apart from the actor, which is always
 * the authenticated identity; the reserved `admin:` form is refused (400).
 */
export const actorHeader = (raw: string | undefined): string | undefined => {
  if (raw === undefined) return undefined;
  const name = decode(Actor, raw, 'X-Factorstream-Actor: ');
  if (name.toLowerCase().startsWith(RESERVED_ACTOR_PREFIX))
    throw badInput(`X-Factorstream-Actor must not start with "${RESERVED_ACTOR_PREFIX}": that form names the authenticated admin, which the server records itself`);
  return name;
};

// ---- bodies ----------------------------------------------------------------------------------

export const UnlockBody = t.type({ reason: Reason });
export const RenameBody = t.type({ name: DeviceName });
export const RemoveBody = t.partial({ reason: Reason });

/** describeErrors writes "name: name must …"; once is enough. */
const tidy = (message: string): string => message.replace(/(^|; )([A-Za-z.]+): \2 /g, '$1$2 ');

/** Parses a JSON object body and checks it with `codec`; unknown fields are refused (a typo should not be ignored). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const parseBody = <C extends t.TypeC<any> | t.PartialC<any>>(text: string, codec: C): t.TypeOf<C> => {
  let json: unknown;
  try {
    json = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw badInput('the body is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw badInput('the body must be a JSON object');
  const known = Object.keys(codec.props);
  const unknown = Object.keys(json).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw badInput(
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}; this endpoint takes ${known.join(', ')}`,
    );
  if (codec._tag === 'InterfaceType') {
    const missing = known.filter((k) => (json as Record<string, unknown>)[k] === undefined);
    if (missing.length > 0) throw badInput(`${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} required`);
  }
  const decoded = decodeWith(codec as t.Decoder<unknown, t.TypeOf<C>>, json);
  if (decoded._tag === 'Left') throw badInput(tidy(decoded.left));
  return decoded.right;
};

/** Admin commands take JSON only: a cross-site form can send neither that content type nor the bearer header. */
export const requireJson = (contentType: string | undefined): void => {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json')
    throw new HttpError(415, 'unsupported-media-type', `send the body as JSON with Content-Type: application/json (got ${type ? `"${type.slice(0, 60)}"` : 'none'})`);
};
