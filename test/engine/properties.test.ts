/**
 * Properties of the engine over random command sequences (fast-check, modest run counts).
 */
import fc from 'fast-check';
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { initialState, evolve, type DeviceState } from '../../domain/device.ts';
import type { Engine, EngineError } from '../../app/engine.ts';
import type { DeviceEvent } from '../../domain/events.ts';
import { deviceStream } from '../../domain/ids.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import type { PolicyOverrides } from '../../domain/policies/policy.ts';
import { toBase32 } from '../../domain/kinds/uri.ts';
import { decodeAll, foldedMatchesEngine, ok, setup, totpAt, type Harness } from './harness.ts';

// ---- the world of one run ----------------------------------------------------------------------

type Kind = 'totp' | 'hotp' | 'static' | 'email' | 'sms';
const KINDS: readonly Kind[] = ['totp', 'hotp', 'static', 'email', 'sms'];
const EMAIL = 'dave.secret@example.com';
const PHONE = '+14155550123';

interface World {
  readonly h: Harness;
  readonly ids: Record<Kind, string>;
  readonly totpKey: Uint8Array;
  readonly hotpKey: Uint8Array;
  /** Every backup code ever issued, and which were accepted. */
  readonly backupCodes: string[];
  readonly acceptedBackup: string[];
  /** Every side-channel code delivered, per device, in order. */
  readonly delivered: Record<'email' | 'sms', string[]>;
  readonly acceptedDelivered: string[];
  /** Messages the engine returned: Left messages and delivery-failure messages. */
  readonly messages: string[];
  readonly removed: Set<Kind>;
  lastTotp: string | null;
  lastHotp: string | null;
}

const world = async (policy?: PolicyOverrides): Promise<World> => {
  const h = setup(policy ? { policy } : {});
  const totpKey = Uint8Array.from({ length: 20 }, (_, i) => (i * 37 + 11) & 0xff);
  const hotpKey = Uint8Array.from({ length: 32 }, (_, i) => (i * 53 + 7) & 0xff);
  const totp = await ok(h.engine.register({ kind: 'totp', userId: 'dave', secret: totpKey, confirmed: true }));
  const hotp = await ok(h.engine.register({ kind: 'hotp', userId: 'dave', secret: hotpKey, algorithm: 'SHA256', confirmed: true }));
  const backup = await ok(h.engine.issueBackupCodes({ userId: 'dave' }, { count: 4 }));
  const email = await ok(h.engine.register({ kind: 'email', userId: 'dave', destination: EMAIL, confirmed: true }));
  const sms = await ok(h.engine.register({ kind: 'sms', userId: 'dave', destination: PHONE }));
  return {
    h,
    ids: { totp: totp.deviceId, hotp: hotp.deviceId, static: backup.deviceId, email: email.deviceId, sms: sms.deviceId },
    totpKey,
    hotpKey,
    backupCodes: [...backup.codes],
    acceptedBackup: [],
    delivered: { email: [], sms: [] },
    acceptedDelivered: [],
    messages: [],
    removed: new Set(),
    lastTotp: null,
    lastHotp: null,
  };
};

// ---- commands ----------------------------------------------------------------------------------

type TokenKind = 'right' | 'ahead' | 'wrong' | 'replay' | 'malformed';
type Cmd =
  | { readonly t: 'advance'; readonly ms: number }
  | { readonly t: 'token'; readonly via: 'verify' | 'confirm' | 'match'; readonly kind: Kind; readonly token: TokenKind; readonly pick: number }
  | { readonly t: 'challenge'; readonly kind: 'email' | 'sms' }
  | { readonly t: 'sender'; readonly mode: 'ok' | 'fail' | 'throw' }
  | { readonly t: 'issue' }
  | { readonly t: 'reset'; readonly kind: Kind }
  | { readonly t: 'remove'; readonly kind: Kind };

