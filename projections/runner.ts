/**
 * The projection runner: reads the global log from the projection's checkpoint (readAll in
 * batches, then a subscription), decodes every event through the catalog, applies each
 * batch and moves the checkpoint in one read-store transaction.
 *
 * - At least once: a batch that did not commit is read again, and the projection skips what
 *   it has already applied (read-model.ts keeps the last version per stream).
 * - A stored event that does not decode is set aside (`undecodable: 'quarantine'`, the
 *   default): the projection gets a QuarantinedEvent naming its stream, version, position and
 *   what failed, in the same transaction as the rest of its batch (the standard read model
 *   records it as an `event-quarantined` audit entry: the operator's list), `onQuarantine` is
 *   called, and the log goes on, so one bad event does not stop every user's read model.
 *   With `undecodable: 'stop'` it stops the runner with a ProjectionError instead; the events
 *   before it in its batch are applied, so a new runner stops at the very same event until it
 *   is repaired. A handler that throws stops it too (its whole batch is rolled back). Nothing
 *   is skipped silently.
 * - A failure that may pass by itself (a database restarting, a connection cut: errors.ts,
 *   isTransient) does not stop the runner: it waits (backing off) and goes on from its
 *   checkpoint, in state `retrying` meanwhile.
 * - Several instances may run one projection against one read store: the read store's Claim
 *   lets one apply at a time; the others poll every `standbyPollMs` and take over when it
 *   closes, dies, or (lease stores) lets its lease expire.
 * - Tests wait with whenCaughtUp() / waitForPosition(), never with sleeps.
 */
import { randomUUID } from 'node:crypto';
import type { EventStore, GlobalPosition, RecordedEvent, Subscription } from '../domain/ports.ts';
import { ProjectionError, describeCause, describeLocation, isTransient } from './errors.ts';
import { reached } from './positions.ts';
import { decodeRecorded, quarantined, type ProjectedEvent, type QuarantinedEvent } from './projected-event.ts';
import { readModelProjection } from './read-model.ts';
import type { CommitResult, Projection, ReadStore, ReadTx } from './read-store.ts';

export interface RunnerOptions {
  readonly store: EventStore;
  readonly readStore: ReadStore;
  /** Default: the standard read model (devices, audit log, statistics). */
  readonly projection?: Projection;
  /** Events per readAll batch (and so per transaction while catching up). Default 500. */
  readonly batchSize?: number;
  /**
   * Events per batch while rebuilding (no reader waits on a rebuild's next commit, and every
   * batch pays for loading and writing the rows it touches once). Default 10 000, or batchSize
   * when that is larger.
   */
  readonly rebuildBatchSize?: number;
  /** Lease length for lease stores (SQLite, memory); renewed every third of it. Default 30 s. */
  readonly leaseMs?: number;
  /** How often a waiting instance tries to take over. Default 1 s. */
  readonly standbyPollMs?: number;
  /** Names this instance in leases. Default: a random UUID. */
  readonly instanceId?: string;
  /** Clock for leases and lag. Default Date.now. */
  readonly now?: () => number;
  /**
   * What a stored event that does not decode does: set aside and reported ('quarantine',
   * default), or stop the runner ('stop').
   */
  readonly undecodable?: 'quarantine' | 'stop';
  /** Called for each event set aside, once its batch has committed. */
  readonly onQuarantine?: (event: QuarantinedEvent) => void;
  /** Called once when the runner stops on an error. */
  readonly onError?: (error: ProjectionError) => void;
  /**
   * After a failure that may pass by itself (errors.ts, isTransient: a database restarting, a
   * connection cut), the runner gives up its claim, waits, and starts again from its
   * checkpoint: first after `initialMs` (default 500), doubling up to `maxMs` (default 30 000),
   * from the start again once it has applied something. Any other failure stops it.
   */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Called before each such wait, with the failure and the wait in ms. */
  readonly onRetry?: (error: ProjectionError, delayMs: number) => void;
}

