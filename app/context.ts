/**
 * What every use case of the engine is given: the ports, the policy, and the engine's named
 * collaborators (command metadata, state cache, command handler, the device and user streams,
 * secrets). Built once by createEngine (app/engine.ts).
 */
import type { Either } from 'fp-ts/lib/Either.js';
import type { CommandOptions } from '../domain/inputs.ts';
import type { Policy } from '../domain/policies/policy.ts';
import type { Clock, EventStore, Random, TokenSender, Vault } from '../domain/ports.ts';
import type { CommandHandler } from './command-handler.ts';
import type { Meta } from './command-metadata.ts';
import type { EngineError } from './errors.ts';
import type { FactorStreams } from './factor-streams.ts';
import type { Secrets } from './secrets.ts';
import type { StateCache } from './state-cache.ts';

export interface EngineContext {
  readonly store: EventStore;
  readonly vault: Vault;
  readonly sender: TokenSender | undefined;
  readonly clock: Clock;
  readonly random: Random;
  readonly policy: Policy;
  /** The issuer named in otpauth URIs. */
  readonly issuer: string;
  readonly meta: (options: CommandOptions | undefined) => Either<EngineError, Meta>;
  readonly cache: StateCache;
  readonly handler: CommandHandler;
  readonly streams: FactorStreams;
  readonly secrets: Secrets;
}