const kindArb = fc.constantFrom(...KINDS);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 120_000 }), fc.constant(400_000)) }) },
  {
    weight: 32,
    arbitrary: fc.record({
      t: fc.constant('token' as const),
      via: fc.constantFrom('verify' as const, 'verify' as const, 'confirm' as const, 'match' as const),
      kind: kindArb,
      token: fc.constantFrom<TokenKind>('right', 'right', 'ahead', 'wrong', 'replay', 'malformed'),
      pick: fc.nat(),
    }),
  },
  { weight: 8, arbitrary: fc.record({ t: fc.constant('challenge' as const), kind: fc.constantFrom('email' as const, 'sms' as const) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('sender' as const), mode: fc.constantFrom('ok' as const, 'ok' as const, 'fail' as const, 'throw' as const) }) },
  { weight: 4, arbitrary: fc.constant({ t: 'issue' as const }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('reset' as const), kind: kindArb }) },
  // Rare: a removed device refuses everything afterwards.
  { weight: 1, arbitrary: fc.record({ t: fc.constant('remove' as const), kind: kindArb }) },
);

const MALFORMED = ['', 'abc', '12345', '1234567', '12a456', '١٢٣٤٥٦', '１２３４５６', '!!!!', 'x'.repeat(300)];

/** A token of the asked sort for the device, from what the test knows (keys, issued and delivered codes). */
const tokenFor = async (w: World, kind: Kind, sort: TokenKind, pick: number): Promise<string> => {
  const now = w.h.now();
  if (sort === 'malformed') return MALFORMED[pick % MALFORMED.length]!;
  switch (kind) {
    case 'totp': {
      if (sort === 'replay') return w.lastTotp ?? totpAt(w.totpKey, now, { offset: -1 });
      if (sort === 'wrong') {
        const near = new Set(Array.from({ length: 13 }, (_, i) => totpAt(w.totpKey, now, { offset: i - 6 })));
        for (let c = pick % 1_000_000; ; c = (c + 1) % 1_000_000) if (!near.has(String(c).padStart(6, '0'))) return String(c).padStart(6, '0');
      }
      return totpAt(w.totpKey, now, { offset: sort === 'ahead' ? 1 : 0 });
    }
    case 'hotp': {
      const v = await w.h.engine.device(w.ids.hotp)();
      const counter = isLeft(v) ? 0 : (v.right.hotp?.counter ?? 0);
      if (sort === 'replay') return w.lastHotp ?? hotpCode(w.hotpKey, Math.max(0, counter - 1), 6, 'SHA256');
      if (sort === 'wrong') {
        const near = new Set(Array.from({ length: 6 }, (_, i) => hotpCode(w.hotpKey, counter + i, 6, 'SHA256')));
        for (let c = pick % 1_000_000; ; c = (c + 1) % 1_000_000) if (!near.has(String(c).padStart(6, '0'))) return String(c).padStart(6, '0');
      }
      return hotpCode(w.hotpKey, counter + (sort === 'ahead' ? 1 + (pick % 5) : 0), 6, 'SHA256');
    }
    case 'static': {
      if (sort === 'wrong') return 'zzzz' + 'abcd'.slice(0, pick % 5);
      if (sort === 'replay' && w.acceptedBackup.length > 0) return w.acceptedBackup[pick % w.acceptedBackup.length]!;
      return w.backupCodes[w.backupCodes.length - 1 - (pick % Math.min(w.backupCodes.length, 6))]!;
    }
    case 'email':
    case 'sms': {
      const codes = w.delivered[kind];
      if (sort === 'wrong') {
        for (let c = pick % 1_000_000; ; c = (c + 1) % 1_000_000) if (!codes.includes(String(c).padStart(6, '0'))) return String(c).padStart(6, '0');
      }
      if (codes.length === 0) return '000000';
      if (sort === 'replay') return codes[pick % codes.length]!;
      return codes[codes.length - 1]!;
    }
  }
};

/** Runs a call; a Left is allowed only as 'device-removed' for a removed device. */
const expectRightOrRemoved = async <A>(w: World, kind: Kind | null, te: () => Promise<import('fp-ts/lib/Either.js').Either<EngineError, A>>): Promise<A | null> => {
  const r = await te();
  if (isLeft(r)) {
    w.messages.push(r.left.message);
    if (!(kind !== null && w.removed.has(kind) && r.left.code === 'device-removed'))
      throw new Error(`unexpected Left ${r.left.code}: ${r.left.message}`);
    return null;
  }
  return r.right;
};

