/**
 * What the engine remembers of the streams it has loaded, so that a command on a stream it
 * has seen reads and decodes only the events appended since (usually none), instead of the
 * whole stream.
 *
 * A StreamHead is an immutable value: the folded state at a version, the hash the next event
 * links to (domain/chain.ts), and an index of the command ids in the stream (idempotency).
 * The cache is only ever a shortcut: every append still carries the head's version as its
 * expected version, so a head that another writer has overtaken costs a conflict and a reload,
 * never a wrong write. Pure: no I/O, no clock.
 */

/**
 * Which command wrote which events, for every event of a stream. Shared by the successive
 * heads of one stream and only ever extended at the end, so a head at version v asks for
 * what is at or below v and never sees events that came after it.
 */
export class CommandIndex<E> {
  private readonly byCommand = new Map<string, { readonly version: number; readonly event: E }[]>();
  private upTo = 0;

  /** The highest version indexed. */
  get version(): number {
    return this.upTo;
  }

  /** Indexes the event at `version`; ignored when that version is already indexed. */
  add(commandId: string, version: number, event: E): void {
    if (version <= this.upTo) return;
    this.upTo = version;
    const list = this.byCommand.get(commandId);
    if (list) list.push({ version, event });
    else this.byCommand.set(commandId, [{ version, event }]);
  }

  /** The events command `commandId` wrote at or below `version`, in stream order. */
  eventsOf(commandId: string, version: number): E[] {
    const list = this.byCommand.get(commandId);
    if (!list) return [];
    const out: E[] = [];
    for (const x of list) if (x.version <= version) out.push(x.event);
    return out;
  }
}

export interface StreamHead<S, E> {
  /** The number of events folded into `state`. */
  readonly version: number;
  readonly state: S;
  /** The hash the next event of the stream links to: the last event's, or the genesis hash. */
  readonly prevHash: string;
  /** The id of the event at `version` (null at 0). */
  readonly lastEventId: string | null;
  readonly commands: CommandIndex<E>;
}

/**
 * A map that forgets entries it has not been asked for lately once it holds more than
 * `capacity` (0: holds nothing). An approximation of least-recently-used (the CLOCK, or
 * second-chance, policy): a read only marks its entry, and eviction walks from the oldest
 * entry, sparing (and moving to the back) those marked since the walk last passed. Reads stay
 * a plain Map lookup, which matters on the engine's hot path.
 */
export class ClockCache<V> {
  private readonly entries = new Map<string, { value: V; used: boolean }>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    e.used = true;
    return e.value;
  }

  /** Without marking the entry as used. */
  peek(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  set(key: string, value: V): void {
    if (this.capacity <= 0) return;
    const e = this.entries.get(key);
    if (e !== undefined) {
      e.value = value;
      e.used = true;
      return;
    }
    this.entries.set(key, { value, used: true });
    while (this.entries.size > this.capacity) this.evictOne();
  }

  private evictOne(): void {
    for (const [k, e] of this.entries) {
      this.entries.delete(k);
      if (!e.used) return;
      e.used = false; // a second chance: to the back of the line
      this.entries.set(k, e);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
