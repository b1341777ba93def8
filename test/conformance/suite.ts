/**
 * The EventStore contract, run against every store (memory, SQLite, PostgreSQL, EventStoreDB).
 *
 * Every test gets a fresh store from the factory and uses its own stream names, so a store
 * whose factory hands out a shared backend still gives meaningful results.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, type EventStore, type GlobalPosition, type NewEvent, type RecordedEvent } from '../../domain/ports.ts';

export interface ConformanceCaps {
  /**
   * Appends from one store instance really run at the same time (a connection pool, a network
   * client). The race tests then run more rounds; on a store that serialises appends they
   * still run, and prove the outcome of interleaved calls.
   */
  readonly concurrentWriters?: boolean;
  /**
   * The store refuses an event id already used in another stream. EventStoreDB checks ids
   * only within a stream, so it opts out of that one test; factorstream's deterministic ids
   * include the stream name, so they never collide across streams in the first place.
   */
  readonly uniqueEventIdsAcrossStreams?: boolean;
  /** The store reports what a refused append missed (EventStore.tailOnConflict). */
  readonly tailOnConflict?: boolean;
}

export type StoreFactory = () => Promise<{ store: EventStore; cleanup: () => Promise<void> }>;

// ---- helpers ------------------------------------------------------------------------------------

const stream = (label: string) => `conformance${label}-${randomUUID()}`;

const event = (type = 'Tested', data: Record<string, unknown> = {}): NewEvent => {
  const eventId = randomUUID();
  return { eventId, type, data: { ...data, nested: { list: [1, 'two', null], flag: true } }, metadata: { eventId, actor: 'conformance' } };
};
const events = (n: number, type = 'Tested') => Array.from({ length: n }, (_, i) => event(type, { i }));

const ids = (list: readonly { eventId: string }[]) => list.map((e) => e.eventId);

