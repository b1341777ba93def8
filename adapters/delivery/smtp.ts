/**
 * Delivers e-mail codes through an SMTP server, with nodemailer.
 *
 * One connection per message (no pool), so an idle sender holds no socket and a CLI process
 * can exit. Every failure is a DeliveryResult whose reason names the SMTP reply code, enhanced
 * status and class (permanent or temporary) or the connection problem; the server's own words
 * are passed on only after scrubbing (see redact.ts), and never the address or the code.
 */
import nodemailer from 'nodemailer';
import type { NodemailerError, SendMailOptions, SMTPTransportOptions } from 'nodemailer';
import type { Delivery, DeliveryResult, TokenSender } from '../../domain/ports.ts';
import { redactUrl, scrubDeliveryText } from './redact.ts';

export const DEFAULT_SMTP_SUBJECT = 'Your verification code';
export const DEFAULT_SMTP_TIMEOUT_MS = 15_000;

export interface SmtpAuth {
  readonly user: string;
  readonly pass: string;
}

/** Where the SMTP server is: a URL (`smtp://user:password@host:587`, `smtps://…:465`) … */
export interface SmtpUrlConnection {
  readonly url: string;
}

/** … or its parts. */
export interface SmtpHostConnection {
  readonly host: string;
  /** 587 by default, 465 when `secure`. */
  readonly port?: number;
  /** TLS from the first byte (port 465). Otherwise STARTTLS is used when the server offers it. */
  readonly secure?: boolean;
  readonly auth?: SmtpAuth;
  /** Never upgrade with STARTTLS (local test servers). */
  readonly ignoreTLS?: boolean;
  /** Fail unless the connection can be upgraded with STARTTLS. */
  readonly requireTLS?: boolean;
  /** Passed to node's tls (e.g. `{ rejectUnauthorized: false }` for a self-signed test server). */
  readonly tls?: SMTPTransportOptions['tls'];
}

export interface SmtpMessageOptions {
  /** The From address, e.g. `"Example" <no-reply@example.com>`. */
  readonly from: string;
  /** The subject; it never contains the code. Default: "Your verification code". */
  readonly subject?: string;
  /** The plain-text body. Default: see `defaultSmtpText`. */
  readonly textTemplate?: (code: string, validUntil: number) => string;
  /** An optional HTML body next to the text one. */
  readonly htmlTemplate?: (code: string, validUntil: number) => string;
  /**
   * When set, the code is also sent in an `OTP-Token` header bound to this origin
   * (draft-goto-otp-token), so that mail clients can offer to fill it in on that site.
   */
  readonly otpOrigin?: string;
  /** Deadline for one delivery, connecting included (ms). Default 15 000. */
  readonly timeoutMs?: number;
}

export type SmtpSenderOptions = SmtpMessageOptions & (SmtpUrlConnection | SmtpHostConnection);

export const defaultSmtpText = (code: string, validUntil: number): string =>
  `Your verification code is: ${code}\n\n` +
  `It is valid until ${new Date(validUntil).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}.\n` +
  'If you did not ask for a code, you can ignore this message.\n';

/**
 * One address, nothing else: no list, no display name, no header folding. The destination is
 * user input, and nodemailer would otherwise happily split "a@x.com, b@y.com" into two recipients.
 */
