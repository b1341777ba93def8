/**
 * The demo's default sender: prints the code on stderr, with the destination masked, instead
 * of delivering it. Meant for development and trying factorstream out; a real deployment
 * configures SMTP or a webhook (see factory.ts).
 */
import type { Delivery, DeliveryResult, TokenSender } from '../../domain/ports.ts';
import { maskDestination } from './redact.ts';

export interface ConsoleSenderOptions {
  /** Where the line goes; by default to stderr, with a newline. */
  readonly write?: (line: string) => void;
}

const KIND_LABEL: Record<Delivery['kind'], string> = { email: 'e-mail', sms: 'SMS' };

export const formatConsoleLine = (delivery: Delivery): string =>
  `[factorstream] code for ${KIND_LABEL[delivery.kind]} device ${delivery.deviceId} ` +
  `(to ${maskDestination(delivery.kind, delivery.destination)}): ${delivery.code}, ` +
  `valid until ${new Date(delivery.validUntil).toISOString()}`;

export const createConsoleSender = (options: ConsoleSenderOptions = {}): TokenSender => {
  const write = options.write ?? ((line: string) => void process.stderr.write(`${line}\n`));
  return {
    send: async (delivery: Delivery): Promise<DeliveryResult> => {
      try {
        write(formatConsoleLine(delivery));
        return { ok: true };
      } catch {
        // The error could quote the line, and the line holds the code: report only that it failed.
        return { ok: false, reason: 'the console sender could not write the code' };
      }
    },
  };
};
