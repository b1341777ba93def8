/**
 * The engine's errors: the codes a caller can meet (EngineError), the exception that carries
 * one through the awaiting code of a use case (Failure), and the mapping of whatever a port
 * throws to a code whose message carries no event data. Every public method returns a
 * TaskEither built by `run`; Left is for errors, never for a refused verification.
 */
import { isLeft, left, right, type Either } from 'fp-ts/lib/Either.js';
import type { TaskEither } from 'fp-ts/lib/TaskEither.js';
import type { DomainError, DomainErrorCode } from '../domain/errors.ts';
import { StoreError, VaultError } from '../domain/ports.ts';

export type EngineErrorCode =
  | DomainErrorCode
  | 'conflict'
  | 'store-unavailable'
  | 'corrupt-event'
  /** A decision made an event that its own codec would not read back: nothing was appended. */
  | 'unstorable-event'
  | 'vault-error'
  | 'not-configured'
  | 'internal';

export interface EngineError {
  readonly code: EngineErrorCode;
  readonly message: string;
}

export const err = (code: EngineErrorCode, message: string): EngineError => ({ code, message });
export const fromDomain = (e: DomainError): EngineError => ({ code: e.code, message: e.message });

/** An EngineError thrown through a use case; `run` turns it back into a Left. */
export class Failure extends Error {
  constructor(readonly error: EngineError) {
    super(error.message);
  }
}

/** Maps anything thrown by a port to an EngineError whose message carries no event data. */
export const toEngineError = (e: unknown): EngineError => {
  if (e instanceof Failure) return e.error;
  if (e instanceof StoreError)
    return err(e.code === 'corrupt' ? 'corrupt-event' : e.code === 'invalid' ? 'internal' : 'store-unavailable', e.message);
  if (e instanceof VaultError) return err('vault-error', e.message);
  return err('internal', `unexpected error: ${e instanceof Error ? e.name + ': ' + e.message.slice(0, 200) : 'unknown'}`);
};

/** Runs a use case: its result as a Right, anything it threw as a Left. */
export const run = <A>(f: () => Promise<A>): TaskEither<EngineError, A> => async () => {
  try {
    return right(await f());
  } catch (e) {
    return left(toEngineError(e));
  }
};

/** The Right of `e`, or its Left thrown as a Failure. */
export const must = <A>(e: Either<EngineError, A>): A => {
  if (isLeft(e)) throw new Failure(e.left);
  return e.right;
};

export const mapDomain = <A>(e: Either<DomainError, A>): Either<EngineError, A> => (isLeft(e) ? left(fromDomain(e.left)) : e);

export const conflictExhausted = (stream: string, attempts: number): Failure =>
  new Failure(err('conflict', `stream ${stream} kept changing; gave up after ${attempts} attempts`));
