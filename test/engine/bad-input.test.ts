/**
 * Bad input gets a typed Left naming the field (or a 'malformed' failure for tokens), never an
 * exception, never the secret in a message.
 */
import type { TaskEither } from 'fp-ts/lib/TaskEither.js';
import { describe, expect, it } from 'vitest';
import type { EngineError } from '../../app/engine.ts';
import type { RegisterInput } from '../../domain/inputs.ts';
import { toBase32 } from '../../domain/kinds/uri.ts';
import { ko, ok, setup, totpAt } from './harness.ts';

const SECRET9 = Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89]);
const SECRET20 = Uint8Array.from({ length: 20 }, (_, i) => 0xa0 + i);

const secretForms = (key: Uint8Array) => [Buffer.from(key).toString('hex'), toBase32(key), Buffer.from(key).toString('base64').replace(/=+$/, '')];

/** Never throws: the TaskEither resolves (to the expected side, checked by ok/ko), whatever the input. */
const settle = async <A>(f: () => Promise<A>): Promise<A> => {
  try {
    return await f();
  } catch (e) {
    throw new Error(`the call did not settle as expected: ${e instanceof Error ? e.message : String(e)}`);
  }
};

describe('register with bad input', () => {
  const cases: [string, unknown, string][] = [
    ['digits 7', { kind: 'totp', userId: 'alice', digits: 7 }, 'digits'],
    ['step 0', { kind: 'totp', userId: 'alice', step: 0 }, 'step'],
    ['negative t0', { kind: 'totp', userId: 'alice', t0: -1 }, 't0'],
    ['algorithm MD5', { kind: 'totp', userId: 'alice', algorithm: 'MD5' }, 'algorithm'],
    ['hotp algorithm MD5', { kind: 'hotp', userId: 'alice', algorithm: 'MD5' }, 'algorithm'],
    ['a name of 65 characters', { kind: 'totp', userId: 'alice', name: 'n'.repeat(65) }, 'name'],
    ['a name with a control character', { kind: 'static', userId: 'alice', name: 'a\nb' }, 'name'],
    ['an empty userId', { kind: 'totp', userId: '' }, 'userId'],
    ['a userId of 129 characters', { kind: 'static', userId: 'u'.repeat(129) }, 'userId'],
    ['no userId', { kind: 'totp' }, 'userId'],
    ['a secret of 9 bytes', { kind: 'totp', userId: 'alice', secret: SECRET9 }, 'secret'],
    ['an HOTP secret of 9 bytes', { kind: 'hotp', userId: 'alice', secret: SECRET9 }, 'secret'],
    ['a secret of 129 bytes', { kind: 'totp', userId: 'alice', secret: new Uint8Array(129).fill(0x5a) }, 'secret'],
    ['a secret given as a base32 string', { kind: 'totp', userId: 'alice', secret: toBase32(SECRET20) }, 'secret'],
    ['an unknown kind', { kind: 'yubikey', userId: 'alice' }, 'kind'],
    ['no kind', { userId: 'alice' }, 'kind'],
    ['a bad e-mail address', { kind: 'email', userId: 'alice', destination: 'alice at example.com' }, 'destination'],
    ['an e-mail device without address', { kind: 'email', userId: 'alice' }, 'destination'],
    ['a bad phone number', { kind: 'sms', userId: 'alice', destination: '555-0100' }, 'destination'],
    ['a phone number with letters', { kind: 'sms', userId: 'alice', destination: '+1 415 CALL NOW' }, 'destination'],
    ['a negative HOTP counter', { kind: 'hotp', userId: 'alice', counter: -1 }, 'counter'],
    ['a TOTP tolerance of 11', { kind: 'totp', userId: 'alice', tolerance: 11 }, 'tolerance'],
    ['a fractional step', { kind: 'totp', userId: 'alice', step: 30.5 }, 'step'],
  ];

  for (const [what, input, field] of cases) {
    it(what, async () => {
      const h = setup();
      const e = await settle(() => ko(h.engine.register(input as RegisterInput)));
      expect(e.code).toBe('invalid-command');
      expect(e.message).toContain(field);
      for (const s of [...secretForms(SECRET9), ...secretForms(SECRET20)]) expect(e.message).not.toContain(s);
      expect(e.message).not.toContain('alice at example.com');
      expect(e.message).not.toContain('555-0100');
      expect(h.store.all()).toEqual([]); // nothing was written
    });
  }

  it('non-object input', async () => {
    const h = setup();
    for (const input of [null, undefined, 42, 'totp', [], () => 1]) {
      const e = await settle(() => ko(h.engine.register(input as unknown as RegisterInput)));
      expect(e).toMatchObject({ code: 'invalid-command', message: expect.stringContaining('kind') });
    }
  });

  it('bad options', async () => {
    const h = setup();
    for (const [options, field] of [
      [{ commandId: '' }, 'commandId'],
      [{ commandId: 'c'.repeat(129) }, 'commandId'],
      [{ actor: 'a\u0000b' }, 'actor'],
      [{ now: 1.5 }, 'now'],
      [{ client: { ip: 42 } }, 'ip'],
    ] as const) {
      const e = await ko(h.engine.register({ kind: 'static', userId: 'alice' }, options as never));
      expect(e.code).toBe('invalid-command');
      expect(e.message).toContain(field);
    }
    expect(h.store.all()).toEqual([]);
  });
});