const SINGLE_ADDRESS = /^[^\s@<>()[\]{},;:"\\]+@[^\s@<>()[\]{},;:"\\]+\.[^\s@<>()[\]{},;:"\\]+$/;

export const createSmtpSender = (options: SmtpSenderOptions): TokenSender => {
  const from = options.from?.trim();
  if (!from) throw new TypeError('the SMTP sender needs a From address (option `from`, env FACTORSTREAM_SMTP_FROM)');
  const timeoutMs = options.timeoutMs ?? DEFAULT_SMTP_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new TypeError(`the SMTP sender's timeoutMs must be a positive number of milliseconds, not ${String(options.timeoutMs)}`);
  const subject = options.subject ?? DEFAULT_SMTP_SUBJECT;
  const textTemplate = options.textTemplate ?? defaultSmtpText;

  const timeouts = {
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    socketCloseTimeout: Math.min(timeoutMs, 1_000),
  };
  let transportOptions: SMTPTransportOptions;
  if ('url' in options) {
    if (!/^smtps?:\/\/[^/]/i.test(options.url))
      throw new TypeError(`the SMTP sender's url must look like smtp://user:password@host:587 or smtps://…, not "${redactUrl(options.url)}"`);
    transportOptions = { url: options.url, ...timeouts };
  } else {
    if (!options.host) throw new TypeError('the SMTP sender needs a host (or a url)');
    transportOptions = {
      host: options.host,
      ...(options.port !== undefined ? { port: options.port } : {}),
      secure: options.secure ?? false,
      ...(options.auth ? { auth: { user: options.auth.user, pass: options.auth.pass } } : {}),
      ...(options.ignoreTLS !== undefined ? { ignoreTLS: options.ignoreTLS } : {}),
      ...(options.requireTLS !== undefined ? { requireTLS: options.requireTLS } : {}),
      ...(options.tls !== undefined ? { tls: options.tls } : {}),
      ...timeouts,
    };
  }
  const transporter = nodemailer.createTransport(transportOptions);

  return {
    send: async (delivery: Delivery): Promise<DeliveryResult> => {
      if (delivery.kind !== 'email') return { ok: false, reason: 'the SMTP sender delivers e-mail only' };
      const to = delivery.destination.trim();
      if (!SINGLE_ADDRESS.test(to)) return { ok: false, reason: 'the destination is not a single valid e-mail address' };

      let message: SendMailOptions;
      try {
        message = {
          from,
          to,
          subject,
          text: textTemplate(delivery.code, delivery.validUntil),
          ...(options.htmlTemplate ? { html: options.htmlTemplate(delivery.code, delivery.validUntil) } : {}),
          ...(options.otpOrigin ? { otp: { code: delivery.code, origin: options.otpOrigin } } : {}),
          signal: AbortSignal.timeout(timeoutMs),
        };
      } catch {
        // A template's error could quote the code: say only which part failed.
        return { ok: false, reason: 'the e-mail template failed' };
      }

      try {
        const info = await transporter.sendMail(message);
        if (info.rejected.length > 0 || info.accepted.length === 0)
          return { ok: false, reason: 'the SMTP server did not accept the recipient' };
        return { ok: true };
      } catch (error) {
        return { ok: false, reason: smtpFailureReason(error, delivery, timeoutMs) };
      }
    },
  };
};

const ENHANCED_STATUS = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/;

/**
 * A reason made of what nodemailer tells apart (its error code, the SMTP reply code, the
 * enhanced status code, the reply class), followed by the server's text, scrubbed.
 */
export const smtpFailureReason = (error: unknown, delivery: Delivery, timeoutMs: number): string => {
  const err = (typeof error === 'object' && error !== null ? error : {}) as NodemailerError & { name?: string };
  const code = typeof err.code === 'string' ? err.code : undefined;

  if (code === 'EABORT' || err.name === 'AbortError' || err.name === 'TimeoutError')
    return `the SMTP delivery did not finish within ${timeoutMs} ms`;
  if (code === 'ETIMEDOUT') {
    const what =
      err.timeoutType === 'CONNECT_TIMEOUT' ? 'could not connect'
      : err.timeoutType === 'GREETING_TIMEOUT' ? 'sent no greeting'
      : 'did not answer';
    return `the SMTP server ${what} within ${timeoutMs} ms (ETIMEDOUT${err.timeoutType ? `, ${err.timeoutType}` : ''})`;
  }

  if (typeof err.responseCode === 'number') {
    const reply = typeof err.response === 'string' ? err.response : '';
    const enhanced = ENHANCED_STATUS.exec(reply)?.[1];
    const permanent = err.permanent ?? (err.responseCode >= 500 && err.responseCode !== 503);
    const step =
      code === 'EENVELOPE' ? (/^MAIL\b/i.test(err.command ?? '') ? 'refused the sender' : 'refused the recipient')
      : code === 'EAUTH' ? 'refused the credentials'
      : code === 'EMESSAGE' ? 'refused the message'
      : 'answered with an error';
    const text = scrubDeliveryText(reply.replace(/^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3}\s*)?/, ''), delivery);
    return (
      `the SMTP server ${step}: ${err.responseCode}${enhanced ? ` ${enhanced}` : ''} ` +
      `(${permanent ? 'permanent' : 'temporary'} failure${code ? `, ${code}` : ''})${text ? `: ${text}` : ''}`
    );
  }

  const cause = typeof err.originalCode === 'string' ? err.originalCode : undefined;
  switch (code) {
    case 'ECONNECTION':
    case 'ESOCKET':
      return `could not talk to the SMTP server (${[code, cause].filter(Boolean).join(', ')})`;
    case 'EDNS':
      return `could not resolve the SMTP server's host name (EDNS${cause ? `, ${cause}` : ''})`;
    case 'ETLS':
    case 'EREQUIRETLS':
      return `the TLS connection to the SMTP server failed (${code})`;
    case 'ENOAUTH':
    case 'EAUTH':
      return `SMTP authentication failed (${code})`;
    case 'EOTP':
      return 'the OTP-Token header could not be built (EOTP): check otpOrigin';
    case undefined:
      return 'the SMTP delivery failed';
    default:
      return `the SMTP delivery failed (${scrubDeliveryText(code, delivery, 40)})`;
  }
};