/** `retrying`: waiting after a failure that may pass by itself (see RunnerOptions.retry). */
export type RunnerState = 'new' | 'standby' | 'catching-up' | 'live' | 'retrying' | 'rebuilding' | 'failed' | 'closed';

export interface Lag {
  /** Events in the log after the checkpoint this instance knows (at most `maxScan`). */
  readonly events: number;
  /** False when there were more than `maxScan`. */
  readonly exact: boolean;
  /** How long the oldest event not applied yet has been in the log (0 when caught up). */
  readonly seconds: number;
  readonly checkpoint: GlobalPosition | null;
  readonly state: RunnerState;
}

export interface WaitOptions {
  /** Default 30 s; the promise rejects with a ProjectionError('timeout') after it. */
  readonly timeoutMs?: number;
}

export interface RebuildOptions {
  /** Called after every batch (and once at the start). */
  readonly onProgress?: (done: number, total: number, ratePerSecond: number) => void;
  /** Events to expect; default: counted by reading the log once. */
  readonly total?: number;
  /** How long to wait for another instance to give the projection up. Default 60 s. */
  readonly timeoutMs?: number;
}

export interface RebuildResult {
  readonly events: number;
  readonly position: GlobalPosition | null;
  readonly seconds: number;
}

export interface ProjectionRunner {
  readonly projection: string;
  readonly instanceId: string;
  /** Starts following the log in the background (once). */
  start(): ProjectionRunner;
  /** Stops after the batch in flight and gives the projection up. */
  close(): Promise<void>;
  state(): RunnerState;
  /** The checkpoint this instance knows (its own, or the active instance's while on standby). */
  checkpoint(): GlobalPosition | null;
  error(): ProjectionError | null;
  /** Resolves when the runner has stopped: with its error, or null when closed. */
  stopped(): Promise<ProjectionError | null>;
  /** Resolves once everything in the log when called is applied; returns that position. */
  whenCaughtUp(options?: WaitOptions): Promise<GlobalPosition | null>;
  waitForPosition(position: GlobalPosition | null, options?: WaitOptions): Promise<void>;
  lag(options?: { readonly maxScan?: number }): Promise<Lag>;
  /** Empties the read model and replays the whole log (on a runner not started). */
  rebuild(options?: RebuildOptions): Promise<RebuildResult>;
}

/** Internal signal: this instance is no longer the active one (or the checkpoint moved). */
class LostClaim extends Error {
  constructor(readonly result: Exclude<CommitResult, 'committed'>) {
    super(`lost the projection claim (${result})`);
  }
}

const asProjectionError = (e: unknown, code: 'read-store-failed' | 'event-store-failed', what: string): ProjectionError =>
  e instanceof ProjectionError ? e : new ProjectionError(code, `${what}: ${describeCause(e)}`, null, { cause: e });