describe('commands on unknown, malformed and removed device ids', () => {
  it('an unknown device id is device-not-found, for every command', async () => {
    const h = setup();
    const id = '00000000-0000-4000-8000-000000000000';
    const calls: TaskEither<EngineError, unknown>[] = [
      h.engine.verify(id, '123456'),
      h.engine.confirm(id, '123456'),
      h.engine.challenge(id),
      h.engine.issueBackupCodes({ device: id }),
      h.engine.resetThrottle(id, 'why'),
      h.engine.rename(id, 'x'),
      h.engine.remove(id),
      h.engine.device(id),
      h.engine.deviceAt(id, Date.UTC(2030, 0, 1)),
    ];
    for (const te of calls)
      expect(await settle(() => ko(te))).toMatchObject({ code: 'device-not-found', message: expect.stringContaining(id) });
    expect(await ok(h.engine.history(id))).toEqual([]);
    expect(h.store.all()).toEqual([]);
  });

  it('a malformed id is invalid-command naming the device id', async () => {
    const h = setup();
    for (const id of ['', 'not-a-uuid', '00000000-0000-4000-8000-00000000000G', '00000000-0000-4000-8000-000000000000x', 'TOTP/00000000-0000-4000-8000-000000000000', 'yubikey/00000000-0000-4000-8000-000000000000', 'x'.repeat(10_000), 42, null]) {
      const calls: TaskEither<EngineError, unknown>[] = [h.engine.verify(id as string, '123456'), h.engine.device(id as string), h.engine.rename(id as string, 'x')];
      for (const te of calls) {
        const e = await settle(() => ko(te));
        expect(e.code).toBe('invalid-command');
        expect(e.message).toMatch(/device id|persistent id/);
        expect(e.message.length).toBeLessThan(400);
      }
    }
  });

  it('a persistent id of the right kind works like the device id', async () => {
    const h = setup();
    const r = await ok(h.engine.register({ kind: 'totp', userId: 'alice', secret: SECRET20 }));
    expect((await ok(h.engine.device(r.persistentId))).deviceId).toBe(r.deviceId);
    expect(await ok(h.engine.verify(r.persistentId, totpAt(SECRET20, h.now())))).toMatchObject({ ok: true, deviceId: r.deviceId });
  });

  // django-otp's device_from_persistent_id finds nothing for a label of the wrong model.
  it('a persistent id naming the wrong kind does not address the device', async () => {
    const h = setup();
    const r = await ok(h.engine.register({ kind: 'totp', userId: 'alice', secret: SECRET20 }));
    expect(await ko(h.engine.device(`hotp/${r.deviceId}`))).toMatchObject({ code: 'device-not-found' });
    expect(await ko(h.engine.verify(`static/${r.deviceId}`, totpAt(SECRET20, h.now())))).toMatchObject({ code: 'device-not-found' });
  });

  it('a removed device is device-removed', async () => {
    const h = setup();
    const { deviceId } = await ok(h.engine.register({ kind: 'totp', userId: 'alice', secret: SECRET20 }));
    await ok(h.engine.remove(deviceId));
    const e = await ko(h.engine.verify(deviceId, totpAt(SECRET20, h.now())));
    expect(e).toMatchObject({ code: 'device-removed', message: expect.stringContaining(deviceId) });
    for (const s of secretForms(SECRET20)) expect(e.message).not.toContain(s);
  });
});

