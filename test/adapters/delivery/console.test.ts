import { describe, expect, it } from 'vitest';
import { createConsoleSender } from '../../../adapters/delivery/console.ts';
import { maskEmail, maskPhone } from '../../../adapters/delivery/redact.ts';

const validUntil = Date.UTC(2026, 0, 2, 3, 4, 5);

describe('console sender', () => {
  it('writes the code and the masked e-mail address, never the address itself', async () => {
    const lines: string[] = [];
    const sender = createConsoleSender({ write: (line) => lines.push(line) });
    const result = await sender.send({ deviceId: 'dev-1', kind: 'email', destination: 'jane.doe@example.com', code: '123456', validUntil });
    expect(result).toEqual({ ok: true });
    expect(lines).toEqual([
      '[factorstream] code for e-mail device dev-1 (to j***@example.com): 123456, valid until 2026-01-02T03:04:05.000Z',
    ]);
    expect(lines[0]).not.toContain('jane.doe');
  });

  it('keeps only the last two digits of a phone number', async () => {
    const lines: string[] = [];
    const sender = createConsoleSender({ write: (line) => lines.push(line) });
    await sender.send({ deviceId: 'dev-2', kind: 'sms', destination: '+44 7700 900123', code: '654321', validUntil });
    expect(lines[0]).toContain('SMS device dev-2');
    expect(lines[0]).toContain('(to ***23)');
    expect(lines[0]).toContain('654321');
    expect(lines[0]).not.toContain('7700');
    expect(lines[0]).not.toContain('900123');
  });

  it('reports a failing writer as a value without the code', async () => {
    const sender = createConsoleSender({
      write: (line) => {
        throw new Error(`cannot write ${line}`);
      },
    });
    const result = await sender.send({ deviceId: 'd', kind: 'email', destination: 'a@b.example', code: '123456', validUntil });
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain('123456');
  });

  it('masks odd destinations to nothing recognisable', () => {
    expect(maskEmail('not-an-address')).toBe('***');
    expect(maskEmail('@example.com')).toBe('***');
    expect(maskPhone('12')).toBe('***');
  });
});