const run = async (w: World, cmd: Cmd): Promise<void> => {
  const { h } = w;
  const e: Engine = h.engine;
  switch (cmd.t) {
    case 'advance':
      h.advance(cmd.ms);
      return;
    case 'sender':
      h.sender.mode = cmd.mode;
      return;
    case 'token': {
      const token = await tokenFor(w, cmd.kind, cmd.token, cmd.pick);
      const id = w.ids[cmd.kind];
      let accepted: boolean;
      if (cmd.via === 'match') {
        const m = await ok(e.match('dave', token));
        accepted = m.ok && m.deviceId === id;
        if (m.ok && m.deviceId !== id && cmd.token !== 'wrong' && cmd.token !== 'malformed') {
          // A code can belong to another device only by coincidence; then it is not ours to record.
          return;
        }
        if (m.ok && (cmd.token === 'wrong' || cmd.token === 'malformed') && m.deviceId === id)
          throw new Error(`a ${cmd.token} token was matched: ${JSON.stringify({ token, cmd })}`);
      } else {
        const o = await expectRightOrRemoved(w, cmd.kind, cmd.via === 'verify' ? e.verify(id, token) : e.confirm(id, token));
        if (o === null) return;
        accepted = o.ok;
      }
      if (accepted && (cmd.token === 'wrong' || cmd.token === 'malformed')) throw new Error(`a ${cmd.token} token was accepted: ${JSON.stringify({ token, cmd })}`);
      if (!accepted) return;
      if (cmd.kind === 'totp') w.lastTotp = token;
      if (cmd.kind === 'hotp') w.lastHotp = token;
      if (cmd.kind === 'static') w.acceptedBackup.push(token);
      if (cmd.kind === 'email' || cmd.kind === 'sms') w.acceptedDelivered.push(`${cmd.kind}:${w.delivered[cmd.kind].lastIndexOf(token)}`);
      return;
    }
    case 'challenge': {
      const before = h.sender.deliveries.length;
      const o = await expectRightOrRemoved(w, cmd.kind, e.challenge(w.ids[cmd.kind]));
      for (const d of h.sender.deliveries.slice(before)) w.delivered[d.kind].push(d.code);
      if (o && !o.ok && o.reason === 'delivery-failed') w.messages.push(o.message);
      return;
    }
    case 'issue': {
      const o = await expectRightOrRemoved(w, 'static', e.issueBackupCodes({ device: w.ids.static }, { count: 3 }));
      if (o) w.backupCodes.push(...o.codes);
      return;
    }
    case 'reset':
      await expectRightOrRemoved(w, cmd.kind, e.resetThrottle(w.ids[cmd.kind], 'support request'));
      return;
    case 'remove':
      await expectRightOrRemoved(w, cmd.kind, e.remove(w.ids[cmd.kind], 'random removal'));
      w.removed.add(cmd.kind);
      return;
  }
};

const streamOf = async (w: World, kind: Kind): Promise<DeviceEvent[]> =>
  decodeAll((await w.h.store.readStream(deviceStream(w.ids[kind]))).events) as DeviceEvent[];

const RUNS = 60;
const commands = fc.array(cmdArb, { minLength: 1, maxLength: 30 });

// ---- the properties ------------------------------------------------------------------------------

