/**
 * Builds the TokenSender named by configuration (FACTORSTREAM_SENDER):
 *
 *   console                              print codes on stderr, destination masked (the default)
 *   smtp://user:password@host:587        e-mail through SMTP (STARTTLS when offered);
 *   smtps://user:password@host:465       … or TLS from the start. Needs FACTORSTREAM_SMTP_FROM.
 *   webhook+https://host/path            POST each code, HMAC-signed, to an HTTP endpoint
 *   webhook+http://host/path             (e.g. an SMS gateway). Needs FACTORSTREAM_WEBHOOK_SECRET.
 *
 * Also read: FACTORSTREAM_SMTP_SUBJECT (optional), FACTORSTREAM_SENDER_TIMEOUT_MS (optional,
 * SMTP and webhook). Explicit `config` fields win over the environment (the CLI passes its
 * options there). A bad value is a SenderConfigError that quotes it with the password and query
 * values masked.
 */
import type { TokenSender } from '../../domain/ports.ts';
import { createConsoleSender } from './console.ts';
import { redactUrl, urlPasswords } from './redact.ts';
import { createSmtpSender } from './smtp.ts';
import { createWebhookSender } from './webhook.ts';

export const DEFAULT_SENDER = 'console';
export const MIN_WEBHOOK_SECRET_LENGTH = 16;

const ACCEPTED_FORMS =
  'console, smtp://user:password@host:587, smtps://user:password@host:465, ' +
  'webhook+https://host/path (or webhook+http://…)';

export class SenderConfigError extends Error {
  override readonly name = 'SenderConfigError';
}

export interface SenderConfig {
  /** FACTORSTREAM_SENDER */
  readonly sender?: string;
  /** FACTORSTREAM_SMTP_FROM: the From address of code e-mails. */
  readonly smtpFrom?: string;
  /** FACTORSTREAM_SMTP_SUBJECT: default "Your verification code". */
  readonly smtpSubject?: string;
  /** FACTORSTREAM_WEBHOOK_SECRET: the HMAC-SHA256 key shared with the webhook's receiver. */
  readonly webhookSecret?: string;
  /** FACTORSTREAM_SENDER_TIMEOUT_MS: per-delivery deadline of the SMTP and webhook senders. */
  readonly timeoutMs?: number;
  /** Where the console sender writes (default: stderr). */
  readonly write?: (line: string) => void;
}

export type Environment = Readonly<Record<string, string | undefined>>;

const nonEmpty = (value: string | undefined): string | undefined => {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
};

export const createSender = (config: SenderConfig = {}, env: Environment = process.env): TokenSender => {
  const value = nonEmpty(config.sender) ?? nonEmpty(env.FACTORSTREAM_SENDER) ?? DEFAULT_SENDER;
  const shown = redactUrl(value);
  const timeoutMs = config.timeoutMs ?? parseTimeout(env.FACTORSTREAM_SENDER_TIMEOUT_MS);

  if (value.toLowerCase() === 'console') return createConsoleSender(config.write ? { write: config.write } : {});

  if (/^smtps?:/i.test(value)) {
    const url = parseUrl(value, shown);
    if (!/^smtps?:\/\//i.test(value) || url.hostname === '')
      throw new SenderConfigError(`sender "${shown}" (FACTORSTREAM_SENDER) names no SMTP host; write it as smtp://user:password@host:587 or smtps://user:password@host:465`);
    const from = nonEmpty(config.smtpFrom) ?? nonEmpty(env.FACTORSTREAM_SMTP_FROM);
    if (!from)
      throw new SenderConfigError(`sender "${shown}" needs a From address: set FACTORSTREAM_SMTP_FROM (e.g. "Example <no-reply@example.com>")`);
    const subject = nonEmpty(config.smtpSubject) ?? nonEmpty(env.FACTORSTREAM_SMTP_SUBJECT);
    return guard(value, shown, () =>
      createSmtpSender({
        url: value,
        from,
        ...(subject ? { subject } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      }),
    );
  }

  if (/^webhook\+/i.test(value)) {
    const target = value.slice('webhook+'.length);
    if (!/^https?:\/\//i.test(target))
      throw new SenderConfigError(`unsupported sender "${shown}" (FACTORSTREAM_SENDER): a webhook URL must be webhook+https://… or webhook+http://…`);
    const url = parseUrl(target, shown);
    if (url.hostname === '') throw new SenderConfigError(`sender "${shown}" (FACTORSTREAM_SENDER) names no host`);
    const secret = config.webhookSecret ?? env.FACTORSTREAM_WEBHOOK_SECRET;
    if (!secret || secret.trim().length < MIN_WEBHOOK_SECRET_LENGTH)
      throw new SenderConfigError(
        `sender "${shown}" needs FACTORSTREAM_WEBHOOK_SECRET, the HMAC key shared with the receiver, ` +
          `of at least ${MIN_WEBHOOK_SECRET_LENGTH} characters (e.g. the output of \`openssl rand -hex 32\`)` +
          (secret ? '; the one given is too short' : ''),
      );
    return guard(value, shown, () =>
      createWebhookSender({ url, secret, ...(timeoutMs !== undefined ? { timeoutMs } : {}) }),
    );
  }

  throw new SenderConfigError(`unsupported sender "${shown}" (FACTORSTREAM_SENDER); accepted forms: ${ACCEPTED_FORMS}`);
};

const parseTimeout = (raw: string | undefined): number | undefined => {
  const value = nonEmpty(raw);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) <= 0)
    throw new SenderConfigError(`FACTORSTREAM_SENDER_TIMEOUT_MS must be a positive whole number of milliseconds, not "${value}"`);
  return Number(value);
};

const parseUrl = (value: string, shown: string): URL => {
  try {
    return new URL(value);
  } catch {
    throw new SenderConfigError(`sender "${shown}" (FACTORSTREAM_SENDER) is not a valid URL; accepted forms: ${ACCEPTED_FORMS}`);
  }
};

/**
 * Runs an adapter's constructor; its error message is passed on with the password taken out
 * (and the error itself is not attached as a cause, as it may still hold it).
 */
const guard = (value: string, shown: string, build: () => TokenSender): TokenSender => {
  try {
    return build();
  } catch (error) {
    let message = error instanceof Error ? error.message : String(error);
    for (const secret of urlPasswords(value)) message = message.split(secret).join('***');
    throw new SenderConfigError(`sender "${shown}" (FACTORSTREAM_SENDER) could not be set up: ${message}`);
  }
};
