/**
 * The events of one append as the store takes them: deterministic ids (from the command id,
 * so a retried command writes the same ids), the command's metadata, and each event linked to
 * the one before it (domain/chain.ts). An event or metadata that would not decode again is
 * refused here, before the append: unstorable-event, nothing written.
 */
import { isLeft, type Either } from 'fp-ts/lib/Either.js';
import { eventHash } from '../domain/chain.ts';
import { decodeWith } from '../domain/codecs.ts';
import { EventMetadata } from '../domain/events.ts';
import { eventIdFor } from '../domain/ids.ts';
import type { NewEvent } from '../domain/ports.ts';
import type { Meta } from './command-metadata.ts';
import { err, Failure } from './errors.ts';

/** Where the next event links on: the stream's version and the hash of its last event. */
export interface ChainHead {
  readonly version: number;
  readonly prevHash: string;
}

export const chained = <E>(
  stream: string,
  head: ChainHead,
  events: readonly E[],
  encode: (e: E) => Either<string, { readonly type: string; readonly data: unknown }>,
  m: Meta,
): { readonly toStore: NewEvent[]; readonly lastHash: string } => {
  let prevHash = head.prevHash;
  const toStore = events.map((e, i) => {
    const checked = encode(e);
    if (isLeft(checked))
      throw new Failure(err('unstorable-event', `refused to append to stream ${stream}: the event would not decode (${checked.left}); nothing was written`));
    const encoded = checked.right;
    // Keys in sorted order, as the chain's canonical encoding writes them: nothing to sort.
    const metadata: EventMetadata = m.onBehalfOf !== undefined
      ? {
          actor: m.actor,
          causationId: m.causationId,
          ...(m.client ? { client: m.client } : {}),
          commandId: m.commandId,
          correlationId: m.correlationId,
          eventId: eventIdFor(m.commandId, i, stream),
          onBehalfOf: m.onBehalfOf,
          prevHash,
        }
      : m.client
      ? {
          actor: m.actor,
          causationId: m.causationId,
          client: m.client,
          commandId: m.commandId,
          correlationId: m.correlationId,
          eventId: eventIdFor(m.commandId, i, stream),
          prevHash,
        }
      : {
          actor: m.actor,
          causationId: m.causationId,
          commandId: m.commandId,
          correlationId: m.correlationId,
          eventId: eventIdFor(m.commandId, i, stream),
          prevHash,
        };
    const metaBack = decodeWith(EventMetadata, metadata);
    if (isLeft(metaBack))
      throw new Failure(err('unstorable-event', `refused to append to stream ${stream}: the metadata would not decode (${metaBack.left}); nothing was written`));
    const stored = { eventId: metadata.eventId, type: encoded.type, data: encoded.data, metadata };
    prevHash = eventHash({ streamName: stream, version: head.version + i + 1, ...stored });
    return stored;
  });
  return { toStore, lastHash: prevHash };
};