describe('random command sequences', () => {
  it('(a) folding the stored stream equals engine.device after every command, and (c) failures only drop on TokenVerified or ThrottleReset', async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const w = await world();
        const seen: Record<string, { failures: number; version: number }> = {};
        for (const cmd of cmds) {
          await run(w, cmd);
          for (const kind of KINDS) {
            const { folded, engine, version, engineVersion } = await foldedMatchesEngine(w.h, w.ids[kind]);
            expect(engine).toEqual(folded);
            expect(engineVersion).toBe(version);
            const prev = seen[kind];
            if (prev && engine.failureCount < prev.failures) {
              const since = (await streamOf(w, kind)).slice(prev.version);
              expect(since.some((e) => e.type === 'TokenVerified' || e.type === 'ThrottleReset')).toBe(true);
            }
            seen[kind] = { failures: engine.failureCount, version };
          }
        }
        // The same over the whole log, event by event.
        for (const kind of KINDS) {
          let s: DeviceState = initialState();
          for (const e of await streamOf(w, kind)) {
            const before = s.status === 'registered' ? s.throttle.failureCount : 0;
            s = evolve(s, e);
            const after = s.status === 'registered' ? s.throttle.failureCount : 0;
            if (after < before) expect(['TokenVerified', 'ThrottleReset']).toContain(e.type);
            if (e.type === 'VerificationFailed') expect(after).toBe(before + 1);
            if (e.type === 'VerificationRefused' || e.type === 'ChallengeRefused') expect(after).toBe(before);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('(b) no code is ever accepted twice', async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const w = await world();
        for (const cmd of cmds) await run(w, cmd);
        const verified = async (kind: Kind) => (await streamOf(w, kind)).filter((e) => e.type === 'TokenVerified');

        const steps = (await verified('totp')).map((e) => (e.type === 'TokenVerified' && e.data.match.kind === 'totp' ? e.data.match.step : NaN));
        expect(steps.every((s, i) => i === 0 || s > steps[i - 1]!)).toBe(true); // strictly increasing, hence unique

        const counters = (await verified('hotp')).map((e) => (e.type === 'TokenVerified' && e.data.match.kind === 'hotp' ? e.data.match.counter : NaN));
        expect(counters.every((c, i) => i === 0 || c > counters[i - 1]!)).toBe(true);

        const digests = (await verified('static')).map((e) => (e.type === 'TokenVerified' && e.data.match.kind === 'static' ? e.data.match.digest : ''));
        expect(new Set(digests).size).toBe(digests.length);
        expect(new Set(w.acceptedBackup).size).toBe(w.acceptedBackup.length);

        for (const kind of ['email', 'sms'] as const) {
          // Each generated challenge is consumed at most once, and nothing is accepted without one.
          let pending = false;
          for (const e of await streamOf(w, kind)) {
            if (e.type === 'ChallengeGenerated') pending = true;
            if (e.type === 'ChallengeDeliveryFailed') pending = false;
            if (e.type === 'TokenVerified') {
              expect(pending).toBe(true);
              pending = false;
            }
          }
        }
        expect(new Set(w.acceptedDelivered).size).toBe(w.acceptedDelivered.length);
      }),
      { numRuns: RUNS },
    );
  });

  it('(e) no event, metadata or message ever holds a key, a backup code, a delivered code, an address or a number', async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const w = await world();
        w.h.sender.failWith = (d) => `could not deliver ${d.code} to ${d.destination}`;
        for (const cmd of cmds) await run(w, cmd);

        const haystacks = [...w.h.store.all().map((e) => JSON.stringify({ type: e.type, data: e.data, metadata: e.metadata })), ...w.messages];
        const forbidden: string[] = [EMAIL, PHONE, PHONE.slice(1), 'dave.secret'];
        for (const key of [w.totpKey, w.hotpKey]) {
          const b = Buffer.from(key);
          forbidden.push(b.toString('hex'), toBase32(key), b.toString('base64').replace(/=+$/, ''), b.toString('base64url'));
        }
        const bounded = [...w.backupCodes, ...w.delivered.email, ...w.delivered.sms].map(
          (c) => new RegExp(`(^|[^A-Za-z0-9])${c}([^A-Za-z0-9]|$)`, 'i'),
        );
        for (const text of haystacks) {
          for (const f of forbidden) expect(text.toLowerCase()).not.toContain(f.toLowerCase());
          for (const re of bounded) expect(text).not.toMatch(re);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

// ---- (d) any input as a token ------------------------------------------------------------------

/** Whitespace is ignored; then exactly the expected form, else malformed. Input over 256 chars is malformed. */
const wellFormed = (kind: Kind, token: unknown): boolean => {
  if (typeof token !== 'string' || token.length > 256) return false;
  const s = token.replace(/\s+/gu, '');
  return kind === 'static' ? /^[a-z0-9]{4,16}$/.test(s.toLowerCase()) : /^[0-9]{6}$/.test(s);
};

const hostile: unknown[] = [
  undefined,
  null,
  123456,
  123456n,
  Number.NaN,
  Symbol('token'),
  ['123456'],
  { toString: () => '123456' },
  {
    toString() {
      throw new Error('boom');
    },
  },
  new Proxy({}, { get: () => { throw new Error('trap'); }, has: () => { throw new Error('trap'); } }),
  () => '123456',
  new Uint8Array([1, 2, 3, 4, 5, 6]),
  '1'.repeat(1_000_000),
  ' '.repeat(1_000_000) + '123456',
  '\u0000123456',
  '12\u200b3456',
  '\ud800\udc00\ud800',
];

describe('(d) any value as a token', () => {
  const tokenArb: fc.Arbitrary<unknown> = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.string({ minLength: 200, maxLength: 5000 }),
    fc.stringMatching(/^\s*[0-9]{2}\s?[0-9]{4}\s*$/),
    fc.stringMatching(/^[A-Za-z0-9 ]{3,18}$/),
    fc.jsonValue(),
    fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true }),
  );

  const check = async (e: Engine, id: string, kind: Kind, token: unknown, via: 'verify' | 'confirm') => {
    let r;
    try {
      r = await (via === 'verify' ? e.verify(id, token as string) : e.confirm(id, token as string))();
    } catch (err) {
      throw new Error(`threw for ${String(typeof token)}: ${String(err)}`);
    }
    if (isLeft(r)) throw new Error(`Left ${r.left.code}: ${r.left.message}`);
    const o = r.right;
    if (!wellFormed(kind, token)) expect(o).toEqual({ ok: false, deviceId: id, reason: 'malformed' });
    // A well-formed guess is almost always wrong; by a one-in-a-million chance it is the code.
    else expect(o.ok || ['invalid', 'no-challenge', 'expired', 'replay'].includes(o.reason)).toBe(true);
  };

  it('is a Right, and malformed input is { ok: false, reason: "malformed" }, for every kind (property)', async () => {
    const w = await world({ throttle: { totp: { factor: 0 }, hotp: { factor: 0 }, static: { factor: 0 }, email: { factor: 0 }, sms: { factor: 0 } }, matchThrottle: { factor: 0 } });
    await ok(w.h.engine.challenge(w.ids.email));
    await fc.assert(
      fc.asyncProperty(tokenArb, kindArb, fc.constantFrom('verify' as const, 'confirm' as const), async (token, kind, via) => {
        await check(w.h.engine, w.ids[kind], kind, token, via);
      }),
      { numRuns: 300 },
    );
    // match takes anything too: a failure is 'no-match', never a Left or a throw.
    await fc.assert(
      fc.asyncProperty(tokenArb, async (token) => {
        const r = await w.h.engine.match('dave', token as string)();
        if (isLeft(r)) throw new Error(`Left ${r.left.code}: ${r.left.message}`);
        expect(r.right).toEqual({ ok: false, reason: 'no-match' });
      }),
      { numRuns: 100 },
    );
  });

  it('hostile values (non-strings, huge strings, throwing objects, lone surrogates) as well', async () => {
    const w = await world({ throttle: { totp: { factor: 0 }, hotp: { factor: 0 }, static: { factor: 0 }, email: { factor: 0 }, sms: { factor: 0 } }, matchThrottle: { factor: 0 } });
    const started = Date.now();
    for (const token of hostile) for (const kind of KINDS) await check(w.h.engine, w.ids[kind], kind, token, 'verify');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

// Sanity: the sequences above do reach the interesting states.
describe('the command generator', () => {
  it('reaches successes, failures, throttling, challenges and delivery failures', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const w = await world();
        for (const cmd of cmds) await run(w, cmd);
        for (const e of w.h.store.all()) {
          seen.add(e.type);
          if (e.type === 'TokenVerified') seen.add(`TokenVerified:${(e.data as { match: { kind: string } }).match.kind}`);
          if (e.type === 'VerificationFailed') seen.add(`VerificationFailed:${(e.data as { reason: string }).reason}`);
        }
      }),
      { numRuns: 40, seed: 42 },
    );
    for (const t of ['TokenVerified:totp', 'TokenVerified:hotp', 'TokenVerified:static', 'TokenVerified:sidechannel', 'VerificationFailed:replay', 'VerificationFailed:malformed', 'VerificationFailed:invalid', 'DeviceRemoved', 'DeviceConfirmed', 'ChallengeRefused', 'StaticTokensIssued', 'VerificationRefused', 'ChallengeGenerated', 'ChallengeDeliveryFailed', 'ThrottleReset', 'MatchFailed'])
      expect(seen).toContain(t);
  });
});
