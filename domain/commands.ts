/**
 * Commands the device and user deciders take. They are built by the engine from validated
 * input (see inputs.ts for the io-ts codecs of what comes from outside).
 */
import type { Kind } from './codecs.ts';
import type { DeviceConfig } from './events.ts';

export type DeviceCommand =
  | {
      readonly type: 'RegisterDevice';
      readonly deviceId: string;
      readonly userId: string;
      readonly name: string;
      readonly confirmed: boolean;
      readonly config: DeviceConfig;
      readonly origin?: { readonly system: string; readonly reference: string };
      readonly throttle?: { readonly failureCount: number; readonly lastFailureAt: number | null };
      /** E-mail/SMS devices brought over by an import: the code pending there, as a keyed digest. */
      readonly pendingCode?: { readonly codeDigest: string; readonly validUntil: number };
    }
  | { readonly type: 'ConfirmDevice'; readonly token: unknown }
  | { readonly type: 'VerifyToken'; readonly token: unknown }
  | { readonly type: 'GenerateChallenge' }
  | { readonly type: 'RecordDeliveryFailure'; readonly reason: string }
  | { readonly type: 'IssueStaticTokens' }
  | { readonly type: 'ResetThrottle'; readonly reason: string }
  | { readonly type: 'RenameDevice'; readonly name: string }
  | { readonly type: 'RemoveDevice'; readonly reason?: string };

export type UserCommand =
  | { readonly type: 'AttachDevice'; readonly deviceId: string; readonly kind: Kind }
  | { readonly type: 'CheckMatchAllowed' }
  | { readonly type: 'RecordMatchFailure'; readonly devicesTried: number }
  | { readonly type: 'RecordMatchSuccess'; readonly deviceId: string }
  | { readonly type: 'ResetUserThrottle'; readonly reason: string };
