/**
 * Shared set-up for the engine tests: the memory store, the memory vault, a clock moved by
 * hand, a Random, and a TokenSender that records what it delivers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isLeft, type Either } from 'fp-ts/lib/Either.js';
import type { TaskEither } from 'fp-ts/lib/TaskEither.js';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { fold, type DeviceState } from '../../domain/device.ts';
import { createEngine, type DeviceView, type Engine, type EngineError } from '../../app/engine.ts';
import { decodeEvent, type DeviceEvent, type FactorEvent } from '../../domain/events.ts';
import { deviceStream, userStream } from '../../domain/ids.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import type { Policy, PolicyOverrides } from '../../domain/policies/policy.ts';
import type { Delivery, DeliveryResult, Random, RecordedEvent, TokenSender } from '../../domain/ports.ts';

/** 2024-01-01T00:00:00Z, a whole TOTP step. */
export const T0 = Date.UTC(2024, 0, 1);

export interface RecordingSender extends TokenSender {
  readonly deliveries: Delivery[];
  /** What the next sends do: deliver, report a failure, or throw. */
  mode: 'ok' | 'fail' | 'throw';
  /** The failure reason (mode 'fail') or thrown message (mode 'throw'); may mention the code. */
  failWith: (d: Delivery) => string;
}

export const recordingSender = (): RecordingSender => {
  const s: RecordingSender = {
    deliveries: [],
    mode: 'ok',
    failWith: (d) => `the gateway refused to send ${d.code} to ${d.destination}`,
    send: async (d: Delivery): Promise<DeliveryResult> => {
      s.deliveries.push(d);
      if (s.mode === 'throw') throw new Error(s.failWith(d));
      if (s.mode === 'fail') return { ok: false, reason: s.failWith(d) };
      return { ok: true };
    },
  };
  return s;
};

/** A deterministic Random: SHA-256 in counter mode over a seed. */
export const seededRandom = (seed: number | string): Random => {
  let counter = 0;
  return {
    bytes: (n: number) => {
      const out = Buffer.alloc(n);
      let filled = 0;
      while (filled < n) {
        const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
        filled += block.copy(out, filled);
      }
      return new Uint8Array(out);
    },
  };
};

export const systemRandom: Random = { bytes: (n) => new Uint8Array(randomBytes(n)) };

export const setup = (o: { policy?: Policy | PolicyOverrides; start?: number; random?: Random; sender?: RecordingSender } = {}) => {
  let t = o.start ?? T0;
  const clock = { now: () => t };
  const store = createMemoryEventStore({ now: () => t });
  const vault = createMemoryVault();
  const sender = o.sender ?? recordingSender();
  const engine: Engine = createEngine({
    store,
    vault,
    sender,
    clock,
    random: o.random ?? systemRandom,
    ...(o.policy ? { policy: o.policy } : {}),
  });
  return {
    engine,
    store,
    vault,
    sender,
    clock,
    now: () => t,
    at: (ms: number) => {
      t = ms;
    },
    advance: (ms: number) => {
      t += ms;
    },
  };
};
export type Harness = ReturnType<typeof setup>;

/** Runs a TaskEither and returns its Right, failing the test on a Left. */
export const ok = async <A>(te: TaskEither<EngineError, A>): Promise<A> => {
  const r = await te();
  if (isLeft(r)) throw new Error(`expected Right, got Left ${r.left.code}: ${r.left.message}`);
  return r.right;
};

/** Runs a TaskEither and returns its Left, failing the test on a Right. */
export const ko = async <A>(te: TaskEither<EngineError, A>): Promise<EngineError> => {
  const r: Either<EngineError, A> = await te();
  if (!isLeft(r)) throw new Error(`expected Left, got Right ${JSON.stringify(r.right)}`);
  return r.left;
};

