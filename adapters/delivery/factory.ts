/**
 * Builds the TokenSender named by configuration (${variable}):
 *
 *   console                              print codes on stderr, destination masked (the default)
 *   smtp://user:password@host:587        e-mail through SMTP (STARTTLS when offered);
 *   smtps://user:password@host:465       … or TLS from the start. Needs FACTORSTREAM_SMTP_FROM.
 *   webhook+https://host/path            POST each code, HMAC-signed, to an HTTP endpoint
 *   webhook+http://host/path             (e.g. an SMS gateway). Needs FACTORSTREAM_WEBHOOK_SECRET.
 *
 * FACTORSTREAM_SENDER_EMAIL and FACTORSTREAM_SENDER_SMS (same forms) name the sender of one
 * kind of code, in place of FACTORSTREAM_SENDER: e-mail through SMTP and SMS through a
 * gateway's webhook at once.
 *
 * Also read: FACTORSTREAM_SMTP_SUBJECT (optional), FACTORSTREAM_SENDER_TIMEOUT_MS (optional,
 * SMTP and webhook). Explicit `config` fields win over the environment (the CLI passes its
 * options there). A bad value is a SenderConfigError that quotes it with the password and query
 * values masked.
 */
import type { Delivery, TokenSender } from '../../domain/ports.ts';
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
  /** FACTORSTREAM_SENDER_EMAIL: the sender of e-mail codes, in place of `sender`. */
  readonly emailSender?: string;
  /** FACTORSTREAM_SENDER_SMS: the sender of SMS codes, in place of `sender`. */
  readonly smsSender?: string;
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
  const timeoutMs = config.timeoutMs ?? parseTimeout(env.FACTORSTREAM_SENDER_TIMEOUT_MS);
  const general = nonEmpty(config.sender) ?? nonEmpty(env.FACTORSTREAM_SENDER);
  const email = nonEmpty(config.emailSender) ?? nonEmpty(env.FACTORSTREAM_SENDER_EMAIL);
  const sms = nonEmpty(config.smsSender) ?? nonEmpty(env.FACTORSTREAM_SENDER_SMS);
  if (email === undefined && sms === undefined)
    return createOne(general ?? DEFAULT_SENDER, 'FACTORSTREAM_SENDER', config, env, timeoutMs);
  // Each kind goes to its own sender; a kind without one to FACTORSTREAM_SENDER's.
  let fallback: TokenSender | undefined;
  const rest = () => (fallback ??= createOne(general ?? DEFAULT_SENDER, 'FACTORSTREAM_SENDER', config, env, timeoutMs));
  const byKind: Record<Delivery['kind'], TokenSender> = {
    email: email === undefined ? rest() : createOne(email, 'FACTORSTREAM_SENDER_EMAIL', config, env, timeoutMs),
    sms: sms === undefined ? rest() : createOne(sms, 'FACTORSTREAM_SENDER_SMS', config, env, timeoutMs),
  };
  return { send: (delivery) => byKind[delivery.kind].send(delivery) };
};

/** One sender, from one configured value; `variable` names where the value came from. */
const createOne = (value: string, variable: string, config: SenderConfig, env: Environment, timeoutMs: number | undefined): TokenSender => {
  const shown = redactUrl(value);

  if (value.toLowerCase() === 'console') return createConsoleSender(config.write ? { write: config.write } : {});

  if (/^smtps?:/i.test(value)) {
    const url = parseUrl(value, shown, variable);
    if (!/^smtps?:\/\//i.test(value) || url.hostname === '')
      throw new SenderConfigError(`sender "${shown}" (${variable}) names no SMTP host; write it as smtp://user:password@host:587 or smtps://user:password@host:465`);
    const from = nonEmpty(config.smtpFrom) ?? nonEmpty(env.FACTORSTREAM_SMTP_FROM);
    if (!from)
      throw new SenderConfigError(`sender "${shown}" (${variable}) needs a From address: set FACTORSTREAM_SMTP_FROM (e.g. "Example <no-reply@example.com>")`);
    const subject = nonEmpty(config.smtpSubject) ?? nonEmpty(env.FACTORSTREAM_SMTP_SUBJECT);
    return guard(value, shown, variable, () =>
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
      throw new SenderConfigError(`unsupported sender "${shown}" (${variable}): a webhook URL must be webhook+https://… or webhook+http://…`);
    const url = parseUrl(target, shown, variable);
    if (url.hostname === '') throw new SenderConfigError(`sender "${shown}" (${variable}) names no host`);
    const secret = config.webhookSecret ?? env.FACTORSTREAM_WEBHOOK_SECRET;
    if (!secret || secret.trim().length < MIN_WEBHOOK_SECRET_LENGTH)
      throw new SenderConfigError(
        `sender "${shown}" (${variable}) needs FACTORSTREAM_WEBHOOK_SECRET, the HMAC key shared with the receiver, ` +
          `of at least ${MIN_WEBHOOK_SECRET_LENGTH} characters (e.g. the output of \`openssl rand -hex 32\`)` +
          (secret ? '; the one given is too short' : ''),
      );
    return guard(value, shown, variable, () =>
      createWebhookSender({ url, secret, ...(timeoutMs !== undefined ? { timeoutMs } : {}) }),
    );
  }

  throw new SenderConfigError(`unsupported sender "${shown}" (${variable}); accepted forms: ${ACCEPTED_FORMS}`);
};

const parseTimeout = (raw: string | undefined): number | undefined => {
  const value = nonEmpty(raw);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) <= 0)
    throw new SenderConfigError(`FACTORSTREAM_SENDER_TIMEOUT_MS must be a positive whole number of milliseconds, not "${value}"`);
  return Number(value);
};

const parseUrl = (value: string, shown: string, variable: string): URL => {
  try {
    return new URL(value);
  } catch {
    throw new SenderConfigError(`sender "${shown}" (${variable}) is not a valid URL; accepted forms: ${ACCEPTED_FORMS}`);
  }
};

/**
 * Runs an adapter's constructor; its error message is passed on with the password taken out
 * (and the error itself is not attached as a cause, as it may still hold it).
 */
const guard = (value: string, shown: string, variable: string, build: () => TokenSender): TokenSender => {
  try {
    return build();
  } catch (error) {
    let message = error instanceof Error ? error.message : String(error);
    for (const secret of urlPasswords(value)) message = message.split(secret).join('***');
    throw new SenderConfigError(`sender "${shown}" (${variable}) could not be set up: ${message}`);
  }
};
