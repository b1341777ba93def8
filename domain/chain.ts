/**
 * The hash chain: every event's metadata carries `prevHash`, the SHA-256 of the previous
 * event of its stream in a canonical encoding (the first event links to a genesis hash of
 * the stream's name). Editing, removing or reordering a stored event breaks the link of the
 * event after it, and a verifier reports the first broken link.
 *
 * What a chain cannot show by itself: a change to the newest event of a stream, or its
 * removal, until a later event links to it. Checkpoints kept elsewhere (a projection's
 * database, an exported head hash) anchor the head.
 */
import { createHash } from 'node:crypto';
import { oneShotHash } from './one-shot-hash.ts';

/** A local const, so that its check narrows inside the closures below (see one-shot-hash.ts). */
const oneShot = oneShotHash;

/**
 * The definition of the canonical encoding: JSON.stringify of a copy with the keys of every
 * object sorted. Every hash in every stored chain was made with exactly this; canonicalJson
 * below must give the same text for every value (test/domain/hot-path.test.ts).
 */
export const canonicalJsonReference = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v as Record<string, unknown>).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });

/** Thrown inside the fast path for anything it leaves to the reference. */
const EXOTIC = Symbol('exotic');

/** Array-index keys, which an object lists first and in numeric order whatever the sort did. */
const isIndexKey = (k: string): boolean => {
  const c = k.charCodeAt(0);
  return c >= 48 && c <= 57 && /^(?:0|[1-9]\d*)$/.test(k) && Number(k) < 4294967295;
};

/**
 * The key order of the reference's sorted copy: its array-index keys first, ascending (every
 * object lists them so), then the other keys in sorted order. Object.keys already lists the
 * index keys first and ascending; only the rest needs sorting, and usually is sorted already.
 */
const canonicalKeys = (o: object): string[] => {
  const keys = Object.keys(o);
  let indices = 0;
  while (indices < keys.length && isIndexKey(keys[indices]!)) indices++;
  const rest = indices === 0 ? keys : keys.slice(indices);
  let sorted = true;
  for (let i = 1; i < rest.length && sorted; i++) sorted = rest[i - 1]! < rest[i]!;
  if (!sorted) rest.sort();
  return indices === 0 ? rest : keys.slice(0, indices).concat(rest);
};

/** Characters JSON.stringify escapes (lone surrogates among them). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const quote = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"');
/** Object keys come from a small set: each is quoted once. */
const quotedKeys = new Map<string, string>();
const quoteKey = (k: string): string => {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    if (quotedKeys.size < 10_000) quotedKeys.set(k, q);
  }
  return q;
};

/** Writes `v` as the reference would, or returns undefined where it would leave the value out. */
const write = (v: unknown): string | undefined => {
  switch (typeof v) {
    case 'string':
      return quote(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'object': {
      if (v === null) return 'null';
      const proto = Object.getPrototypeOf(v) as unknown;
      if (Array.isArray(v)) {
        if (proto !== Array.prototype || 'toJSON' in v) throw EXOTIC;
        let out = '[';
        for (let i = 0; i < v.length; i++) out += (i > 0 ? ',' : '') + (write(v[i]) ?? 'null');
        return out + ']';
      }
      // toJSON, boxed primitives, class instances: left to the reference.
      if ((proto !== Object.prototype && proto !== null) || 'toJSON' in v) throw EXOTIC;
      let out = '{';
      let first = true;
      for (const k of canonicalKeys(v)) {
        // The reference's copy assigns sorted[k]: "__proto__" sets a prototype, not a key.
        if (k === '__proto__') continue;
        const x = write((v as Record<string, unknown>)[k]);
        if (x === undefined) continue;
        out += (first ? '' : ',') + quoteKey(k) + ':' + x;
        first = false;
      }
      return out + '}';
    }
    default:
      throw EXOTIC; // bigint: the reference throws its own TypeError
  }
};

/**
 * JSON with object keys sorted at every level; arrays keep their order. The same text as
 * canonicalJsonReference, written in one pass without the sorted copies (it runs for every
 * event the engine appends).
 */
export const canonicalJson = (value: unknown): string => {
  try {
    return write(value) as string;
  } catch (e) {
    if (e === EXOTIC) return canonicalJsonReference(value);
    throw e;
  }
};

/** SHA-256 of text, in hex (node:crypto's one-shot hash where it has one). */
export const sha256 = oneShot
  ? (s: string): string => oneShot('sha256', s, 'hex')
  : (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

export const genesisHash = (streamName: string): string => sha256(`factorstream chain v1\u0000${streamName}`);

export interface ChainedEvent {
  readonly streamName: string;
  readonly version: number;
  readonly eventId: string;
  readonly type: string;
  readonly data: unknown;
  readonly metadata: unknown;
}

/** The hash the next event of the stream links to. */
export const eventHash = (e: ChainedEvent): string =>
  // Keys written in sorted order: canonicalJson then has nothing to sort at the top.
  sha256(canonicalJson({ data: e.data, eventId: e.eventId, metadata: e.metadata, stream: e.streamName, type: e.type, version: e.version }));

export interface ChainBreak {
  readonly streamName: string;
  readonly version: number;
  readonly problem: string;
}

const prevHashOf = (metadata: unknown): string | undefined => {
  if (typeof metadata !== 'object' || metadata === null) return undefined;
  const p = (metadata as { prevHash?: unknown }).prevHash;
  return typeof p === 'string' ? p : undefined;
};

/**
 * Checks events one at a time, in each stream's order (events of several streams may be
 * interleaved, as in the global log). Remembers only the last hash of each stream.
 */
export const createChainVerifier = () => {
  const heads = new Map<string, { version: number; hash: string }>();
  let checked = 0;
  return {
    push: (e: ChainedEvent): ChainBreak | null => {
      const head = heads.get(e.streamName);
      const expectedVersion = (head?.version ?? 0) + 1;
      const expected = head?.hash ?? genesisHash(e.streamName);
      const prev = prevHashOf(e.metadata);
      let problem: string | null = null;
      if (e.version !== expectedVersion)
        problem = `version ${e.version} follows version ${expectedVersion - 1}: an event is missing or out of order`;
      else if (prev === undefined) problem = 'the event carries no link to the one before it';
      else if (prev !== expected)
        problem =
          expectedVersion === 1
            ? 'the first event does not link to the start of its stream: it was altered or moved from another stream'
            : `the link to version ${expectedVersion - 1} does not match: that event (or this link) was altered, removed or reordered`;
      heads.set(e.streamName, { version: e.version, hash: eventHash(e) });
      checked++;
      return problem === null ? null : { streamName: e.streamName, version: e.version, problem };
    },
    /** How many events were checked, and each stream's head (to anchor elsewhere). */
    summary: () => ({ checked, streams: heads.size, heads: new Map(heads) }),
  };
};

/** The first broken link of one stream's events, or null when the chain holds. */
export const verifyChain = (events: readonly ChainedEvent[]): ChainBreak | null => {
  const v = createChainVerifier();
  for (const e of events) {
    const b = v.push(e);
    if (b) return b;
  }
  return null;
};
