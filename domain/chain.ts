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

/** JSON with object keys sorted at every level; arrays keep their order. */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v as Record<string, unknown>).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

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
  sha256(
    canonicalJson({ stream: e.streamName, version: e.version, eventId: e.eventId, type: e.type, data: e.data, metadata: e.metadata }),
  );

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
