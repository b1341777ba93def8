/**
 * In-memory event store with real optimistic concurrency. The reference implementation of
 * the EventStore port: the conformance suite runs against it like against every other store.
 */
import {
  StoreError,
  type AppendResult,
  type EventStore,
  type GlobalPosition,
  type NewEvent,
  type ReadAllOptions,
  type ReadAllResult,
  type RecordedEvent,
  type StreamRead,
  type SubscribeOptions,
  type Subscription,
} from '../../domain/ports.ts';
import { appended, encodeEvents } from './stored-event.ts';

/** Global positions are 1-based counters, zero-padded so that they sort as strings. */
export const formatPosition = (n: number): GlobalPosition => String(n).padStart(16, '0');
const parsePosition = (p: GlobalPosition | null | undefined): number => {
  if (p === null || p === undefined || p === '') return 0;
  const n = Number(p);
  if (!Number.isSafeInteger(n) || n < 0) throw new StoreError('invalid', `not a position of this store: "${p.slice(0, 40)}"`);
  return n;
};

export interface MemoryEventStoreOptions {
  /** Clock for `recordedAt`; defaults to the system clock. */
  readonly now?: () => number;
}

export const createMemoryEventStore = (options: MemoryEventStoreOptions = {}): EventStore & {
  /** Every event in global order (for tests and tools). */
  readonly all: () => readonly RecordedEvent[];
} => {
  const now = options.now ?? (() => Date.now());
  const log: RecordedEvent[] = [];
  const streams = new Map<string, RecordedEvent[]>();
  const ids = new Set<string>();
  const listeners = new Set<() => void>();
  let closed = false;

  const checkOpen = () => {
    if (closed) throw new StoreError('closed', 'the event store is closed');
  };

  const sameEvents = (stored: readonly RecordedEvent[], events: readonly NewEvent[]) =>
    stored.length === events.length && stored.every((e, i) => e.eventId === events[i]!.eventId);

  const appendToStream = async (
    streamName: string,
    events: readonly NewEvent[],
    expectedVersion: number,
  ): Promise<AppendResult> => {
    checkOpen();
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0)
      throw new StoreError('invalid', `expected version must be a whole number ≥ 0, got ${expectedVersion}`);
    const stream = streams.get(streamName) ?? [];
    const actual = stream.length;
    if (actual !== expectedVersion) {
      // An idempotent retry: the very same events already sit right after expectedVersion.
      const retried = stream.slice(expectedVersion, expectedVersion + events.length);
      if (actual > expectedVersion && events.length > 0 && sameEvents(retried, events)) {
        const lastOne = retried[retried.length - 1]!;
        return appended(lastOne.version, lastOne.position, false);
      }
      return actual > expectedVersion
        ? { ok: false, expectedVersion, actualVersion: actual, tail: stream.slice(expectedVersion) }
        : { ok: false, expectedVersion, actualVersion: actual };
    }
    if (events.length === 0) return appended(actual, formatPosition(log.length), false);
    // The same checks as the SQL stores (JSON objects, no repeated ids), and the same round
    // trip through JSON, so that what a test stores here is what a real store would give back.
    const encoded = encodeEvents(events);
    for (const e of events) {
      if (ids.has(e.eventId)) throw new StoreError('invalid', `event id ${e.eventId} is already stored`);
    }
    const at = now();
    const recorded = encoded.map(
      (e, i): RecordedEvent => ({
        streamName,
        version: actual + i + 1,
        position: formatPosition(log.length + i + 1),
        recordedAt: at,
        eventId: e.eventId,
        type: e.type,
        data: JSON.parse(e.data) as unknown,
        metadata: JSON.parse(e.metadata) as unknown,
      }),
    );
    // Pushed in place (readers get copies): appending stays O(events appended) however long
    // the stream is.
    for (const r of recorded) {
      log.push(r);
      ids.add(r.eventId);
      stream.push(r);
    }
    if (!streams.has(streamName)) streams.set(streamName, stream);
    for (const l of listeners) l();
    const lastOne = recorded[recorded.length - 1]!;
    return appended(lastOne.version, lastOne.position, true);
  };

  const readStream = async (streamName: string): Promise<StreamRead> => {
    checkOpen();
    const stream = streams.get(streamName) ?? [];
    return { version: stream.length, events: stream.slice() };
  };

  const readStreamFrom = async (streamName: string, afterVersion: number): Promise<StreamRead> => {
    checkOpen();
    if (!Number.isSafeInteger(afterVersion) || afterVersion < 0)
      throw new StoreError('invalid', `afterVersion must be a whole number ≥ 0, got ${afterVersion}`);
    const stream = streams.get(streamName) ?? [];
    return { version: stream.length, events: stream.slice(afterVersion) };
  };

  const readAll = async (o: ReadAllOptions = {}): Promise<ReadAllResult> => {
    checkOpen();
    const from = parsePosition(o.after);
    const limit = o.limit ?? Number.MAX_SAFE_INTEGER;
    const events = log.slice(from, from + limit);
    return { events, last: events.length ? events[events.length - 1]!.position : (o.after ?? null) };
  };

  const subscribe = (o: SubscribeOptions): Subscription => {
    let position = o.after ?? null;
    let stopped = false;
    let running: Promise<void> = Promise.resolve();
    let caughtUpSent = false;
    let wake: (() => void) | null = null;
    const notify = () => wake?.();
    listeners.add(notify);
    const loop = async () => {
      try {
        while (!stopped) {
          const { events, last } = await readAll({ after: position, limit: 500 });
          if (events.length > 0) {
            await o.onEvents(events);
            position = last;
            continue;
          }
          if (!caughtUpSent) {
            caughtUpSent = true;
            o.onCaughtUp?.(position);
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            if (stopped || parsePosition(position) < log.length) resolve();
          });
          wake = null;
        }
      } catch (error) {
        if (!stopped) o.onError?.(error);
      } finally {
        listeners.delete(notify);
      }
    };
    running = loop();
    return {
      close: async () => {
        stopped = true;
        wake?.();
        await running;
      },
    };
  };

  return {
    appendToStream,
    tailOnConflict: true,
    readStream,
    readStreamFrom,
    readAll,
    subscribe,
    all: () => log.slice(),
    close: async () => {
      closed = true;
      for (const l of listeners) l();
    },
  };
};
