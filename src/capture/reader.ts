import { readFile } from 'node:fs/promises';
import { CaptureError } from './errors.js';
import type { CapturedPacket, CaptureFormat } from './packet.js';
import { isPcap, readPcap } from './pcap.js';
import { isPcapng, readPcapng } from './pcapng.js';

/** Everything a capture file yielded: the packets read, and the error that stopped reading, if any. */
export interface CaptureContents {
  /** Null when the file is neither pcap nor pcapng (or could not be read). */
  readonly format: CaptureFormat | null;
  readonly packets: CapturedPacket[];
  /** Null when the whole file was read; otherwise the packets before `error.offset` are still here. */
  readonly error: CaptureError | null;
}

/** Which container `bytes` uses, from its first four bytes; null if neither. */
export function detectCaptureFormat(bytes: Uint8Array): CaptureFormat | null {
  if (isPcapng(bytes)) return 'pcapng';
  if (isPcap(bytes)) return 'pcap';
  return null;
}

/**
 * Iterates the packets of a pcap or pcapng file held in memory, lazily. The generator's return
 * value is the `CaptureError` that stopped it, or null at a clean end of file; it never throws.
 */
export function iteratePackets(bytes: Uint8Array): Generator<CapturedPacket, CaptureError | null, void> {
  switch (detectCaptureFormat(bytes)) {
    case 'pcapng':
      return readPcapng(bytes);
    case 'pcap':
      return readPcap(bytes);
    default:
      return unknownFormat(bytes);
  }
}

// biome-ignore lint/correctness/useYield: a generator that only returns, to keep iteratePackets' shape.
function* unknownFormat(bytes: Uint8Array): Generator<CapturedPacket, CaptureError | null, void> {
  return bytes.length < 4
    ? new CaptureError('truncated', 'capture file shorter than a magic number', 0)
    : new CaptureError('unknown-format', 'neither a pcap nor a pcapng file', 0);
}

/** Reads every packet of a pcap or pcapng file held in memory. Never throws. */
export function readPackets(bytes: Uint8Array): CaptureContents {
  const format = detectCaptureFormat(bytes);
  const packets: CapturedPacket[] = [];
  const iterator = iteratePackets(bytes);
  for (;;) {
    const step = iterator.next();
    if (step.done) return { format, packets, error: step.value };
    packets.push(step.value);
  }
}

/** Reads a capture file from disk; a failure to read it is a `CaptureError` with code `io`. */
export async function readCapture(path: string): Promise<CaptureContents> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return { format: null, packets: [], error: new CaptureError('io', `cannot read ${path}: ${reason}`, 0) };
  }
  return readPackets(bytes);
}