interface Waiter {
  readonly target: GlobalPosition | null;
  readonly resolve: () => void;
  readonly reject: (e: ProjectionError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** The last position in the log, reading on from `from`. */
export const headPosition = async (store: EventStore, from: GlobalPosition | null = null): Promise<GlobalPosition | null> => {
  let p = from;
  for (;;) {
    const r = await store.readAll({ after: p, limit: 5000 });
    if (r.events.length === 0) return p;
    p = r.last;
  }
};

/** The number of events in the log (reads it once). */
export const countEvents = async (store: EventStore): Promise<number> => {
  let p: GlobalPosition | null = null;
  let n = 0;
  for (;;) {
    const r = await store.readAll({ after: p, limit: 5000 });
    if (r.events.length === 0) return n;
    n += r.events.length;
    p = r.last;
  }
};

export const createProjectionRunner = (o: RunnerOptions): ProjectionRunner => {
  const projection = o.projection ?? readModelProjection;
  const name = projection.name;
  const batchSize = o.batchSize ?? 500;
  const undecodable = o.undecodable ?? 'quarantine';
  if (undecodable !== 'quarantine' && undecodable !== 'stop') throw new ProjectionError('invalid', `undecodable must be "quarantine" or "stop" (got ${String(undecodable).slice(0, 20)})`);
  const rebuildBatchSize = o.rebuildBatchSize ?? Math.max(batchSize, 10_000);
  let readSize = batchSize;
  const leaseMs = o.leaseMs ?? 30_000;
  const standbyPollMs = o.standbyPollMs ?? 1_000;
  const retryInitialMs = o.retry?.initialMs ?? 500;
  const retryMaxMs = Math.max(retryInitialMs, o.retry?.maxMs ?? 30_000);
  const now = o.now ?? (() => Date.now());
  const instanceId = o.instanceId ?? randomUUID();
  const claim = o.readStore.claim(name, { owner: instanceId, leaseMs, now });

  let state: RunnerState = 'new';
  let position: GlobalPosition | null = null;
  let failure: ProjectionError | null = null;
  let closing = false;
  let loop: Promise<void> | null = null;
  let stopLive: (() => void) | null = null;
  let wake: (() => void) | null = null;
  let onApplied: ((n: number) => void) | null = null;
  const waiters = new Set<Waiter>();
  let settle: (e: ProjectionError | null) => void = () => undefined;
  const stopped = new Promise<ProjectionError | null>((resolve) => (settle = resolve));

  // ---- waiting ---------------------------------------------------------------------------------

  const finishWaiter = (w: Waiter, error: ProjectionError | null) => {
    clearTimeout(w.timer);
    waiters.delete(w);
    if (error) w.reject(error);
    else w.resolve();
  };
  const setPosition = (p: GlobalPosition | null) => {
    position = p;
    for (const w of waiters) if (reached(position, w.target)) finishWaiter(w, null);
  };
  const closedError = () => new ProjectionError('closed', `projection "${name}" runner ${instanceId} is closed`);
  const endWaiters = () => {
    for (const w of waiters) finishWaiter(w, failure ?? closedError());
  };

  const waitForPosition = (target: GlobalPosition | null, options: WaitOptions = {}): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (reached(position, target)) return resolve();
      if (failure) return reject(failure);
      if (state === 'closed') return reject(closedError());
      const timeoutMs = options.timeoutMs ?? 30_000;
      const w: Waiter = {
        target,
        resolve,
        reject,
        timer: setTimeout(() => {
          finishWaiter(
            w,
            new ProjectionError(
              'timeout',
              `projection "${name}" did not reach position ${target} within ${timeoutMs} ms (instance ${instanceId} is ${state} at ${position})`,
            ),
          );
        }, timeoutMs),
      };
      waiters.add(w);
    });

  // ---- applying --------------------------------------------------------------------------------

  const handlerFailed = (e: ProjectedEvent, cause: unknown) => {
    const at = { streamName: e.streamName, version: e.version, position: e.position };
    return new ProjectionError('handler-failed', `projection "${name}" failed on ${describeLocation(at)}: ${describeCause(cause)}`, at, { cause });
  };

  const applyAll = (tx: ReadTx, events: readonly ProjectedEvent[]) => {
    for (const e of events) {
      try {
        projection.apply(tx, e);
      } catch (cause) {
        throw handlerFailed(e, cause);
      }
    }
  };

  const commit = async (events: readonly ProjectedEvent[]) => {
    const next = events[events.length - 1]!.position;
    let result: CommitResult;
    try {
      result = await claim.commit({ expected: position, next, events, work: (tx) => applyAll(tx, events), rebuild: state === 'rebuilding' });
    } catch (e) {
      throw asProjectionError(e, 'read-store-failed', `projection "${name}" could not commit a batch`);
    }
    if (result !== 'committed') throw new LostClaim(result);
    setPosition(next);
    onApplied?.(events.length);
  };