/** Waits until `condition` holds, checking every few milliseconds; fails after `ms`. */
const waitFor = async (condition: () => boolean, what: string, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** Reads the whole global log in pages of `limit`. */
const readAllPaged = async (store: EventStore, limit: number, after: GlobalPosition | null = null) => {
  const out: RecordedEvent[] = [];
  let pages = 0;
  for (;;) {
    const page = await store.readAll({ after, limit });
    expect(page.events.length).toBeLessThanOrEqual(limit);
    if (page.events.length === 0) {
      expect(page.last).toBe(after);
      return { events: out, pages };
    }
    expect(page.last).toBe(page.events[page.events.length - 1]!.position);
    out.push(...page.events);
    after = page.last;
    pages++;
  }
};

const expectStrictlyIncreasing = (positions: readonly string[]) => {
  for (let i = 1; i < positions.length; i++) expect(positions[i]! > positions[i - 1]!, `position ${i} sorts after ${i - 1}`).toBe(true);
};

// ---- the suite ----------------------------------------------------------------------------------

export function describeEventStoreConformance(name: string, factory: StoreFactory, caps: ConformanceCaps = {}): void {
  describe(`EventStore conformance: ${name}`, () => {
    let store: EventStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => {
      await cleanup();
    });

    const raceRounds = caps.concurrentWriters ? 20 : 3;

    /**
     * The refusal of an append at `expectedVersion` to stream `s`, now at `actualVersion`: with
     * the events after expectedVersion as they are stored when the store reports its tail.
     */
    const conflictOf = async (s: string, expectedVersion: number, actualVersion: number) =>
      store.tailOnConflict && actualVersion > expectedVersion
        ? { ok: false, expectedVersion, actualVersion, tail: (await store.readStream(s)).events.slice(expectedVersion) }
        : { ok: false, expectedVersion, actualVersion };

    describe('appendToStream and readStream', () => {
      it('says whether a refused append reports what it missed', () => {
        expect(store.tailOnConflict === true).toBe(caps.tailOnConflict === true);
      });

      it('reads a missing stream as version 0 with no events', async () => {
        expect(await store.readStream(stream('missing'))).toEqual({ version: 0, events: [] });
      });

      it('creates a stream with expected version 0 and reads it back in order with versions', async () => {
        const s = stream('create');
        const written = events(3);
        const result = await store.appendToStream(s, written, 0);
        expect(result).toMatchObject({ ok: true, version: 3 });

        const read = await store.readStream(s);
        expect(read.version).toBe(3);
        expect(read.events.map((e) => e.version)).toEqual([1, 2, 3]);
        expect(ids(read.events)).toEqual(ids(written));
        read.events.forEach((e, i) => {
          expect(e.streamName).toBe(s);
          expect(e.type).toBe(written[i]!.type);
          expect(e.data).toEqual(written[i]!.data);
          expect(e.metadata).toEqual(written[i]!.metadata);
          expect(Number.isSafeInteger(e.recordedAt)).toBe(true);
          expect(typeof e.position).toBe('string');
        });
        expectStrictlyIncreasing(read.events.map((e) => e.position));
        // The append reports the position of its last event.
        if (result.ok) expect(result.position).toBe(read.events[2]!.position);
        // Nothing the store returns needs special JSON handling (no bigint, no cycles).
        expect(JSON.parse(JSON.stringify(read.events))).toEqual(read.events);
      });

      it('appends at the exact current version, across several appends and interleaved streams', async () => {
        const a = stream('a');
        const b = stream('b');
        const batches = [events(2), events(1), events(4)];
        let version = 0;
        for (const [i, batch] of batches.entries()) {
          expect(await store.appendToStream(b, [event()], i)).toMatchObject({ ok: true, version: i + 1 });
          const result = await store.appendToStream(a, batch, version);
          version += batch.length;
          expect(result).toMatchObject({ ok: true, version });
        }
        const read = await store.readStream(a);
        expect(read.version).toBe(7);
        expect(read.events.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(ids(read.events)).toEqual(batches.flat().map((e) => e.eventId));
        expect((await store.readStream(b)).version).toBe(3);
      });

      it('returns typed conflict values and writes nothing on a wrong expected version', async () => {
        const s = stream('conflict');
        expect(await store.appendToStream(s, [event()], 1)).toEqual(await conflictOf(s, 1, 0));
        expect(await store.readStream(s)).toEqual({ version: 0, events: [] });

        await store.appendToStream(s, events(2), 0);
        // "Must not exist" on an existing stream.
        expect(await store.appendToStream(s, [event()], 0)).toEqual(await conflictOf(s, 0, 2));
        // Behind and ahead of the stream.
        expect(await store.appendToStream(s, [event()], 1)).toEqual(await conflictOf(s, 1, 2));
        expect(await store.appendToStream(s, [event()], 5)).toEqual(await conflictOf(s, 5, 2));
        expect((await store.readStream(s)).version).toBe(2);
      });

      it.skipIf(!caps.tailOnConflict)('reports what a refused append missed (tailOnConflict), exactly as a read gives it', async () => {
        const s = stream('tail');
        await store.appendToStream(s, events(3), 0);
        await store.appendToStream(s, [event('Later', { n: 1 })], 3);
        for (const expected of [0, 1, 3]) {
          const r = await store.appendToStream(s, [event()], expected);
          expect(r.ok).toBe(false);
          if (r.ok) return;
          expect(r.tail).toEqual((await store.readStream(s)).events.slice(expected));
          expect(r.tail?.map((e) => e.version)).toEqual(Array.from({ length: 4 - expected }, (_, i) => expected + i + 1));
        }
        // Ahead of the stream: nothing was missed, nothing to report.
        expect(await store.appendToStream(s, [event()], 9)).toEqual({ ok: false, expectedVersion: 9, actualVersion: 4 });
        // Far behind: a store may leave a long tail to a read; what it reports is the true tail.
        const long = stream('longtail');
        for (let i = 0; i < 3; i++) await store.appendToStream(long, events(100), i * 100);
        const r = await store.appendToStream(long, [event()], 0);
        expect(r).toMatchObject({ ok: false, expectedVersion: 0, actualVersion: 300 });
        if (!r.ok && r.tail !== undefined) expect(r.tail).toEqual((await store.readStream(long)).events);
        expect((await store.readStream(long)).version).toBe(300);
      });

      it('treats an empty append as a version check', async () => {
        const s = stream('empty');
        expect(await store.appendToStream(s, [], 0)).toMatchObject({ ok: true, version: 0 });
        expect(await store.appendToStream(s, [], 1)).toEqual(await conflictOf(s, 1, 0));
        await store.appendToStream(s, events(2), 0);
        expect(await store.appendToStream(s, [], 2)).toMatchObject({ ok: true, version: 2 });
        expect(await store.appendToStream(s, [], 0)).toEqual(await conflictOf(s, 0, 2));
        expect((await store.readStream(s)).version).toBe(2);
      });

      it('refuses an expected version that is not a whole number ≥ 0', async () => {
        const s = stream('badversion');
        for (const bad of [-1, 1.5, Number.NaN]) {
          await expect(store.appendToStream(s, [event()], bad)).rejects.toMatchObject({ name: 'StoreError', code: 'invalid' });
        }
        expect((await store.readStream(s)).version).toBe(0);
      });
    });

    describe('concurrency', () => {
      it('lets exactly one of several concurrent first writes win', async () => {
        for (let round = 0; round < raceRounds; round++) {
          const s = stream('firstwrite');
          const candidates = Array.from({ length: 8 }, () => [event('First')]);
          const results = await Promise.all(candidates.map((c) => store.appendToStream(s, c, 0)));
          const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
          expect(winners).toHaveLength(1);
          for (const r of results) if (!r.ok) expect(r).toEqual(await conflictOf(s, 0, 1));
          const read = await store.readStream(s);
          expect(read.version).toBe(1);
          expect(ids(read.events)).toEqual(ids(candidates[winners[0]!]!));
        }
      });

      it('lets exactly one of several concurrent appends at the same version win', async () => {
        for (let round = 0; round < raceRounds; round++) {
          const s = stream('samevers');
          await store.appendToStream(s, events(3), 0);
          const candidates = Array.from({ length: 8 }, () => events(2));
          const results = await Promise.all(candidates.map((c) => store.appendToStream(s, c, 3)));
          const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
          expect(winners).toHaveLength(1);
          for (const r of results) if (!r.ok) expect(r).toEqual(await conflictOf(s, 3, 5));
          const read = await store.readStream(s);
          expect(read.version).toBe(5);
          expect(ids(read.events.slice(3))).toEqual(ids(candidates[winners[0]!]!));
        }
      });

      it('keeps concurrent retries of one append idempotent: all succeed, one write', async () => {
        for (let round = 0; round < raceRounds; round++) {
          const s = stream('retryrace');
          const batch = events(3);
          const results = await Promise.all(Array.from({ length: 4 }, () => store.appendToStream(s, batch, 0)));
          for (const r of results) expect(r).toMatchObject({ ok: true, version: 3 });
          const positions = new Set(results.map((r) => (r.ok ? r.position : '')));
          expect(positions.size).toBe(1);
          const read = await store.readStream(s);
          expect(ids(read.events)).toEqual(ids(batch));
        }
      });
    });

    describe('atomicity and idempotency', () => {
      it('writes nothing of a multi-event append that conflicts', async () => {
        const s = stream('atomic');
        await store.appendToStream(s, events(2), 0);
        const before = (await store.readAll()).events.length;
        const batch = events(3);
        expect(await store.appendToStream(s, batch, 1)).toEqual(await conflictOf(s, 1, 2));
        expect((await store.readStream(s)).version).toBe(2);
        expect((await store.readAll()).events.length).toBe(before);
        // The same events can still be appended at the right version, whole.
        expect(await store.appendToStream(s, batch, 2)).toMatchObject({ ok: true, version: 5 });
      });

      it.skipIf(caps.uniqueEventIdsAcrossStreams === false)('writes nothing of a multi-event append that fails part-way (an event id already stored)', async () => {
        const s = stream('partfail');
        const other = stream('partfailother');
        const taken = event();
        await store.appendToStream(other, [taken], 0);
        const before = (await store.readAll()).events.length;
        const batch = [event(), event(), { ...event(), eventId: taken.eventId }];
        await expect(store.appendToStream(s, batch, 0)).rejects.toMatchObject({ name: 'StoreError', code: 'invalid' });
        expect(await store.readStream(s)).toEqual({ version: 0, events: [] });
        expect((await store.readAll()).events.length).toBe(before);
        expect((await store.readStream(other)).version).toBe(1);
      });

      it('does not duplicate a retried append with the same event ids', async () => {
        const s = stream('retry');
        const batch = events(2);
        const first = await store.appendToStream(s, batch, 0);
        expect(first).toMatchObject({ ok: true, version: 2 });

        // The same call again: success, same version and position, nothing written.
        expect(await store.appendToStream(s, batch, 0)).toEqual(first);
        // Still a retry after the stream moved on.
        await store.appendToStream(s, events(1), 2);
        expect(await store.appendToStream(s, batch, 0)).toEqual(first);
        // A retry of a prefix of the original append is a retry too.
        expect(await store.appendToStream(s, batch.slice(0, 1), 0)).toMatchObject({ ok: true, version: 1 });

        // Different events at that version are a conflict, even when one id matches.
        expect(await store.appendToStream(s, [batch[0]!, event()], 0)).toEqual(await conflictOf(s, 0, 3));
        expect(await store.appendToStream(s, [batch[1]!, batch[0]!], 0)).toEqual(await conflictOf(s, 0, 3));

        const read = await store.readStream(s);
        expect(read.version).toBe(3);
        const all = (await store.readAll()).events.filter((e) => e.streamName === s);
        expect(all).toHaveLength(3);
        expect(new Set(ids(all)).size).toBe(3);
      });
    });

    describe('readAll', () => {
      it('returns every event exactly once, in one global order consistent with each stream', async () => {
        const streams = [stream('all1'), stream('all2'), stream('all3')];
        const versions = new Map(streams.map((s) => [s, 0]));
        const written: string[] = [];
        for (let i = 0; i < 12; i++) {
          const s = streams[i % 3]!;
          const batch = events(1 + (i % 3));
          const v = versions.get(s)!;
          await store.appendToStream(s, batch, v);
          versions.set(s, v + batch.length);
          written.push(...ids(batch));
        }
        const { events: all, last } = await store.readAll();
        const mine = all.filter((e) => streams.includes(e.streamName));
        // Appends happened one after the other, so the global order is the order they were made in.
        expect(ids(mine)).toEqual(written);
        expect(new Set(ids(all)).size).toBe(all.length);
        expectStrictlyIncreasing(all.map((e) => e.position));
        expect(last).toBe(all[all.length - 1]!.position);
        for (const s of streams) {
          const inStream = mine.filter((e) => e.streamName === s);
          expect(inStream.map((e) => e.version)).toEqual(inStream.map((_, i) => i + 1));
          // readAll and readStream agree on every field.
          expect(inStream).toEqual((await store.readStream(s)).events);
        }
      });

      it('reads after a position, pages by limit, and reports `last`', async () => {
        const s = stream('paging');
        await store.appendToStream(s, events(10), 0);
        const { events: all } = await store.readAll();
        expect(all.length).toBeGreaterThanOrEqual(10);

        for (const limit of [1, 3, 4, all.length + 5]) {
          const paged = await readAllPaged(store, limit);
          expect(ids(paged.events)).toEqual(ids(all));
          expect(paged.pages).toBe(Math.ceil(all.length / limit));
        }

        const k = all.length - 4;
        const tail = await store.readAll({ after: all[k - 1]!.position });
        expect(ids(tail.events)).toEqual(ids(all.slice(k)));
        expect(tail.last).toBe(all[all.length - 1]!.position);

        const end = all[all.length - 1]!.position;
        expect(await store.readAll({ after: end })).toEqual({ events: [], last: end });
        expect(await store.readAll({ after: null, limit: 0 })).toEqual({ events: [], last: null });
        expect(ids((await store.readAll({ after: null })).events)).toEqual(ids(all));
      });

      it('refuses a position that is not one of its own', async () => {
        await expect(store.readAll({ after: 'not a position' })).rejects.toMatchObject({ name: 'StoreError', code: 'invalid' });
      });
    });

    describe('subscribe', () => {
      it('delivers existing then live events in order, calls onCaughtUp, and stops on close()', async () => {
        const s = stream('sub');
        await store.appendToStream(s, events(5), 0);
        const existing = (await store.readAll()).events;

        const received: RecordedEvent[] = [];
        let caughtUp: GlobalPosition | null | undefined;
        let caughtUpCalls = 0;
        let errors = 0;
        const subscription = store.subscribe({
          onEvents: async (batch) => {
            received.push(...batch);
          },
          onCaughtUp: (last) => {
            caughtUp = last;
            caughtUpCalls++;
          },
          onError: () => errors++,
        });
        await waitFor(() => caughtUpCalls > 0, 'onCaughtUp');
        // Caught up means: everything that was there has been delivered, up to `last`.
        expect(ids(received)).toEqual(ids(existing));
        expect(caughtUp).toBe(existing[existing.length - 1]!.position);

        const live = [events(2), events(1), events(3)];
        let v = 5;
        for (const batch of live) {
          await store.appendToStream(s, batch, v);
          v += batch.length;
        }
        await waitFor(() => received.length === existing.length + 6, 'the live events');
        expect(ids(received)).toEqual([...ids(existing), ...live.flat().map((e) => e.eventId)]);
        expectStrictlyIncreasing(received.map((e) => e.position));
        expect(caughtUpCalls).toBe(1);

        await subscription.close();
        const countAtClose = received.length;
        await store.appendToStream(s, events(2), v);
        // Proving a negative needs a wait: several poll intervals of every store.
        await new Promise((r) => setTimeout(r, 400));
        expect(received.length).toBe(countAtClose);
        expect(errors).toBe(0);
      });

      it('resumes from a checkpoint without duplicates or gaps', async () => {
        const s = stream('resume');
        await store.appendToStream(s, events(6), 0);
        const before = (await store.readAll()).events;
        const start = before.length > 6 ? before[before.length - 7]!.position : null;

        // First run: a handler that checkpoints after each event and is closed part-way.
        const firstRun: RecordedEvent[] = [];
        let checkpoint: GlobalPosition | null = start;
        const first = store.subscribe({
          after: start,
          onEvents: async (batch) => {
            for (const e of batch) {
              firstRun.push(e);
              checkpoint = e.position;
            }
          },
        });
        await waitFor(() => firstRun.length >= 6, 'the first run');
        await first.close();
        expect(checkpoint).toBe(before[before.length - 1]!.position);

        await store.appendToStream(s, events(4), 6);

        const secondRun: RecordedEvent[] = [];
        let caughtUp = false;
        const second = store.subscribe({
          after: checkpoint,
          onEvents: async (batch) => {
            secondRun.push(...batch);
          },
          onCaughtUp: () => {
            caughtUp = true;
          },
        });
        await waitFor(() => caughtUp, 'the second run to catch up');
        await second.close();

        const seen = [...firstRun, ...secondRun];
        const stream_ = (await store.readStream(s)).events;
        expect(ids(seen)).toEqual(ids(stream_));
        expect(secondRun.map((e) => e.version)).toEqual([7, 8, 9, 10]);
      });

      it('waits for a slow handler: batches never overlap, and close() waits for the running one', async () => {
        const s = stream('slow');
        await store.appendToStream(s, events(3), 0);
        const start = (await store.readAll()).events.at(-4)?.position ?? null;
        let running = 0;
        let overlapped = false;
        let finished = 0;
        let entered = false;
        const subscription = store.subscribe({
          after: start,
          onEvents: async (batch) => {
            entered = true;
            running++;
            if (running > 1) overlapped = true;
            await new Promise((r) => setTimeout(r, 150));
            running--;
            finished += batch.length;
          },
        });
        await waitFor(() => entered, 'the handler to start');
        await store.appendToStream(s, events(2), 3);
        await subscription.close();
        // close() resolved only after the handler that was running had returned.
        expect(running).toBe(0);
        expect(finished).toBeGreaterThan(0);
        expect(overlapped).toBe(false);
      });

      it('stops and reports through onError when a handler fails', async () => {
        const s = stream('failing');
        await store.appendToStream(s, events(2), 0);
        const start = (await store.readAll()).events.at(-3)?.position ?? null;
        const failure = new Error('handler failed');
        let reported: unknown;
        let calls = 0;
        const subscription = store.subscribe({
          after: start,
          onEvents: async () => {
            calls++;
            throw failure;
          },
          onError: (error) => {
            reported = error;
          },
        });
        await waitFor(() => reported !== undefined, 'onError');
        expect(reported).toBe(failure);
        await store.appendToStream(s, events(1), 2);
        await new Promise((r) => setTimeout(r, 300));
        expect(calls).toBe(1);
        await subscription.close();
      });
    });

    describe('readStreamFrom (optional) and the written flag', () => {
      it('reads the events after a version, with the stream\'s version, whoever appended them', async ({ skip }) => {
        if (!store.readStreamFrom) return skip();
        const s = stream('from');
        expect(await store.readStreamFrom(s, 0)).toEqual({ version: 0, events: [] });
        const first = events(3);
        await store.appendToStream(s, first, 0);
        const all = await store.readStream(s);
        expect(await store.readStreamFrom(s, 0)).toEqual(all);
        const tail = await store.readStreamFrom(s, 1);
        expect(tail.version).toBe(3);
        expect(tail.events).toEqual(all.events.slice(1));
        expect(await store.readStreamFrom(s, 3)).toEqual({ version: 3, events: [] });
        // Past the end: the stream's real version, and no events (the caller reads it whole).
        expect(await store.readStreamFrom(s, 7)).toEqual({ version: 3, events: [] });
        expect(await store.readStreamFrom(stream('none'), 2)).toEqual({ version: 0, events: [] });
        await store.appendToStream(s, events(2), 3);
        const more = await store.readStreamFrom(s, 3);
        expect(more.version).toBe(5);
        expect(more.events.map((e) => e.version)).toEqual([4, 5]);
        expect(more.events).toEqual((await store.readStream(s)).events.slice(3));
        await expect(store.readStreamFrom(s, -1)).rejects.toMatchObject({ name: 'StoreError', code: 'invalid' });
      });

      it('says whether an append wrote its events or found them already stored (when it can tell)', async () => {
        const s = stream('written');
        const batch = events(2);
        const first = await store.appendToStream(s, batch, 0);
        const retry = await store.appendToStream(s, batch, 0);
        const conflict = await store.appendToStream(s, events(1), 0);
        expect(conflict.ok).toBe(false);
        if (!first.ok || !retry.ok) throw new Error('expected both appends to succeed');
        // A store that cannot tell leaves it out; one that can must be right both ways.
        if (first.written === undefined) return expect(retry.written).toBeUndefined();
        expect(first.written).toBe(true);
        expect(retry.written).toBe(false);
        // It does not change what the result equals: a retry's result is the first call's.
        expect(retry).toEqual(first);
      });
    });

    describe('close', () => {
      it('refuses use after close() with StoreError("closed"), and close() can be called twice', async () => {
        const s = stream('closed');
        await store.appendToStream(s, [event()], 0);
        await store.close();
        await store.close();
        const closed = { name: 'StoreError', code: 'closed' };
        await expect(store.readStream(s)).rejects.toMatchObject(closed);
        await expect(store.appendToStream(s, [event()], 1)).rejects.toMatchObject(closed);
        await expect(store.readAll()).rejects.toMatchObject(closed);
        await expect(store.readStream(s)).rejects.toBeInstanceOf(StoreError);
      });
    });
  });
}
