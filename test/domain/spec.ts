/**
 * Given / when / then for the device and user deciders, after Emmett's DeciderSpecification:
 * given these events, when this command (at this instant, with these keys), then these
 * events, or this error.
 *
 * `then` also checks that every emitted event survives its io-ts codec (encode, JSON, decode)
 * unchanged: a decider must never produce an event the store boundary would reject.
 */
import { expect } from 'vitest';
import type { DeviceCommand, UserCommand } from '../../domain/commands.ts';
import { decide, type DecideContext } from '../../domain/decide.ts';
import { fold, type DeviceState } from '../../domain/device.ts';
import type { DomainError, DomainErrorCode } from '../../domain/errors.ts';
import { decodeEvent, encodeEvent, type DeviceEvent, type FactorEvent, type UserEvent } from '../../domain/events.ts';
import { defaultPolicy, makePolicy, type PolicyOverrides } from '../../domain/policies/policy.ts';
import { decideUser, foldUser, type UserDecideContext, type UserState } from '../../domain/user.ts';

export type Context = Omit<DecideContext, 'policy'> & { policy?: DecideContext['policy'] };
export type UserContext = Omit<UserDecideContext, 'policy'> & { policy?: UserDecideContext['policy'] };

/** A policy with some settings changed (shorthand for makePolicy). */
export const policy = (o: PolicyOverrides = {}) => makePolicy(o);

/** Every event crosses the store boundary through its codec: it must come back equal. */
export const expectWireSafe = (events: readonly FactorEvent[]): void => {
  for (const e of events) {
    const wire = JSON.parse(JSON.stringify(encodeEvent(e))) as { type: string; data: unknown };
    const back = decodeEvent(wire.type, wire.data);
    if (back._tag === 'Left') throw new Error(`decider emitted an event its codec rejects: ${back.left}`);
    expect(back.right).toEqual(e);
  }
};

type Result<E> = { readonly _tag: 'Left'; readonly left: DomainError } | { readonly _tag: 'Right'; readonly right: E[] };

const outcome = <E extends FactorEvent, S>(result: Result<E>, givenEvents: readonly E[], foldWith: (es: readonly E[]) => S) => ({
  result,
  /** Exactly these events; returns the state after them. */
  then: (expected: readonly E[]): S => {
    if (result._tag === 'Left') throw new Error(`expected events, got error ${result.left.code}: ${result.left.message}`);
    expect(result.right).toEqual(expected);
    expectWireSafe(result.right);
    return foldWith([...givenEvents, ...result.right]);
  },
  thenNothingHappened: (): void => {
    if (result._tag === 'Left') throw new Error(`expected no events, got error ${result.left.code}: ${result.left.message}`);
    expect(result.right).toEqual([]);
  },
  thenFails: (code: DomainErrorCode): DomainError => {
    if (result._tag === 'Right') throw new Error(`expected error ${code}, got events ${JSON.stringify(result.right)}`);
    expect(result.left.code).toBe(code);
    return result.left;
  },
  /** The emitted events, whatever they are (for tests that inspect them piecewise). */
  events: (): E[] => {
    if (result._tag === 'Left') throw new Error(`expected events, got error ${result.left.code}: ${result.left.message}`);
    expectWireSafe(result.right);
    return result.right;
  },
});

export const given = (events: readonly DeviceEvent[]) => ({
  state: (): DeviceState => fold(events),
  when: (command: DeviceCommand, context: Context) => {
    const ctx: DecideContext = { policy: defaultPolicy, ...context };
    return outcome<DeviceEvent, DeviceState>(decide(command, fold(events), ctx), events, (es) => fold(es));
  },
});

export const givenUser = (events: readonly UserEvent[]) => ({
  state: (): UserState => foldUser(events),
  when: (command: UserCommand, context: UserContext) => {
    const ctx: UserDecideContext = { policy: defaultPolicy, ...context };
    return outcome<UserEvent, UserState>(decideUser(command, foldUser(events), ctx), events, (es) => foldUser(es));
  },
});

/** Runs a sequence of commands, each against the events so far; returns all events. */
export const run = (
  start: readonly DeviceEvent[],
  steps: readonly { command: DeviceCommand; context: Context }[],
): DeviceEvent[] => {
  const all = [...start];
  for (const s of steps) all.push(...given(all).when(s.command, s.context).events());
  return all;
};