  /**
   * Decodes a batch and applies it. An event that does not decode is set aside in place
   * (quarantine), or (stop) the events before it are applied and the runner stops on it.
   */
  const applyBatch = async (raw: readonly RecordedEvent[]): Promise<void> => {
    const events: ProjectedEvent[] = [];
    const setAside: QuarantinedEvent[] = [];
    let bad: ProjectionError | null = null;
    for (const r of raw) {
      const d = decodeRecorded(r);
      if (d._tag === 'Right') events.push(d.right);
      else if (undecodable === 'quarantine') {
        const q = quarantined(r, d.left);
        events.push(q);
        setAside.push(q);
      } else {
        bad = d.left;
        break;
      }
    }
    if (events.length > 0) await commit(events);
    for (const q of setAside) o.onQuarantine?.(q);
    if (bad) throw bad;
  };

  const readBatch = async (after: GlobalPosition | null) => {
    try {
      return (await o.store.readAll({ after, limit: readSize })).events;
    } catch (e) {
      throw asProjectionError(e, 'event-store-failed', `projection "${name}" could not read the log after ${after}`);
    }
  };

  const catchUp = async (): Promise<void> => {
    while (!closing) {
      const events = await readBatch(position);
      if (events.length === 0) return;
      await applyBatch(events);
    }
  };

  // ---- following the log -----------------------------------------------------------------------

  const live = () =>
    new Promise<void>((resolve, reject) => {
      let sub: Subscription | null = null;
      let finish: (() => void) | null = null;
      const end = (error: unknown) => {
        if (finish) return;
        clearInterval(heartbeat);
        stopLive = null;
        finish = () => void sub!.close().then(() => (error === null ? resolve() : reject(error)), reject);
        if (sub) finish();
      };
      const renew = async () => {
        try {
          if (!(await claim.acquire())) end(new LostClaim('not-active'));
        } catch (e) {
          end(asProjectionError(e, 'read-store-failed', `projection "${name}" could not renew its claim`));
        }
      };
      const heartbeat = setInterval(() => void renew(), Math.max(10, Math.floor(leaseMs / 3)));
      stopLive = () => end(null);
      sub = o.store.subscribe({
        after: position,
        onEvents: applyBatch,
        onError: (e) =>
          end(
            e instanceof LostClaim || e instanceof ProjectionError
              ? e
              : asProjectionError(e, 'event-store-failed', `projection "${name}" lost its subscription`),
          ),
      });
      const ended = finish as (() => void) | null; // set if end() ran during subscribe()
      if (ended) ended();
      else if (closing) end(null);
    });

