/**
 * Catch-up subscriptions for stores that can only be polled (SQLite, PostgreSQL).
 *
 * Each subscription reads the global log in batches from its position, hands every batch to
 * the handler (the next read waits for the handler), reports `onCaughtUp` once the first
 * empty read shows it has delivered everything, then polls at a fixed interval. A local
 * append wakes every subscription at once, so in-process readers see new events without
 * waiting for the next tick; other processes' appends are seen at the next tick.
 */
import {
  StoreError,
  type GlobalPosition,
  type ReadAllOptions,
  type ReadAllResult,
  type SubscribeOptions,
  type Subscription,
} from '../../domain/ports.ts';

export interface PollingOptions {
  /** Time between two reads once caught up. */
  readonly intervalMs: number;
  /** Events per read. */
  readonly batchSize: number;
}

export interface SubscriptionHub {
  subscribe(options: SubscribeOptions): Subscription;
  /** Wakes every subscription (call it after a local append). */
  notify(): void;
  /** Stops every subscription, reporting `error` to their onError, and waits until they have stopped. */
  closeAll(error: StoreError): Promise<void>;
}

export const createSubscriptionHub = (
  readAll: (options: ReadAllOptions) => Promise<ReadAllResult>,
  polling: PollingOptions,
): SubscriptionHub => {
  const active = new Set<{ wake: () => void; stop: (error: StoreError) => Promise<void> }>();

  const subscribe = (o: SubscribeOptions): Subscription => {
    let position: GlobalPosition | null = o.after ?? null;
    let stopped = false;
    let stopError: StoreError | null = null;
    let caughtUpSent = false;
    // Set when an append happened while a read or a handler was running, so the loop reads
    // again at once instead of sleeping through it.
    let woken = false;
    let wakeSleeper: (() => void) | null = null;
    const wake = () => {
      woken = true;
      wakeSleeper?.();
    };

    const sleep = () =>
      new Promise<void>((resolve) => {
        if (woken || stopped) return resolve();
        const timer = setTimeout(done, polling.intervalMs);
        function done() {
          clearTimeout(timer);
          wakeSleeper = null;
          resolve();
        }
        wakeSleeper = done;
      });

    const loop = async () => {
      try {
        while (!stopped) {
          woken = false;
          const { events, last } = await readAll({ after: position, limit: polling.batchSize });
          if (stopped) break;
          if (events.length > 0) {
            await o.onEvents(events);
            position = last;
            continue;
          }
          if (!caughtUpSent) {
            caughtUpSent = true;
            o.onCaughtUp?.(position);
          }
          await sleep();
        }
        if (stopError) o.onError?.(stopError);
      } catch (error) {
        // A handler's or the store's error ends the subscription; a close that raced it wins.
        if (!stopped || stopError) o.onError?.(stopError ?? error);
      } finally {
        active.delete(entry);
      }
    };

    const stop = async (error: StoreError | null) => {
      if (!stopped) {
        stopped = true;
        stopError = error;
      }
      wakeSleeper?.();
      await running;
    };
    const entry = { wake, stop: (error: StoreError) => stop(error) };
    active.add(entry);
    const running = loop();
    return { close: () => stop(null) };
  };

  return {
    subscribe,
    notify: () => {
      for (const s of active) s.wake();
    },
    closeAll: async (error) => {
      await Promise.all([...active].map((s) => s.stop(error)));
    },
  };
};
