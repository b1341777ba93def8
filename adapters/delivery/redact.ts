/**
 * Keeping codes, addresses, phone numbers and passwords out of what the senders print or
 * report (DESIGN.md, rule 5). A DeliveryResult's reason is recorded in an event, so anything
 * that comes from the outside world (an SMTP reply, an error message) goes through
 * `scrubDeliveryText` before it can become part of one.
 */
import type { Delivery } from '../../domain/ports.ts';

/** `jane@example.com` → `j***@example.com`; anything without a local part and a domain → `***`. */
export const maskEmail = (address: string): string => {
  const value = address.trim();
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return '***';
  return `${value[0]}***${value.slice(at)}`;
};

/** `+44 7700 900123` → `***23`; fewer than 6 digits (too short to be a phone number) → `***`. */
export const maskPhone = (phone: string): string => {
  const digits = phone.replace(/\D/g, '');
  return digits.length < 6 ? '***' : `***${digits.slice(-2)}`;
};

export const maskDestination = (kind: Delivery['kind'], destination: string): string =>
  kind === 'email' ? maskEmail(destination) : maskPhone(destination);

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const EMAIL_LIKE = /[^\s<>()[\]{},;:"'`]+@[^\s<>()[\]{},;:"'`]+/g;
const LONG_NUMBER = /\d{4,}/g;

/**
 * Removes from a text that came from outside (a server reply, an error message) everything that
 * could be the delivery's code or destination: the code and the destination verbatim, the
 * e-mail's local part, any e-mail-like token, and any run of 4 or more digits (codes, phone
 * numbers, whatever their formatting). Control characters become spaces and the result is cut
 * to `maxLength` characters.
 */
export const scrubDeliveryText = (text: string, delivery: Pick<Delivery, 'code' | 'destination'>, maxLength = 160): string => {
  let out = text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  const verbatim = [delivery.code, delivery.destination.trim()];
  const at = delivery.destination.lastIndexOf('@');
  if (at >= 3) verbatim.push(delivery.destination.slice(0, at).trim());
  for (const secret of verbatim.filter((s) => s.length > 0).sort((a, b) => b.length - a.length))
    out = out.replace(new RegExp(escapeRegExp(secret), 'gi'), '[redacted]');
  out = out.replace(EMAIL_LIKE, '[address]').replace(LONG_NUMBER, '[number]');
  out = out.replace(/\s+/g, ' ').trim();
  return out.length > maxLength ? `${out.slice(0, maxLength - 1)}…` : out;
};

/**
 * Splits a URL-ish string (as a user may mistype it: `smtp:user:pw@`, an unencoded `#` or `/`
 * in the password) at its scheme and finds the password as generously as possible: from the
 * first `:` after the scheme to the last `@`. Masking too much is fine; too little is not.
 */
const splitUrl = (value: string) => {
  const scheme = /^[a-z][a-z0-9+.-]*:(\/\/)?/i.exec(value)?.[0] ?? '';
  const rest = value.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  const colon = at === -1 ? -1 : rest.slice(0, at).indexOf(':');
  return { scheme, rest, at, colon };
};

/**
 * A URL fit for an error message: the password becomes `***`, and so does every query value
 * (gateways like to take API keys there). Text is only masked, never added, so a malformed
 * value stays recognisable.
 */
export const redactUrl = (value: string): string => {
  const { scheme, rest, at, colon } = splitUrl(value);
  const shown = colon === -1 ? rest : `${rest.slice(0, colon)}:***${rest.slice(at)}`;
  return scheme + shown.replace(/([?&][^=&#]*)=[^&#]*/g, '$1=***');
};

/** The password of a URL-ish string, as written and percent-decoded (none: empty list). */
export const urlPasswords = (value: string): string[] => {
  const { rest, at, colon } = splitUrl(value);
  if (colon === -1) return [];
  const raw = rest.slice(colon + 1, at);
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    /* keep the raw form */
  }
  return [...new Set([raw, decoded])].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
};
