/**
 * A MAC on every event: HMAC-SHA256 over the event's canonical encoding — stream, version,
 * id, type, data and metadata, the chain link (`prevHash`) included — under a key the Vault
 * derives from the master key and that never enters the event store. The hash chain
 * (chain.ts) shows an edit to any event that has a later one linked after it; the MAC shows
 * an edit to any event at all, the newest of its stream included, and a forged one. What
 * neither shows is an event deleted from the end of a stream: digests (digest.ts) do.
 *
 * The MAC and the id of its key sit in the metadata (`mac`, `macKey`); the MAC covers every
 * other metadata field. Events written before MACs have neither and are reported as unsigned.
 */
import { canonicalJson, type ChainedEvent } from './chain.ts';

/** Signs with one key: `mac` is HMAC-SHA256 (base64url) of the text under the key `keyId` names. */
export interface EventSigner {
  readonly keyId: string;
  mac(text: string): string;
}

type Metadata = Readonly<Record<string, unknown>>;

/** The text an event's MAC is taken over: its canonical encoding without the MAC itself. */
export const macText = (e: ChainedEvent): string => {
  const { mac: _mac, ...metadata } = e.metadata as Metadata;
  return canonicalJson({ data: e.data, eventId: e.eventId, metadata, stream: e.streamName, type: e.type, version: e.version });
};

/** The metadata to store: `metadata` with the key id and the MAC over the event it belongs to. */
export const signedMetadata = <M extends Metadata>(
  signer: EventSigner,
  e: Omit<ChainedEvent, 'metadata'> & { readonly metadata: M },
): M & { readonly mac: string; readonly macKey: string } => {
  const withKey = { ...e.metadata, macKey: signer.keyId };
  return { ...withKey, mac: signer.mac(macText({ ...e, metadata: withKey })) };
};

export type MacCheck =
  | { readonly status: 'valid' }
  /** Written before MACs: neither field. */
  | { readonly status: 'unsigned' }
  /** The MAC is there but the key it names is not known to this vault. */
  | { readonly status: 'unknown-key'; readonly keyId: string }
  /** A field is missing or malformed, or the MAC does not match: edited or forged. */
  | { readonly status: 'invalid'; readonly problem: string };

/** The key ids the events name (to fetch their verifiers before checking). */
export const macKeyIds = (events: readonly ChainedEvent[]): string[] => {
  const ids = new Set<string>();
  for (const e of events) {
    const k = (e.metadata as Metadata | null)?.macKey;
    if (typeof k === 'string') ids.add(k);
  }
  return [...ids];
};

/** Checks one event's MAC with the verifiers of the key ids it may name. */
export const checkMac = (e: ChainedEvent, verifiers: ReadonlyMap<string, EventSigner>): MacCheck => {
  const m = e.metadata as Metadata | null;
  const mac = m?.mac;
  const keyId = m?.macKey;
  if (mac === undefined && keyId === undefined) return { status: 'unsigned' };
  if (typeof mac !== 'string' || typeof keyId !== 'string')
    return { status: 'invalid', problem: 'its MAC or MAC key id is missing or not text' };
  const verifier = verifiers.get(keyId);
  if (verifier === undefined) return { status: 'unknown-key', keyId };
  return constantTimeEqual(verifier.mac(macText(e)), mac)
    ? { status: 'valid' }
    : { status: 'invalid', problem: 'its MAC does not match: the event was edited or forged' };
};

/** Compares two MACs in time that does not depend on where they differ. */
export const constantTimeEqual = (a: string, b: string): boolean => {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
};
