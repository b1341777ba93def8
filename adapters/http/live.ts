/**
 * Tells the open pages when the read models changed: watches the projection runner's
 * checkpoint (an in-memory value, so watching it is cheap) and calls every listener with the
 * new position once per change. A runner that stops is reported once, with its state.
 */
import type { GlobalPosition } from '../../domain/ports.ts';
import type { ProjectionRunner, RunnerState } from '../../projections/runner.ts';

export type Change =
  | { readonly type: 'changed'; readonly position: GlobalPosition | null }
  | { readonly type: 'status'; readonly state: RunnerState };

export interface ChangeFeed {
  subscribe(listener: (c: Change) => void): () => void;
  close(): void;
}

export const createChangeFeed = (runner: ProjectionRunner, options: { readonly intervalMs?: number } = {}): ChangeFeed => {
  const listeners = new Set<(c: Change) => void>();
  let position = runner.checkpoint();
  let state = runner.state();
  const emit = (c: Change) => {
    for (const l of listeners) {
      try {
        l(c);
      } catch {
        // a listener (a closed stream) must not stop the others
      }
    }
  };
  const timer = setInterval(() => {
    const p = runner.checkpoint();
    if (p !== position) {
      position = p;
      emit({ type: 'changed', position: p });
    }
    const s = runner.state();
    if (s !== state) {
      state = s;
      emit({ type: 'status', state: s });
    }
  }, options.intervalMs ?? 100);
  timer.unref();
  return {
    subscribe: (listener) => {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    close: () => {
      clearInterval(timer);
      listeners.clear();
    },
  };
};
