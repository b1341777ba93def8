/**
 * The generic command handler: read the stream (app/state-cache.ts), fold it with evolve,
 * decide, append the decided events at the expected version, and on a conflict decide again on
 * what was appended since, a bounded number of times. Idempotent by command id: a command id
 * the stream has already seen answers with the events it wrote then (`replayed`), nothing new
 * is written. It knows nothing of OTP: the stream's type and the decision are given.
 */
import { isLeft, type Either } from 'fp-ts/lib/Either.js';
import type { AppendResult, EventStore } from '../domain/ports.ts';
import type { StreamHead } from '../domain/stream-cache.ts';
import { chained } from './chained-events.ts';
import type { Meta } from './command-metadata.ts';
import { conflictExhausted, Failure, type EngineError } from './errors.ts';
import type { Loaded, LoadedEntries, StateCache, StreamType } from './state-cache.ts';

export interface Handled<S, E> {
  readonly state: S;
  readonly version: number;
  /** The events this command wrote, or had written before when it is replayed. */
  readonly events: readonly E[];
  readonly replayed: boolean;
}

export interface CommandHandlerOptions {
  readonly store: EventStore;
  readonly cache: StateCache;
  /** How many times a command is decided again after losing a race. */
  readonly maxRetries: number;
  /** Decide the first attempt on the cached head unchecked (EngineOptions.optimisticCache). */
  readonly optimistic: boolean;
}

/** A command on one stream, as the handler runs it. */
export interface StreamCommand<S, E> {
  readonly stream: string;
  readonly type: StreamType<S, E>;
  /** The stream's head; `check` false: the cached one unchecked (see optimisticCache). */
  readonly load: (check: boolean) => Promise<Loaded<S, E>>;
  /** The whole stream, decoded (only for confirmWritten). */
  readonly loadAll: () => Promise<LoadedEntries<S, E>>;
  readonly meta: Meta;
  readonly decide: (state: S) => Promise<Either<{ readonly code: string; readonly message: string }, E[]>>;
  /**
   * For commands whose events hold freshly drawn values (a sealed key, code digests): read
   * the events back after the append. A concurrent attempt of the same command id writes
   * the same event ids, and the store then reports the loser's append as an idempotent
   * success although the stored events are the winner's; the loser must act on those.
   */
  readonly confirmWritten?: boolean;
}

export type CommandHandler = ReturnType<typeof createCommandHandler>;

export const createCommandHandler = ({ store, cache, maxRetries, optimistic }: CommandHandlerOptions) => {
  /**
   * Appends `events` at the loaded version. When the store says it wrote exactly these events,
   * the cache moves on to the head they make (the state folded here, the hash computed for the
   * chain); otherwise (an idempotent retry, or a store that cannot tell) the next load reads
   * them back from the store.
   */
  const append = async <S, E>(
    stream: string,
    type: StreamType<S, E>,
    loaded: Loaded<S, E>,
    events: readonly E[],
    m: Meta,
  ): Promise<{ readonly result: AppendResult; readonly state: S }> => {
    const { toStore, lastHash } = chained(stream, loaded, events, type.encode, m);
    const result = await store.appendToStream(stream, toStore, loaded.version);
    let state = loaded.state;
    if (!result.ok) return { result, state };
    for (const e of events) state = type.evolve(state, e);
    if (result.written === true && result.version === loaded.version + toStore.length && !loaded.hidden) {
      events.forEach((e, i) => loaded.commands.add(m.commandId, loaded.version + i + 1, e));
      const head: StreamHead<S, E> = { version: result.version, state, prevHash: lastHash, lastEventId: toStore[toStore.length - 1]!.eventId, commands: loaded.commands };
      cache.remember(stream, head);
    }
    return { result, state };
  };

  const handle = async <S, E extends { readonly type: string }>(c: StreamCommand<S, E>): Promise<Handled<S, E>> => {
    const { stream, type, meta: m } = c;
    /** Read what was appended since the cached version before deciding. */
    let check = !optimistic;
    /** The state decided on is known to be current (read, or reported by a refused append). */
    let current = check;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (!current && !cache.isCached(stream)) current = true; // not cached: it is read
      const loaded = await c.load(check);
      const done = loaded.commands.eventsOf(m.commandId, loaded.version);
      if (done.length > 0) return { state: loaded.state, version: loaded.version, events: done, replayed: true };
      let decision: Either<{ readonly code: string; readonly message: string }, E[]>;
      try {
        decision = await c.decide(loaded.state);
      } catch (e) {
        if (current) throw e;
        check = current = true; // e.g. the key of a device removed since: say so from the checked state
        continue;
      }
      // A decision on a state not known to be current is only final once an append confirms
      // it: a refusal or a decision to write nothing is taken again on the checked state.
      if (!current && (isLeft(decision) || decision.right.length === 0)) {
        check = current = true;
        continue;
      }
      if (isLeft(decision)) throw new Failure(decision.left as EngineError);
      const events = decision.right;
      if (events.length === 0) return { state: loaded.state, version: loaded.version, events, replayed: false };
      check = current = true; // after a conflict, read what was appended since
      const { result, state } = await append(stream, type, loaded, events, m);
      if (!result.ok && result.tail !== undefined && !loaded.hidden && cache.enabled) {
        // The refusal brought back what this attempt missed, read with the version check:
        // the cached head moves on with it and the next attempt decides without a read.
        cache.remember(stream, cache.advance(stream, type, loaded, result.tail));
        check = false;
      }
      if (result.ok) {
        if (c.confirmWritten) {
          const after = await c.loadAll();
          const stored = after.entries.slice(loaded.version, loaded.version + events.length);
          const ours =
            stored.length === events.length &&
            stored.every((x, i) => x.event.type === events[i]!.type && sameData(x.raw.data, type.encode(events[i]!)));
          if (!ours) {
            const theirs = after.entries.filter((x) => x.metadata.commandId === m.commandId).map((x) => x.event);
            return { state: after.head.state, version: after.head.version, events: theirs, replayed: true };
          }
        }
        return { state, version: result.version, events, replayed: false };
      }
    }
    throw conflictExhausted(stream, maxRetries + 1);
  };

  return { handle, append, maxRetries };
};

const sameData = (stored: unknown, encoded: Either<string, { readonly data: unknown }>): boolean =>
  !isLeft(encoded) && canonicalJson(stored) === canonicalJson(encoded.right.data);

/** JSON with object keys sorted, so that stores that reorder keys (jsonb) compare equal. */
const canonicalJson = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