  const follow = async () => {
    state = 'catching-up';
    setPosition(await o.readStore.checkpoint(name));
    await catchUp();
    if (closing) return;
    state = 'live';
    await live();
  };

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
      if (closing) done();
    });

  const acquire = async (): Promise<boolean> => {
    try {
      return await claim.acquire();
    } catch (e) {
      throw asProjectionError(e, 'read-store-failed', `projection "${name}" could not claim the read store`);
    }
  };

  const standby = async () => {
    state = 'standby';
    // Follow the active instance's progress, so that waits resolve here too.
    setPosition(await o.readStore.checkpoint(name));
    await pause(standbyPollMs);
  };

  const fail = (e: ProjectionError) => {
    if (failure) return;
    failure = e;
    state = 'failed';
    endWaiters();
    o.onError?.(e);
  };

  const run = async () => {
    let delay = retryInitialMs;
    let failedAt: GlobalPosition | null | undefined; // where the last transient failure left it
    try {
      while (!closing) {
        try {
          if (!(await acquire())) {
            await standby();
            continue;
          }
          try {
            await follow();
          } catch (e) {
            if (!(e instanceof LostClaim)) throw e;
          }
        } catch (e) {
          if (!(e instanceof ProjectionError) || !isTransient(e) || closing) throw e;
          if (failedAt !== undefined && position !== failedAt) delay = retryInitialMs; // it got further since
          failedAt = position;
          state = 'retrying';
          o.onRetry?.(e, delay);
          // Another instance may be able to go on meanwhile.
          await claim.release().catch(() => undefined);
          await pause(delay);
          delay = Math.min(delay * 2, retryMaxMs);
        }
      }
    } catch (e) {
      fail(asProjectionError(e, 'read-store-failed', `projection "${name}" stopped`));
    } finally {
      await claim.release().catch(() => undefined);
      if (!failure) state = 'closed';
      endWaiters();
      settle(failure);
    }
  };

  // ---- rebuilding ------------------------------------------------------------------------------

  const acquireWithin = async (timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await acquire())) {
      if (Date.now() >= deadline)
        throw new ProjectionError('timeout', `another instance kept projection "${name}" for ${timeoutMs} ms; stop it, then rebuild`);
      await pause(standbyPollMs);
    }
  };

  const reset = async () => {
    const current = await o.readStore.checkpoint(name);
    const r = await claim.commit({
      expected: current,
      next: null,
      events: [],
      work: (tx) => {
        projection.reset(tx);
        tx.clearStreamVersions();
      },
      rebuild: true,
    });
    if (r !== 'committed') throw new LostClaim(r);
    setPosition(null);
  };

  const rebuild = async (options: RebuildOptions = {}): Promise<RebuildResult> => {
    if (state !== 'new') throw new ProjectionError('invalid', `rebuild needs a runner that was never started (this one is ${state})`);
    state = 'rebuilding';
    const started = performance.now();
    let done = 0;
    let finished = false;
    const finish = async () => {
      finished = true;
      await claim.finishRebuild?.();
    };
    try {
      await acquireWithin(options.timeoutMs ?? 60_000);
      await reset();
      const total = options.total ?? (await countEvents(o.store));
      const report = () => {
        const seconds = (performance.now() - started) / 1000;
        options.onProgress?.(done, Math.max(total, done), seconds > 0 ? done / seconds : 0);
      };
      onApplied = (n) => {
        done += n;
        report();
      };
      report();
      readSize = rebuildBatchSize;
      await catchUp();
      // Part of the rebuild, its time and its errors: until then the read model may be slow to
      // query (the SQLite store builds its indexes here).
      await finish();
      return { events: done, position, seconds: (performance.now() - started) / 1000 };
    } catch (e) {
      const error =
        e instanceof LostClaim
          ? new ProjectionError('read-store-failed', `projection "${name}" was taken over by another instance during the rebuild`)
          : asProjectionError(e, 'read-store-failed', `rebuilding projection "${name}" failed`);
      fail(error);
      throw error;
    } finally {
      readSize = batchSize;
      onApplied = null;
      // A failed rebuild still leaves a read store that answers at full speed.
      if (!finished) await claim.finishRebuild?.().catch(() => undefined);
      await claim.release().catch(() => undefined);
      if (!failure) state = 'new';
    }
  };

  // ---- the runner ------------------------------------------------------------------------------

  const runner: ProjectionRunner = {
    projection: name,
    instanceId,
    start: () => {
      if (state !== 'new') throw new ProjectionError('invalid', `projection "${name}" runner ${instanceId} cannot start: it is ${state}`);
      state = 'standby';
      loop = run();
      return runner;
    },
    close: async () => {
      closing = true;
      stopLive?.();
      wake?.();
      if (loop) await loop;
      else {
        if (!failure) state = 'closed';
        endWaiters();
        settle(failure);
      }
    },
    state: () => state,
    checkpoint: () => position,
    error: () => failure,
    stopped: () => stopped,
    whenCaughtUp: async (options) => {
      if (failure) throw failure;
      const target = await headPosition(o.store, position);
      await waitForPosition(target, options);
      return target;
    },
    waitForPosition,
    lag: async (options = {}) => {
      const maxScan = options.maxScan ?? 10_000;
      const { events } = await o.store.readAll({ after: position, limit: maxScan + 1 });
      const oldest = events[0];
      return {
        events: Math.min(events.length, maxScan),
        exact: events.length <= maxScan,
        seconds: oldest ? Math.max(0, (now() - oldest.recordedAt) / 1000) : 0,
        checkpoint: position,
        state,
      };
    },
    rebuild,
  };
  return runner;
};

/** Empties the runner's read model and replays the log from position 0, reporting progress. */
export const rebuild = (runner: ProjectionRunner, options?: RebuildOptions): Promise<RebuildResult> => runner.rebuild(options);
