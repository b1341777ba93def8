/**
 * A digest commits to every event at or before its position: whatever is deleted, edited or
 * reordered there changes its count or root; what is appended after it changes nothing.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeWith } from '../../domain/codecs.ts';
import { compareWithDigest, createDigestBuilder, digestSignatureValid, LogDigest, signDigest } from '../../domain/digest.ts';
import type { EventSigner } from '../../domain/event-mac.ts';

const signer = (key: string): EventSigner => ({ keyId: 'aaaaaaaaaaaaaaaa', mac: (t) => createHmac('sha256', key).update(t).digest('base64url') });

interface Ev {
  streamName: string;
  version: number;
  eventId: string;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  position: string;
}
const log: Ev[] = [];
const versions = new Map<string, number>();
for (let i = 1; i <= 30; i++) {
  const streamName = `otpdevice-${i % 4}`;
  const version = (versions.get(streamName) ?? 0) + 1;
  versions.set(streamName, version);
  log.push({ streamName, version, eventId: `e${i}`, type: 'DeviceRenamed', data: { name: `n${i}`, at: i }, metadata: { actor: 'a' }, position: String(i).padStart(4, '0') });
}

const rootOf = (events: readonly Ev[], upTo: string) => {
  const b = createDigestBuilder();
  for (const e of events) if (e.position <= upTo) b.push(e);
  return b.result();
};
const digestOf = (events: readonly Ev[]) =>
  signDigest(signer('k'), { format: 'factorstream-log-digest/1', position: events.at(-1)!.position, ...rootOf(events, events.at(-1)!.position), at: 1_800_000_000_000 });

describe('log digests', () => {
  const d = digestOf(log);

  it('are signed, decode from their JSON, and refuse another key', () => {
    expect(decodeWith(LogDigest, JSON.parse(JSON.stringify(d)))._tag).toBe('Right');
    expect(digestSignatureValid(signer('k'), d)).toBe(true);
    expect(digestSignatureValid(signer('other'), d)).toBe(false);
    expect(digestSignatureValid(signer('k'), { ...d, count: d.count + 1 })).toBe(false);
    expect(d).toMatchObject({ count: 30, streams: 4 });
  });

  it('a log that only grew extends them', () => {
    const grown = [...log, { ...log[0]!, eventId: 'e31', version: 99, position: '0031' }];
    expect(compareWithDigest(d, rootOf(grown, d.position!))).toBeNull();
  });

  const changed: [string, Ev[], 'fewer-events' | 'rewritten'][] = [
    ['the newest event deleted', log.slice(0, -1), 'fewer-events'],
    ['a stream truncated', log.filter((e) => !(e.streamName === 'otpdevice-1' && e.version > 3)), 'fewer-events'],
    ['a stream removed', log.filter((e) => e.streamName !== 'otpdevice-2'), 'fewer-events'],
    ['the newest event edited', log.map((e, i) => (i === log.length - 1 ? { ...e, data: { ...e.data, name: 'evil' } } : e)), 'rewritten'],
    ['an old event edited', log.map((e, i) => (i === 2 ? { ...e, metadata: { actor: 'someone else' } } : e)), 'rewritten'],
    ['an event replaced by another', log.map((e, i) => (i === 5 ? { ...e, eventId: 'forged' } : e)), 'rewritten'],
  ];
  for (const [what, events, kind] of changed)
    it(`catch ${what}`, () => {
      const problem = compareWithDigest(d, rootOf(events, d.position!));
      expect(problem?.kind).toBe(kind);
      expect(problem?.message).toContain(d.position!);
    });
});
