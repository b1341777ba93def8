/**
 * Loading a stream's folded state, through a cache of stream heads (domain/stream-cache.ts):
 * a command on a cached stream reads and decodes only the events appended since, whoever
 * appended them; an uncached stream is read in full. Generic over the stream's type (its
 * event types, initial state, evolve and codec): it knows nothing of OTP.
 *
 * The cache is only ever a shortcut: every append still carries the head's version as its
 * expected version (app/command-handler.ts).
 */
import { isLeft, left, type Either } from 'fp-ts/lib/Either.js';
import { eventHash, genesisHash } from '../domain/chain.ts';
import { decodeWith } from '../domain/codecs.ts';
import { EventMetadata } from '../domain/events.ts';
import type { EventStore, RecordedEvent, StreamRead } from '../domain/ports.ts';
import { ClockCache, CommandIndex, type StreamHead } from '../domain/stream-cache.ts';
import { err, Failure } from './errors.ts';

/** What the command handler needs to know of a kind of stream. */
export interface StreamType<S, E> {
  /** The event types that belong in the stream; any other is a corrupt event. */
  readonly types: ReadonlySet<string>;
  readonly initial: () => S;
  readonly evolve: (s: S, e: E) => S;
  readonly decode: (type: string, data: unknown) => Either<string, E>;
  /** Encodes an event for the store and checks that it decodes again (Left: why not). */
  readonly encode: (e: E) => Either<string, { readonly type: string; readonly data: unknown }>;
}

/** A stream as a command sees it: its folded state at a version. */
export interface Loaded<S, E> extends StreamHead<S, E> {
  /** Set when the state is hidden (a device looked up under another kind): never cached. */
  readonly hidden?: true;
}

export interface Entry<E> {
  readonly event: E;
  readonly metadata: EventMetadata;
  readonly raw: RecordedEvent;
}

/** A stream read in full, every event decoded (history, deviceAt, confirmWritten). */
export interface LoadedEntries<S, E> {
  readonly head: Loaded<S, E>;
  readonly entries: readonly Entry<E>[];
}

export type StateCache = ReturnType<typeof createStateCache>;

export const createStateCache = (store: EventStore, cacheSize: number) => {
  const heads = new ClockCache<StreamHead<unknown, unknown>>(cacheSize);

  /** Decodes one stored event of `stream`; a stored event that does not decode is an error naming it. */
  const decodeStored = <S, E>(stream: string, type: StreamType<S, E>, raw: RecordedEvent): Entry<E> => {
    const decoded = type.types.has(raw.type) ? type.decode(raw.type, raw.data) : left(`event type "${raw.type.slice(0, 64)}" does not belong in this stream`);
    if (isLeft(decoded))
      throw new Failure(err('corrupt-event', `stream ${stream} version ${raw.version} holds an event that does not decode: ${decoded.left}`));
    const m = decodeWith(EventMetadata, raw.metadata);
    if (isLeft(m))
      throw new Failure(err('corrupt-event', `stream ${stream} version ${raw.version} has metadata that does not decode: ${m.left}`));
    return { event: decoded.right, metadata: m.right, raw };
  };

  /** The head after folding `events` (the stream's events right after `base`) onto `base`. */
  const advance = <S, E>(
    stream: string,
    type: StreamType<S, E>,
    base: StreamHead<S, E>,
    events: readonly RecordedEvent[],
    entries?: Entry<E>[],
  ): StreamHead<S, E> => {
    let { state, version } = base;
    for (const raw of events) {
      if (raw.version !== version + 1)
        throw new Failure(err('corrupt-event', `stream ${stream} has version ${raw.version} after version ${version}: an event is missing`));
      const entry = decodeStored(stream, type, raw);
      state = type.evolve(state, entry.event);
      version = raw.version;
      base.commands.add(entry.metadata.commandId, version, entry.event);
      entries?.push(entry);
    }
    const last = events[events.length - 1];
    return last ? { version, state, prevHash: eventHash(last), lastEventId: last.eventId, commands: base.commands } : base;
  };

  const emptyHead = <S, E>(stream: string, type: StreamType<S, E>): StreamHead<S, E> => ({
    version: 0,
    state: type.initial(),
    prevHash: genesisHash(stream),
    lastEventId: null,
    commands: new CommandIndex<E>(),
  });

  /** Keeps `head` unless the cache already holds a later one of the stream (or `replace`). */
  const remember = <S, E>(stream: string, head: StreamHead<S, E>, replace = false) => {
    if (head.version === 0) return; // no stream (yet): nothing worth keeping
    const current = heads.peek(stream);
    if (replace || current === undefined || current.version <= head.version) heads.set(stream, head as StreamHead<unknown, unknown>);
  };

  /** Reads the whole stream, decoding every event; refreshes the cache with what it read. */
  const loadEntries = async <S, E>(stream: string, type: StreamType<S, E>, read?: StreamRead): Promise<LoadedEntries<S, E>> => {
    const { events } = read ?? (await store.readStream(stream));
    const entries: Entry<E>[] = [];
    const head = advance(stream, type, emptyHead(stream, type), events, entries);
    remember(stream, head, true);
    return { head, entries };
  };

  /**
   * The stream's current head: the cached one brought up to date with the events appended
   * since (by this engine or any other writer), or the whole stream read when it is not cached.
   */
  const load = async <S, E>(
    stream: string,
    type: StreamType<S, E>,
    /** False: the cached head as it is, unchecked (optimisticCache, first attempt of a command). */
    check = true,
  ): Promise<Loaded<S, E>> => {
    const cached = heads.get(stream) as StreamHead<S, E> | undefined;
    if (cached === undefined) return (await loadEntries(stream, type)).head;
    if (!check) return cached;
    if (store.readStreamFrom) {
      const tail = await store.readStreamFrom(stream, cached.version);
      if (tail.version === cached.version + tail.events.length) {
        if (tail.events.length === 0) return cached;
        const head = advance(stream, type, cached, tail.events);
        remember(stream, head);
        return head;
      }
      // The stream is not what the cache knew (shorter, or a gap): start again from the store.
      return (await loadEntries(stream, type)).head;
    }
    const read = await store.readStream(stream);
    const sameStart = read.version >= cached.version && (cached.version === 0 || read.events[cached.version - 1]?.eventId === cached.lastEventId);
    if (!sameStart) return (await loadEntries(stream, type, read)).head;
    const head = advance(stream, type, cached, read.events.slice(cached.version));
    remember(stream, head);
    return head;
  };

  return {
    /** Whether heads are kept at all (cacheSize > 0). */
    enabled: cacheSize > 0,
    isCached: (stream: string) => heads.peek(stream) !== undefined,
    forget: (stream: string) => heads.delete(stream),
    advance,
    remember,
    load,
    loadEntries,
  };
};
