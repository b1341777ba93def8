/**
 * Digests of the whole log, which prove later that it only grew (as a Certificate
 * Transparency signed tree head or an AWS QLDB digest does).
 *
 * A digest names a global position and commits to every event at or before it: the count,
 * the number of streams, and a root — SHA-256 over each stream's name, version and rolling
 * hash (the hash of the previous rolling hash and the event's own hash), in stream-name order.
 * It is signed with the Vault's event signer (the key that MACs events) and small enough to
 * keep anywhere else: a file, a ticket, a second database, a printout.
 *
 * To verify a digest, the log is read again up to its position and the same root made: a
 * deleted newest event, a truncated or removed stream, or a rewritten past changes the count
 * or the root; events appended since do not touch it (positions only grow).
 */
import * as t from 'io-ts';
import { canonicalJson, eventHash, sha256, type ChainedEvent } from './chain.ts';
import { Instant, NonNegativeInt } from './codecs.ts';
import { constantTimeEqual, type EventSigner } from './event-mac.ts';

const Hex64 = new t.Type<string, string, unknown>(
  'sha-256 (64 hex digits)',
  (u): u is string => typeof u === 'string' && /^[0-9a-f]{64}$/.test(u),
  (u, c) => (typeof u === 'string' && /^[0-9a-f]{64}$/.test(u) ? t.success(u) : t.failure(u, c, 'must be 64 lower-case hex digits')),
  t.identity,
);
const Text = (name: string, max: number) =>
  new t.Type<string, string, unknown>(
    name,
    (u): u is string => typeof u === 'string' && u.length > 0 && u.length <= max,
    (u, c) => (typeof u === 'string' && u.length > 0 && u.length <= max ? t.success(u) : t.failure(u, c, `${name} must be 1–${max} characters`)),
    t.identity,
  );

/** A digest as written to a file. */
export const LogDigest = t.type({
  format: t.literal('factorstream-log-digest/1'),
  /** The last global position it covers (null: the empty log). */
  position: t.union([Text('position', 200), t.null]),
  count: NonNegativeInt,
  streams: NonNegativeInt,
  root: Hex64,
  /** When it was taken (ms since the epoch). */
  at: Instant,
  /** The event signer's key id, and its MAC (base64url) over the canonical encoding of the rest. */
  keyId: Text('keyId', 64),
  signature: Text('signature', 128),
});
export type LogDigest = t.TypeOf<typeof LogDigest>;
export type UnsignedDigest = Omit<LogDigest, 'keyId' | 'signature'>;

const EMPTY = sha256('factorstream log digest v1');

/** Folds events (in global order) into the count and root a digest commits to. */
export const createDigestBuilder = () => {
  const streams = new Map<string, { version: number; rolling: string }>();
  let count = 0;
  return {
    push: (e: ChainedEvent): void => {
      const s = streams.get(e.streamName);
      streams.set(e.streamName, { version: e.version, rolling: sha256(`${s?.rolling ?? EMPTY}${eventHash(e)}`) });
      count++;
    },
    result: (): { readonly count: number; readonly streams: number; readonly root: string } => {
      const names = [...streams.keys()].sort();
      let text = '';
      for (const n of names) {
        const s = streams.get(n)!;
        text += `${JSON.stringify(n)} ${s.version} ${s.rolling}\n`;
      }
      return { count, streams: names.length, root: sha256(`factorstream log root v1\n${text}`) };
    },
  };
};

const signedText = (d: UnsignedDigest & { readonly keyId: string }): string =>
  canonicalJson({ at: d.at, count: d.count, format: d.format, keyId: d.keyId, position: d.position, root: d.root, streams: d.streams });

export const signDigest = (signer: EventSigner, d: UnsignedDigest): LogDigest => ({
  ...d,
  keyId: signer.keyId,
  signature: signer.mac(signedText({ ...d, keyId: signer.keyId })),
});

export const digestSignatureValid = (verifier: EventSigner, d: LogDigest): boolean => constantTimeEqual(verifier.mac(signedText(d)), d.signature);

export type DigestProblem =
  | { readonly kind: 'fewer-events'; readonly message: string }
  | { readonly kind: 'rewritten'; readonly message: string };

/** What the log as read now (up to the digest's position) says against the digest; null when it extends it. */
export const compareWithDigest = (
  d: LogDigest,
  now: { readonly count: number; readonly streams: number; readonly root: string },
): DigestProblem | null => {
  if (now.count < d.count)
    return {
      kind: 'fewer-events',
      message:
        `the log holds ${now.count} event(s) in ${now.streams} stream(s) up to position ${d.position ?? 'start'}, the digest ${d.count} in ${d.streams}: ` +
        'events were deleted (a newest event, a truncated or removed stream)',
    };
  if (now.count !== d.count || now.streams !== d.streams || now.root !== d.root)
    return {
      kind: 'rewritten',
      message:
        `the log up to position ${d.position ?? 'start'} is not the one the digest was taken of ` +
        `(${now.count} event(s) in ${now.streams} stream(s), the digest ${d.count} in ${d.streams}; roots differ): events were edited, replaced, inserted or reordered`,
    };
  return null;
};
