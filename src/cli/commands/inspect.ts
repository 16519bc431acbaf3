import { readFile } from 'node:fs/promises';
import {
  describeCaptureError,
  formatEndpoint,
  formatTable,
  inspectCapture,
  recordJson,
} from '../../inspect/index.js';
import { parse, UsageError } from '../args.js';

export const usage = `wirelayer inspect CAPTURE [--json]
  Read a pcap or pcapng file and print one record per TLS (TCP), DTLS or QUIC connection in it:
  addresses, SNI, ALPN offered and chosen, offered ciphers (IANA names, GREASE left out), the
  version and cipher the ServerHello chose, JA3 and JA4. --json: one object per line.
  Notes on hellos that could not be read go to stderr. Exit 0 when the whole file was read,
  1 when it is truncated, corrupt or unreadable (the records before the damage are printed), 2 on bad usage.`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UsageError(positionals.length === 0 ? 'missing CAPTURE' : 'one CAPTURE at a time');
  const path = positionals[0]!;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    console.error(`wirelayer inspect: cannot read ${path}: ${(e as Error).message}`);
    return 1;
  }

  const result = inspectCapture(bytes);
  const lines = values.json ? result.records.map(recordJson) : formatTable(result.records);
  if (!values.json && result.records.length === 0) {
    lines.splice(0, lines.length, `no TLS, DTLS or QUIC connection in ${result.packetCount} packets`);
  }
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);

  for (const note of result.notes) {
    const record = note.record === null ? undefined : result.records[note.record];
    const where = record
      ? `${record.protocol} ${formatEndpoint(record.client)} -> ${formatEndpoint(record.server)}: `
      : '';
    console.error(`wirelayer inspect: note: ${where}${note.message}`);
  }
  if (result.error) {
    console.error(`wirelayer inspect: ${path}: ${describeCaptureError(result.error)}`);
    return 1;
  }
  return 0;
}
