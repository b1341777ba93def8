/**
 * Shared fixtures for the decider specifications: RFC test keys, a deterministic keyed
 * digest, a sealed secret, and builders for configurations and events.
 */
import { createCipheriv, createHmac } from 'node:crypto';
import type { Algorithm, Kind } from '../../domain/codecs.ts';
import type {
  DeviceConfig,
  DeviceEvent,
  FailureReason,
  HotpConfig,
  SideChannelConfig,
  TokenMatch,
  TotpConfig,
} from '../../domain/events.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import { timeStep } from '../../domain/kinds/totp.ts';
import type { Digester } from '../../domain/ports.ts';

/** 2026-01-01T12:00:00Z: a whole multiple of 30 s, so TOTP steps start exactly here. */
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
export const STEP0 = T0 / 30_000;

export const DEVICE_ID = '0b6e1c1e-2f4a-4c1b-9a51-3f1d2b7c8e90';
export const USER_ID = 'user-42';

/** RFC 4226 / RFC 6238 test keys. */
export const RFC_KEY = Buffer.from('12345678901234567890');
export const RFC_KEY_SHA256 = Buffer.from('12345678901234567890123456789012');
export const RFC_KEY_SHA512 = Buffer.from('1234567890123456789012345678901234567890123456789012345678901234');
export const SHORT_KEY = Buffer.from('1234567890'); // 10 bytes, as old django-otp / otplib made

/** A real AES-256-GCM seal (fixed test key and IV, so the value is deterministic). */
export const sealForTest = (plaintext: Uint8Array): string => {
  const cipher = createCipheriv('aes-256-gcm', Buffer.alloc(32, 7), Buffer.alloc(12, 9));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return `v1.${Buffer.alloc(12, 9).toString('base64url')}.${ct.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
};
export const SEALED = sealForTest(RFC_KEY);

/** Keyed digest of a code: HMAC-SHA256 under a fixed test key, base64url (as the vault does). */
const DIGEST_KEY = Buffer.from('factorstream test digest key');
export const digest: Digester = (code) => createHmac('sha256', DIGEST_KEY).update(code, 'utf8').digest('base64url');

// ---- configurations ---------------------------------------------------------------------------

export const totpConfig = (o: Partial<TotpConfig> = {}): TotpConfig => ({
  kind: 'totp',
  secret: SEALED,
  algorithm: 'SHA1',
  digits: 6,
  step: 30,
  t0: 0,
  tolerance: 1,
  drift: 0,
  lastStep: -1,
  ...o,
});

export const hotpConfig = (o: Partial<HotpConfig> = {}): HotpConfig => ({
  kind: 'hotp',
  secret: SEALED,
  algorithm: 'SHA1',
  digits: 6,
  tolerance: 5,
  counter: 0,
  ...o,
});

export const sideChannelConfig = (kind: 'email' | 'sms'): SideChannelConfig => ({
  kind,
  destination: sealForTest(Buffer.from(kind === 'email' ? 'alice@example.com' : '+14155550100')),
});

export const configFor = (kind: Kind): DeviceConfig => {
  switch (kind) {
    case 'totp':
      return totpConfig();
    case 'hotp':
      return hotpConfig();
    case 'static':
      return { kind: 'static' };
    case 'email':
    case 'sms':
      return sideChannelConfig(kind);
  }
};

// ---- events -----------------------------------------------------------------------------------

export const registered = (
  config: DeviceConfig,
  o: { at?: number; confirmed?: boolean; name?: string; throttle?: { failureCount: number; lastFailureAt: number | null } } = {},
): DeviceEvent => ({
  type: 'DeviceRegistered',
  data: {
    deviceId: DEVICE_ID,
    userId: USER_ID,
    name: o.name ?? 'My phone',
    confirmed: o.confirmed ?? true,
    at: o.at ?? T0,
    config,
    ...(o.throttle ? { throttle: o.throttle } : {}),
  },
});

export const failed = (at: number, reason: FailureReason = 'invalid'): DeviceEvent => ({
  type: 'VerificationFailed',
  data: { reason, at },
});

/** `n` consecutive failures, the last one at `last`, one second apart. */
export const failures = (n: number, last: number): DeviceEvent[] =>
  Array.from({ length: n }, (_, i) => failed(last - (n - 1 - i) * 1000));

export const verified = (match: TokenMatch, at: number): DeviceEvent => ({ type: 'TokenVerified', data: { match, at } });

export const refused = (failureCount: number, lockedUntil: number, at: number): DeviceEvent => ({
  type: 'VerificationRefused',
  data: { reason: 'throttled', failureCount, lockedUntil, at },
});

export const challenge = (code: string, at: number, validUntil = at + 300_000): DeviceEvent => ({
  type: 'ChallengeGenerated',
  data: { codeDigest: digest(code), validUntil, at },
});

export const issued = (codes: readonly string[], at: number): DeviceEvent => ({
  type: 'StaticTokensIssued',
  data: { digests: codes.map(digest), at },
});

// ---- codes ------------------------------------------------------------------------------------

/** The TOTP code for the step at `now` plus `offset`. */
export const totpCode = (
  now: number,
  offset = 0,
  o: { key?: Uint8Array; step?: number; t0?: number; digits?: number; algorithm?: Algorithm } = {},
): string =>
  hotpCode(o.key ?? RFC_KEY, timeStep(now, o.step ?? 30, o.t0 ?? 0) + offset, o.digits ?? 6, o.algorithm ?? 'SHA1');

/** A well-formed code that is none of `avoid`. */
export const otherCode = (avoid: readonly string[], digits = 6): string => {
  for (let d = 0; d <= 9; d++) {
    const c = String(d).repeat(digits);
    if (!avoid.includes(c)) return c;
  }
  throw new Error('unreachable: ten candidates cannot all be avoided by a small set');
};

/** RFC 4226 Appendix D: HOTP values of RFC_KEY for counters 0…9. */
export const RFC4226 = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
