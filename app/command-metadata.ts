/**
 * What a command carries besides its payload: its id (idempotency), correlation and causation
 * ids, actor, client and the instant it is decided at. Ids the caller does not give are random
 * UUIDs drawn from the Random port; the instant comes from the Clock port.
 */
import { isLeft, left, right, type Either } from 'fp-ts/lib/Either.js';
import { decodeWith } from '../domain/codecs.ts';
import type { ClientContext } from '../domain/events.ts';
import { uuidFromBytes } from '../domain/ids.ts';
import { CommandOptions } from '../domain/inputs.ts';
import type { Clock, Random } from '../domain/ports.ts';
import { err, type EngineError } from './errors.ts';

export interface Meta {
  readonly commandId: string;
  readonly correlationId: string;
  readonly causationId: string;
  readonly actor: string;
  readonly onBehalfOf?: string;
  readonly client?: ClientContext;
  readonly now: number;
}

/**
 * Command ids are random UUIDs drawn from the Random port 256 at a time: a small draw costs
 * about as much as a large one (a system call), and one is needed for every command the
 * caller gives no id.
 */
export const commandIds = (random: Random): (() => string) => {
  let idBytes: Uint8Array = new Uint8Array(0);
  let idOffset = 0;
  return () => {
    if (idOffset + 16 > idBytes.length) {
      idBytes = random.bytes(16 * 256);
      idOffset = 0;
    }
    idOffset += 16;
    return uuidFromBytes(idBytes.subarray(idOffset - 16, idOffset));
  };
};

/** The metadata of a command from the options it was given (checked), with defaults. */
export const commandMetadata = (clock: Clock, random: Random) => {
  const newCommandId = commandIds(random);
  return (options: CommandOptions | undefined): Either<EngineError, Meta> => {
    if (options === undefined) {
      const commandId = newCommandId();
      return right({ commandId, correlationId: commandId, causationId: commandId, actor: 'system', now: clock.now() });
    }
    const decoded = decodeWith(CommandOptions, options);
    if (isLeft(decoded)) return left(err('invalid-command', `invalid options: ${decoded.left}`));
    const op = decoded.right;
    const commandId = op.commandId ?? newCommandId();
    return right({
      commandId,
      correlationId: op.correlationId ?? commandId,
      causationId: op.causationId ?? commandId,
      actor: op.actor ?? 'system',
      ...(op.client ? { client: op.client } : {}),
      ...(op.onBehalfOf ? { onBehalfOf: op.onBehalfOf } : {}),
      now: op.now ?? clock.now(),
    });
  };
};
