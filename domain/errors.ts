/**
 * Errors are values. A DomainError is a command the domain cannot take (malformed, unknown
 * device, wrong kind); business outcomes such as a wrong code are events, not errors.
 * Messages name the problem and the value when it is safe to show; never a secret or code.
 */
export type DomainErrorCode =
  | 'invalid-command'
  | 'device-not-found'
  | 'device-removed'
  | 'device-exists'
  | 'wrong-kind'
  | 'no-challenge';

export interface DomainError {
  readonly code: DomainErrorCode;
  readonly message: string;
}

export const domainError = (code: DomainErrorCode, message: string): DomainError => ({ code, message });
