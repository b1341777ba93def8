/**
 * The engine's public contract: the options it is created with, what each use case answers,
 * and the Engine interface itself. A rejected or refused verification is a Right outcome
 * (`{ ok: false, reason }`); Left is for errors (app/errors.ts).
 */
import type { TaskEither } from 'fp-ts/lib/TaskEither.js';
import type { ChainBreak } from '../domain/chain.ts';
import type { Kind } from '../domain/codecs.ts';
import type { EventMetadata, FactorEvent, FailureReason } from '../domain/events.ts';
import type { CommandOptions, RegisterInput } from '../domain/inputs.ts';
import type { Policy, PolicyOverrides } from '../domain/policies/policy.ts';
import type { Clock, EventStore, Random, TokenSender, Vault } from '../domain/ports.ts';
import type { DeviceView } from './device-view.ts';
import type { EngineError } from './errors.ts';

export interface EngineOptions {
  readonly store: EventStore;
  readonly vault: Vault;
  readonly sender?: TokenSender;
  /** The time of decisions (adapters/system.ts has the system clock). */
  readonly clock: Clock;
  /** Random bytes for keys, codes and ids (adapters/system.ts has node:crypto's). */
  readonly random: Random;
  readonly policy?: Policy | PolicyOverrides;
  /** How many times a command is decided again after losing a race (default 100). */
  readonly maxConflictRetries?: number;
  /** The issuer named in otpauth URIs (default "factorstream"; "" for none). */
  readonly issuer?: string;
  /**
   * How many streams the engine keeps folded in memory (with their last event's hash and
   * command ids), and how many opened TOTP/HOTP keys. A command on a cached stream reads only
   * the events appended since (one indexed query), whoever appended them; the expected version
   * of every append still guards against writers the cache has not seen. Default 10 000;
   * 0 turns both caches off.
   */
  readonly cacheSize?: number;
  /**
   * Decide a command on the cached state of its stream without first reading what was
   * appended since (reads still do). Nothing stale is ever written: the append carries the
   * cached version as its expected version, so a stale state costs a conflict and a second
   * decision. On a store with `tailOnConflict` (memory, SQLite, PostgreSQL) the refused append
   * brings back what the cache missed, so a stale cache costs the same two round trips as a
   * read before every command, and a current one saves the read; on a store without it
   * (EventStoreDB) a stale cache costs a third round trip, a reload. Default: the store's
   * `tailOnConflict`.
   */
  readonly optimisticCache?: boolean;
}

export type Options = CommandOptions;

export interface Registered {
  readonly deviceId: string;
  readonly persistentId: string;
  readonly kind: Kind;
  /** totp/hotp: the otpauth:// URI and the key in base32, for the user's app. Shown once. */
  readonly otpauthUri?: string;
  readonly secretBase32?: string;
  /** True when this command id had already registered the device (nothing new was written). */
  readonly replayed: boolean;
}

export type VerifyOutcome =
  | { readonly ok: true; readonly deviceId: string; readonly persistentId: string; readonly confirmed: boolean }
  | {
      readonly ok: false;
      readonly deviceId: string;
      readonly reason: FailureReason | 'throttled';
      /** When refused: the instant from which an attempt is allowed again. */
      readonly retryAt?: number;
      readonly failureCount?: number;
    };

export type MatchOutcome =
  | { readonly ok: true; readonly deviceId: string; readonly persistentId: string }
  | { readonly ok: false; readonly reason: 'no-match' | 'throttled'; readonly retryAt?: number; readonly failureCount?: number };

export type ChallengeOutcome =
  | { readonly ok: true; readonly deviceId: string; readonly validUntil: number; readonly replayed: boolean }
  | { readonly ok: false; readonly deviceId: string; readonly reason: 'cooldown'; readonly retryAt: number }
  | { readonly ok: false; readonly deviceId: string; readonly reason: 'delivery-failed'; readonly message: string };

export interface BackupCodes {
  readonly deviceId: string;
  readonly persistentId: string;
  /** The codes, shown this once. Empty when the command id had already issued them. */
  readonly codes: readonly string[];
  readonly replayed: boolean;
}

export interface HistoryEntry {
  readonly version: number;
  readonly position: string;
  readonly recordedAt: number;
  readonly event: FactorEvent;
  readonly metadata: EventMetadata;
}

export interface Engine {
  readonly policy: Policy;
  register(input: RegisterInput, options?: Options): TaskEither<EngineError, Registered>;
  confirm(device: string, token: unknown, options?: Options): TaskEither<EngineError, VerifyOutcome>;
  verify(device: string, token: unknown, options?: Options): TaskEither<EngineError, VerifyOutcome>;
  match(userId: string, token: unknown, options?: Options): TaskEither<EngineError, MatchOutcome>;
  challenge(device: string, options?: Options): TaskEither<EngineError, ChallengeOutcome>;
  /**
   * Draws `count` new codes, or takes the given `codes` instead (an import of existing ones:
   * 1–100 codes of 4–16 letters and digits, stored as digests like drawn ones).
   */
  issueBackupCodes(
    target: { readonly device: string } | { readonly userId: string; readonly name?: string },
    options?: Options & { readonly count?: number; readonly codes?: readonly string[] },
  ): TaskEither<EngineError, BackupCodes>;
  resetThrottle(device: string, reason: string, options?: Options): TaskEither<EngineError, DeviceView>;
  resetUserThrottle(userId: string, reason: string, options?: Options): TaskEither<EngineError, void>;
  rename(device: string, name: string, options?: Options): TaskEither<EngineError, DeviceView>;
  /**
   * Records a wrong admin token of the dashboard in the event log (AdminTokenRefused, in the
   * address's own stream): the address, the how-manieth failure in a row, the wait it now has.
   */
  recordAdminTokenRefused(refused: { readonly address: string; readonly failureCount: number; readonly delayMs: number }, options?: Options): TaskEither<EngineError, void>;
  remove(device: string, reason?: string, options?: Options): TaskEither<EngineError, DeviceView>;
  device(device: string): TaskEither<EngineError, DeviceView>;
  /** The device as it was at `at` (ms since the epoch), folded from its stream. */
  deviceAt(device: string, at: number): TaskEither<EngineError, DeviceView>;
  history(device: string): TaskEither<EngineError, readonly HistoryEntry[]>;
  userHistory(userId: string): TaskEither<EngineError, readonly HistoryEntry[]>;
  /** The user's devices (removed ones left out), from the user stream and each device's stream. */
  userDevices(userId: string, filter?: { readonly confirmed?: boolean }): TaskEither<EngineError, readonly DeviceView[]>;
  /**
   * Erasure of a user (GDPR): removes every device of theirs, destroying each data key. The
   * events stay and still replay; secrets, destinations and codes are unrecoverable.
   */
  eraseUser(userId: string, reason: string, options?: Options): TaskEither<EngineError, { readonly removed: readonly string[] }>;
  /** Checks the hash chain of a device's or a user's stream; null when every link holds. */
  verifyChain(target: { readonly device: string } | { readonly userId: string }): TaskEither<EngineError, ChainReport>;
}

export interface ChainReport {
  readonly streamName: string;
  readonly checked: number;
  readonly broken: ChainBreak | null;
}
