/**
 * The MAC on an event covers everything stored of it but the MAC: data, type, id, stream,
 * version and every metadata field, the chain link included.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkMac, macKeyIds, signedMetadata, type EventSigner } from '../../domain/event-mac.ts';

const signer = (keyId: string, key: string): EventSigner => ({ keyId, mac: (t) => createHmac('sha256', key).update(t).digest('base64url') });
const k1 = signer('aaaaaaaaaaaaaaaa', 'one');
const k2 = signer('bbbbbbbbbbbbbbbb', 'two');
const verifiers = new Map([[k1.keyId, k1], [k2.keyId, k2]]);

const base = {
  streamName: 'otpdevice-x',
  version: 3,
  eventId: 'e-3',
  type: 'DeviceRenamed',
  data: { name: 'Phone', at: 1 },
  metadata: { actor: 'admin:ops', commandId: 'c', correlationId: 'c', causationId: 'c', eventId: 'e-3', prevHash: 'ab'.repeat(32) },
};
const signed = { ...base, metadata: signedMetadata(k1, base) };

describe('event MACs', () => {
  it('a signed event verifies, naming its key', () => {
    expect(signed.metadata.macKey).toBe(k1.keyId);
    expect(checkMac(signed, verifiers)).toEqual({ status: 'valid' });
    expect(macKeyIds([signed, base])).toEqual([k1.keyId]);
  });

  const edits: [string, typeof signed][] = [
    ['its data', { ...signed, data: { name: 'Attacker', at: 1 } }],
    ['its type', { ...signed, type: 'DeviceRemoved' }],
    ['its version', { ...signed, version: 2 }],
    ['its stream', { ...signed, streamName: 'otpdevice-y' }],
    ['its id', { ...signed, eventId: 'e-4' }],
    ['its actor', { ...signed, metadata: { ...signed.metadata, actor: 'admin:someone-else' } }],
    ['its chain link', { ...signed, metadata: { ...signed.metadata, prevHash: 'cd'.repeat(32) } }],
    ['its key id (to another known key)', { ...signed, metadata: { ...signed.metadata, macKey: k2.keyId } }],
  ];
  for (const [what, edited] of edits)
    it(`an edit to ${what} is caught`, () => {
      expect(checkMac(edited, verifiers)).toMatchObject({ status: 'invalid' });
    });

  it('an event with neither field is unsigned; one with half of them is invalid; an unknown key is named', () => {
    expect(checkMac(base, verifiers)).toEqual({ status: 'unsigned' });
    const { mac: _m, ...noMac } = signed.metadata;
    expect(checkMac({ ...signed, metadata: noMac }, verifiers)).toMatchObject({ status: 'invalid' });
    expect(checkMac({ ...signed, metadata: { ...signed.metadata, macKey: 'cccccccccccccccc' } }, verifiers)).toEqual({
      status: 'unknown-key',
      keyId: 'cccccccccccccccc',
    });
  });

  it('a forged event, signed under another key with a known key id, is caught', () => {
    const forged = { ...base, metadata: { ...signedMetadata(signer(k1.keyId, 'guess'), base) } };
    expect(checkMac(forged, verifiers)).toMatchObject({ status: 'invalid' });
  });
});