describe('bad tokens are a malformed failure', () => {
  const tokens: [string, unknown][] = [
    ['empty', ''],
    ['only whitespace', '  \t\n '],
    ['too short', '12345'],
    ['too long', '1234567'],
    ['far too long', '1'.repeat(100_000)],
    ['letters', 'abcdef'],
    ['mixed', '12ab56'],
    ['a sign', '-12345'],
    ['a decimal point', '12345.'],
    ['Arabic-Indic digits', '١٢٣٤٥٦'],
    ['full-width digits', '１２３４５６'],
    ['Devanagari digits', '१२३४५६'],
    ['a number, not a string', 123456],
    ['null', null],
    ['undefined', undefined],
    ['an object', { token: '123456' }],
  ];

  for (const [what, token] of tokens) {
    it(what, async () => {
      const h = setup();
      const { deviceId } = await ok(h.engine.register({ kind: 'totp', userId: 'alice', secret: SECRET20 }));
      const o = await settle(() => ok(h.engine.verify(deviceId, token as string)));
      expect(o).toEqual({ ok: false, deviceId, reason: 'malformed' });
      const events = h.store.all();
      expect(events.at(-1)).toMatchObject({ type: 'VerificationFailed', data: { reason: 'malformed' } });
      // The token is not stored.
      if (typeof token === 'string' && token.trim() !== '') expect(JSON.stringify(events)).not.toContain(token.slice(0, 50));
    });
  }

  it('whitespace anywhere is ignored in a valid code', async () => {
    const h = setup();
    const { deviceId } = await ok(h.engine.register({ kind: 'totp', userId: 'alice', secret: SECRET20 }));
    const forms = [(c: string) => ` ${c} `, (c: string) => `${c.slice(0, 3)} ${c.slice(3)}`, (c: string) => `\t${c.split('').join(' ')}\n`, (c: string) => `${c.slice(0, 3)}\u00a0${c.slice(3)}`];
    for (const form of forms) {
      h.advance(30_000);
      expect(await ok(h.engine.verify(deviceId, form(totpAt(SECRET20, h.now()))))).toMatchObject({ ok: true });
    }
  });

  it('backup codes: wrong alphabet or length is malformed; another well-formed code is invalid', async () => {
    const h = setup({ policy: { throttle: { static: { factor: 0 } } } });
    const { deviceId } = await ok(h.engine.issueBackupCodes({ userId: 'bob' }));
    for (const token of ['', 'abc', 'a'.repeat(17), 'abcd-efgh', 'äbcdefgh', '😀😀😀😀'])
      expect(await ok(h.engine.verify(deviceId, token))).toEqual({ ok: false, deviceId, reason: 'malformed' });
    expect(await ok(h.engine.verify(deviceId, 'zzzzzzzz'))).toEqual({ ok: false, deviceId, reason: 'invalid' });
  });
});

describe('client context', () => {
  it('is bounded and free of control characters, with a message that names the field', async () => {
    const { createMemoryEventStore } = await import('../../adapters/store/memory.ts');
    const { createMemoryVault } = await import('../../adapters/vault/memory.ts');
    const { createEngine } = await import('../../app/engine.ts');
    const { randomBytes } = await import('node:crypto');
    const engine = createEngine({ store: createMemoryEventStore(), vault: createMemoryVault(), clock: { now: () => 1e12 }, random: { bytes: (n) => randomBytes(n) } });
    const bad = [
      [{ ip: '1.2.3.4\n' }, 'client.ip'],
      [{ userAgent: 'x'.repeat(513) }, 'client.userAgent'],
      [{ userAgent: 'evil\u0000agent' }, 'client.userAgent'],
    ] as const;
    for (const [client, field] of bad) {
      const r = await engine.register({ kind: 'static', userId: 'u' }, { client })();
      expect(r._tag).toBe('Left');
      if (r._tag === 'Left') expect(r.left).toMatchObject({ code: 'invalid-command', message: expect.stringContaining(field) });
    }
    const okr = await engine.register({ kind: 'static', userId: 'u' }, { client: { ip: '2001:db8::1', userAgent: 'Mozilla/5.0 (X11)' } })();
    expect(okr._tag).toBe('Right');
  });
});
