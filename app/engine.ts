/**
 * The engine: a thin composition of the generic command handler (app/command-handler.ts) and
 * its state cache, the domain's deciders (through app/factor-streams.ts), the vault's secrets
 * and the use cases, each in its own file. createEngine checks the options and wires them.
 *
 * Every public method returns an fp-ts TaskEither. A rejected or refused verification is a
 * Right outcome (`{ ok: false, reason }`); Left is for errors: invalid input, unknown or
 * removed device, store or vault failure, conflicts exhausted.
 */
import { makePolicy, policyProblems, type Policy } from '../domain/policies/policy.ts';
import { issueBackupCodes } from './backup-codes.ts';
import { challengeDevice } from './challenge.ts';
import { createCommandHandler } from './command-handler.ts';
import { commandMetadata } from './command-metadata.ts';
import type { EngineContext } from './context.ts';
import { deviceAdmin } from './device-admin.ts';
import { deviceReads } from './device-reads.ts';
import type { Engine, EngineOptions } from './engine-api.ts';
import { createFactorStreams } from './factor-streams.ts';
import { histories } from './history.ts';
import { matchWorkflow } from './match-workflow.ts';
import { registerDevice } from './register.ts';
import { createSecrets } from './secrets.ts';
import { must, run } from './errors.ts';
import { createStateCache } from './state-cache.ts';
import { verifyWith } from './verify.ts';
import { chainVerification } from './verify-chain.ts';

export const createEngine = (o: EngineOptions): Engine => {
  const { store, vault, sender, clock, random } = o;
  const policy: Policy = isFullPolicy(o.policy) ? o.policy : makePolicy(o.policy ?? {});
  const problems = policyProblems(policy);
  if (problems.length > 0) throw new Error(`invalid policy: ${problems.join('; ')}`);
  const maxRetries = o.maxConflictRetries ?? 100;
  const cacheSize = o.cacheSize ?? 10_000;
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) throw new Error(`invalid cacheSize: ${cacheSize} (a whole number ≥ 0)`);
  const optimistic = o.optimisticCache ?? store.tailOnConflict === true;

  const cache = createStateCache(store, cacheSize);
  const handler = createCommandHandler({ store, cache, maxRetries, optimistic });
  const ctx: EngineContext = {
    store,
    vault,
    sender,
    clock,
    random,
    policy,
    issuer: o.issuer ?? 'factorstream',
    meta: commandMetadata(clock, random),
    cache,
    handler,
    streams: createFactorStreams(cache, handler, policy),
    secrets: createSecrets(vault, cacheSize),
  };

  const register = registerDevice(ctx);
  const admin = deviceAdmin(ctx);
  const reads = deviceReads(ctx);
  const history = histories(ctx);
  return {
    policy,
    register,
    confirm: verifyWith(ctx, true),
    verify: verifyWith(ctx, false),
    match: matchWorkflow(ctx),
    challenge: challengeDevice(ctx),
    issueBackupCodes: issueBackupCodes(ctx, register),
    resetThrottle: admin.resetThrottle,
    resetUserThrottle: admin.resetUserThrottle,
    rename: admin.rename,
    recordAdminTokenRefused: (refused, options) =>
      run(async () => {
        await ctx.streams.onAccess(must(ctx.meta(options)), refused);
      }),
    remove: admin.remove,
    device: reads.device,
    deviceAt: reads.deviceAt,
    history: history.history,
    userHistory: history.userHistory,
    eraseUser: admin.eraseUser,
    verifyChain: chainVerification(ctx),
    userDevices: reads.userDevices,
  };
};

const isFullPolicy = (p: unknown): p is Policy =>
  typeof p === 'object' && p !== null && 'throttle' in p && 'matchThrottle' in p && 'cooldownSeconds' in p &&
  'codeValiditySeconds' in p && 'codeDigits' in p && 'maxDrift' in p && 'totpSync' in p && 'backupCodeCount' in p &&
  ['totp', 'hotp', 'static', 'email', 'sms'].every((k) => k in (p as Policy).throttle);

export type {
  BackupCodes,
  ChainReport,
  ChallengeOutcome,
  Engine,
  EngineOptions,
  HistoryEntry,
  MatchOutcome,
  Options,
  Registered,
  VerifyOutcome,
} from './engine-api.ts';
export type { DeviceView } from './device-view.ts';
export type { EngineError, EngineErrorCode } from './errors.ts';
