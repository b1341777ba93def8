/**
 * QR codes of otpauth URIs, with the qrcode package: in the terminal, or as a PNG or SVG file.
 */
import { extname } from 'node:path';
import QRCode from 'qrcode';
import { UsageError } from './parse.ts';

export const terminalQr = (uri: string): Promise<string> => QRCode.toString(uri, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });

/** Writes a QR code file; the format comes from the extension (.png or .svg). The file gets mode 0600: it holds the secret. */
export const writeQrFile = async (path: string, uri: string): Promise<void> => {
  const ext = extname(path).toLowerCase();
  if (ext !== '.png' && ext !== '.svg') throw new UsageError(`--qr must name a .png or .svg file (got "${path.slice(0, 80)}")`);
  const { writeFile } = await import('node:fs/promises');
  const data = ext === '.png' ? await QRCode.toBuffer(uri, { type: 'png', margin: 2, width: 320 }) : await QRCode.toString(uri, { type: 'svg', margin: 2 });
  await writeFile(path, data, { mode: 0o600 });
};
