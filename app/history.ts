/**
 * A stream's history: every event of a device's or a user's stream, decoded, with its
 * version, global position, the time it was recorded and its metadata.
 */
import type { FactorEvent } from '../domain/events.ts';
import { checkedText, mustDevice } from './command-targets.ts';
import type { EngineContext } from './context.ts';
import type { Engine, HistoryEntry } from './engine-api.ts';
import { run } from './errors.ts';
import type { LoadedEntries } from './state-cache.ts';

const historyOf = (loaded: LoadedEntries<unknown, FactorEvent>): HistoryEntry[] =>
  loaded.entries.map((x) => ({
    version: x.raw.version,
    position: x.raw.position,
    recordedAt: x.raw.recordedAt,
    event: x.event,
    metadata: x.metadata,
  }));

export const histories = ({ streams }: EngineContext): Pick<Engine, 'history' | 'userHistory'> => ({
  history: (device) => run(async () => historyOf(await streams.loadDeviceEntries(mustDevice(device)))),
  userHistory: (userId) => run(async () => historyOf(await streams.loadUserEntries(checkedText('userId', userId, 128)))),
});
