import { describe, expect, it } from 'vitest';
import { maskDestination, redactUrl, scrubDeliveryText, urlPasswords } from '../../../adapters/delivery/redact.ts';

describe('redaction helpers', () => {
  it('masks destinations', () => {
    expect(maskDestination('email', 'Jane.Doe@Example.com')).toBe('J***@Example.com');
    expect(maskDestination('sms', '+1 (555) 010-0199')).toBe('***99');
  });

  it('masks the password and query values of URLs, however they are written', () => {
    expect(redactUrl('smtp://user:hunter22@smtp.example.com:587')).toBe('smtp://user:***@smtp.example.com:587');
    expect(redactUrl('smtps://user:hun%40ter@smtp.example.com')).toBe('smtps://user:***@smtp.example.com');
    expect(redactUrl('smtp://user:hu/nt#er?22@smtp.example.com')).toBe('smtp://user:***@smtp.example.com');
    expect(redactUrl('smtp:user:hunter22@')).toBe('smtp:user:***@');
    expect(redactUrl('webhook+https://gw.example.com/send?api_key=hunter22&x=1')).toBe('webhook+https://gw.example.com/send?api_key=***&x=***');
    expect(redactUrl('console')).toBe('console');
    expect(urlPasswords('smtp://user:hun%40ter@host')).toEqual(['hun%40ter', 'hun@ter']);
    expect(urlPasswords('smtp://host')).toEqual([]);
  });

  it('scrubs codes, addresses and numbers from foreign text', () => {
    const d = { code: '482913', destination: 'Jane.Doe@example.com' };
    const text = scrubDeliveryText('<jane.doe@EXAMPLE.com>: user jane.doe unknown, other <x@y.z>, code 482913, ref 5.1.1, id 99887766', d);
    expect(text).toBe('<[redacted]>: user [redacted] unknown, other <[address]>, code [redacted], ref 5.1.1, id [number]');
    expect(scrubDeliveryText('call +44 7700 900123\r\nnow', { code: '000000', destination: '+447700900123' })).toBe('call +44 [number] [number] now');
    expect(scrubDeliveryText('x'.repeat(500), d)).toHaveLength(160);
  });
});
