/**
 * Global positions are opaque strings that sort correctly within one store; `null` is
 * "before the first event".
 */
import type { GlobalPosition } from '../domain/ports.ts';

export const comparePositions = (a: GlobalPosition | null, b: GlobalPosition | null): number => {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
};

/** True when `current` is at or past `target`. */
export const reached = (current: GlobalPosition | null, target: GlobalPosition | null): boolean =>
  comparePositions(current, target) >= 0;
