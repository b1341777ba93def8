/**
 * The pure domain: events, deciders, policies, kinds and ids. The engine that drives it
 * through the ports is app/ (app/index.ts: domain and engine together).
 */
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