export const decodeAll = (events: readonly RecordedEvent[]): FactorEvent[] =>
  events.map((e) => {
    const d = decodeEvent(e.type, e.data);
    if (isLeft(d)) throw new Error(`stored event does not decode: ${d.left}`);
    return d.right;
  });

export const deviceEvents = async (h: Harness, deviceId: string): Promise<DeviceEvent[]> =>
  decodeAll((await h.store.readStream(deviceStream(deviceId))).events) as DeviceEvent[];

export const userEvents = async (h: Harness, userId: string): Promise<FactorEvent[]> =>
  decodeAll((await h.store.readStream(userStream(userId))).events);

export const types = (events: readonly { type: string }[]): string[] => events.map((e) => e.type);

/** The current TOTP code of a 30 s / 6 digit / SHA1 device at `nowMs`. */
export const totpAt = (key: Uint8Array, nowMs: number, o: { step?: number; digits?: number; algorithm?: 'SHA1' | 'SHA256' | 'SHA512'; offset?: number } = {}) =>
  hotpCode(key, Math.floor(Math.floor(nowMs / 1000) / (o.step ?? 30)) + (o.offset ?? 0), o.digits ?? 6, o.algorithm ?? 'SHA1');

/**
 * The parts of a DeviceView that follow from the folded state alone, computed here
 * independently of the engine's own view function.
 */
export const stateView = (s: DeviceState) => {
  if (s.status === 'empty') return null;
  const k = s.k;
  return {
    deviceId: s.deviceId,
    userId: s.userId,
    kind: k.kind,
    name: s.name,
    confirmed: s.confirmed,
    removed: s.removed,
    createdAt: s.createdAt,
    lastUsedAt: s.lastUsedAt,
    failureCount: s.throttle.failureCount,
    lastFailureAt: s.throttle.lastFailureAt,
    lastGeneratedAt: s.cooldown.lastGeneratedAt,
    totp: k.kind === 'totp' ? { drift: k.drift, lastStep: k.lastStep } : undefined,
    hotp: k.kind === 'hotp' ? { counter: k.counter } : undefined,
    backupCodesLeft: k.kind === 'static' ? k.digests.length : undefined,
    pendingUntil: k.kind === 'email' || k.kind === 'sms' ? k.validUntil : undefined,
  };
};

/** The same parts, read from the engine's DeviceView (pendingUntil only while it is pending). */
export const engineView = (v: DeviceView, now: number) => ({
  deviceId: v.deviceId,
  userId: v.userId,
  kind: v.kind,
  name: v.name,
  confirmed: v.confirmed,
  removed: v.removed,
  createdAt: v.createdAt,
  lastUsedAt: v.lastUsedAt,
  failureCount: v.throttle.failureCount,
  lastFailureAt: v.throttle.lastFailureAt,
  lastGeneratedAt: v.cooldown.lastGeneratedAt,
  totp: v.totp ? { drift: v.totp.drift, lastStep: v.totp.lastStep } : undefined,
  hotp: v.hotp ? { counter: v.hotp.counter } : undefined,
  backupCodesLeft: v.backupCodesLeft,
  pendingUntil: v.kind === 'email' || v.kind === 'sms' ? (v.pendingCode?.validUntil ?? null) : undefined,
  _now: now,
});

/** Folds the stored stream and compares it with engine.device (pending codes only count before expiry). */
export const foldedMatchesEngine = async (h: Harness, deviceId: string) => {
  const read = await h.store.readStream(deviceStream(deviceId));
  const folded = stateView(fold(decodeAll(read.events) as DeviceEvent[]));
  const v = await ok(h.engine.device(deviceId));
  const now = h.now();
  const expected = folded && {
    ...folded,
    pendingUntil: folded.pendingUntil === undefined ? undefined : folded.pendingUntil !== null && now < folded.pendingUntil ? folded.pendingUntil : null,
    _now: now,
  };
  return { folded: expected, engine: engineView(v, now), version: read.version, engineVersion: v.version };
};
