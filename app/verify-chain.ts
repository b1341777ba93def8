/**
 * Checking the hash chain of a device's or a user's stream (domain/chain.ts) as it is stored:
 * how many events were checked and the first broken link, if any.
 */
import { verifyChain } from '../domain/chain.ts';
import { deviceStream, userStream } from '../domain/ids.ts';
import { checkedText, mustDevice } from './command-targets.ts';
import type { EngineContext } from './context.ts';
import type { Engine } from './engine-api.ts';
import { run } from './errors.ts';

export const chainVerification = ({ store }: EngineContext): Engine['verifyChain'] => (target) =>
  run(async () => {
    const streamName = 'device' in target ? deviceStream(mustDevice(target.device).deviceId) : userStream(checkedText('userId', target.userId, 128));
    const read = await store.readStream(streamName);
    return { streamName, checked: read.events.length, broken: verifyChain(read.events) };
  });
