/**
 * factorstream's public API.
 */
export { createEngine } from './engine.ts';
export type {
  BackupCodes,
  ChallengeOutcome,
  DeviceView,
  Engine,
  EngineError,
  EngineErrorCode,
  EngineOptions,
  HistoryEntry,
  MatchOutcome,
  Options,
  Registered,
  VerifyOutcome,
} from './engine.ts';
export * from './ports.ts';
export * from './events.ts';
export { decide, type DecideContext } from './decide.ts';
export { evolve, fold, initialState, type DeviceState, type RegisteredDevice, type KindState } from './device.ts';
export { decideUser, evolveUser, foldUser, initialUserState, type UserState } from './user.ts';
export { defaultPolicy, makePolicy, type Policy, type PolicyOverrides, type ThrottlePolicy } from './policies/policy.ts';
export { checkThrottle, throttleStatus, throttleDelayMs, type ThrottleState } from './policies/throttle.ts';
export { checkCooldown, type CooldownState } from './policies/cooldown.ts';
export { deviceStream, userStream, persistentId, fromPersistentId } from './ids.ts';
export { hotpCode } from './kinds/oath.ts';
export { otpauthUri, parseOtpauthUri } from './kinds/uri.ts';
export type { RegisterInput } from './inputs.ts';
