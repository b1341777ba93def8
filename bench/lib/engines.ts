/**
 * Engines and devices for the benchmarks: real engines (the system's randomness, the memory
 * vault), TOTP devices registered through them, and valid codes computed ahead of the timed
 * part. The clock is a counter the benchmark moves: every verification happens one TOTP step
 * after the previous one, so every code is valid and none is a replay.
 */
import { createHmac } from 'node:crypto';
import { isLeft } from 'fp-ts/lib/Either.js';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { systemRandom } from '../../adapters/system.ts';
import { createEngine, type Engine, type EngineOptions, type VerifyOutcome } from '../../app/engine.ts';
import { parseOtpauthUri } from '../../domain/kinds/uri.ts';
import type { EventStore } from '../../domain/ports.ts';

export const STEP_MS = 30_000;
/** 2024-01-01T00:00:00Z. */
export const START_MS = Date.UTC(2024, 0, 1);

export interface BenchClock {
  now(): number;
  /** Moves to the next TOTP step and returns the new instant. */
  tick(): number;
}

export const benchClock = (start = START_MS): BenchClock => {
  let t = start;
  return { now: () => t, tick: () => (t += STEP_MS) };
};

export interface Device {
  readonly deviceId: string;
  readonly key: Uint8Array;
}

export const makeEngine = (store: EventStore, clock: BenchClock, extra: Partial<EngineOptions> = {}): Engine =>
  createEngine({ store, vault: createMemoryVault(), clock, random: systemRandom, ...extra });

/** Registers `n` confirmed TOTP devices (one user each) and returns their ids and keys. */
export const registerDevices = async (engine: Engine, n: number, prefix = 'user'): Promise<Device[]> => {
  const out: Device[] = [];
  for (let i = 0; i < n; i++) {
    const r = await engine.register({ kind: 'totp', userId: `${prefix}-${i}`, confirmed: true })();
    if (isLeft(r)) throw new Error(`register failed: ${r.left.code} ${r.left.message}`);
    const p = parseOtpauthUri(r.right.otpauthUri ?? '');
    if (isLeft(p)) throw new Error(p.left);
    out.push({ deviceId: r.right.deviceId, key: p.right.key });
  }
  return out;
};

/** The 6-digit SHA1 TOTP code of `key` at `ms`, computed independently of the domain. */
export const codeAt = (key: Uint8Array, ms: number): string => {
  const counter = Math.floor(ms / 1000 / 30);
  const msg = Buffer.alloc(8);
  msg.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 0);
  msg.writeUInt32BE(counter >>> 0, 4);
  const h = createHmac('sha1', key).update(msg).digest();
  const o = h[h.length - 1]! & 0x0f;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
};

/** Runs a verification and insists on success (a benchmark that measured failures would lie). */
export const mustVerify = async (engine: Engine, deviceId: string, code: string): Promise<void> => {
  const r = await engine.verify(deviceId, code)();
  if (isLeft(r)) throw new Error(`verify failed: ${r.left.code} ${r.left.message}`);
  const o: VerifyOutcome = r.right;
  if (!o.ok) throw new Error(`verify rejected a valid code: ${o.reason}`);
};

/**
 * `ops` verifications planned ahead: op i happens at the next step, on device i mod n, with
 * that device's code for that step.
 */
export const plan = (clock: BenchClock, devices: readonly Device[], ops: number, offset = 0) => {
  const start = clock.now();
  const codes = new Array<string>(ops);
  for (let i = 0; i < ops; i++) codes[i] = codeAt(devices[(i + offset) % devices.length]!.key, start + (i + 1) * STEP_MS);
  return codes;
};

/** The data and metadata of a verification event as the engine writes them: the raw floors' rows. */
export const ROW_DATA = JSON.stringify({ match: { kind: 'totp', step: 56_802_240, drift: 0 }, at: 1_704_067_200_000 });
export const ROW_META = JSON.stringify({
  actor: 'system',
  causationId: '0b8f9d4e-6c1a-4f0e-9a7b-3c2d1e0f4a5b',
  commandId: '0b8f9d4e-6c1a-4f0e-9a7b-3c2d1e0f4a5b',
  correlationId: '0b8f9d4e-6c1a-4f0e-9a7b-3c2d1e0f4a5b',
  eventId: '7d1c2b3a-4e5f-5a6b-8c7d-9e0f1a2b3c4d',
  prevHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
});

