/**
 * `inspectCapture`: a pcap/pcapng file's bytes in, one record per TLS, DTLS and QUIC connection out.
 */
import { type CaptureError, type CaptureFormat, type Flow, readFlows } from '../capture/index.js';
import { inspectDtlsFlow } from './dtls.js';
import { formatEndpoint } from './format.js';
import { inspectQuicFlow } from './quic.js';
import type { InspectedConnection, InspectRecord } from './record.js';
import { inspectTlsFlow } from './tls.js';

/** A note about one record: why part of its handshake could not be read. */
export interface InspectNote {
  /** Index of the record in `records`; null for a flow that gave no record. */
  readonly record: number | null;
  readonly message: string;
}

export interface InspectResult {
  /** The capture's container, or null when it is neither pcap nor pcapng. */
  readonly format: CaptureFormat | null;
  /** One per TLS, DTLS or QUIC connection, in the order of each connection's first packet. */
  readonly records: InspectRecord[];
  readonly notes: InspectNote[];
  /** Packet records read from the file. */
  readonly packetCount: number;
  /**
   * Why the capture could not be read to its end (truncated, corrupt, not a capture); `offset`
   * is where in the file. The records hold what came before. Null when the file was read whole.
   */
  readonly error: CaptureError | null;
}

/**
 * The record of one flow, or null when it is not TLS over TCP (the client's stream starts with
 * a ClientHello record), DTLS (the first client datagram is a DTLS ClientHello) or QUIC (the
 * first client datagram is a QUIC long header packet).
 */
export function inspectFlow(flow: Flow): InspectedConnection | null {
  if (flow.protocol === 'tcp') return inspectTlsFlow(flow);
  return inspectDtlsFlow(flow) ?? inspectQuicFlow(flow);
}

/**
 * Reads a pcap or pcapng file held in memory and inspects every flow in it. Sans-IO and
 * never throws on bad bytes: a truncated or corrupt file gives the records of the packets
 * before the damage, and `error`.
 */
export function inspectCapture(bytes: Uint8Array): InspectResult {
  const capture = readFlows(bytes);
  const records: InspectRecord[] = [];
  const notes: InspectNote[] = [];
  for (const flow of capture.flows) {
    let inspected: InspectedConnection | null;
    try {
      inspected = inspectFlow(flow);
    } catch (e) {
      // The parsers return their errors rather than throw them; should one throw all the same,
      // it costs this flow, not the records of the others (docs/ARCHITECTURE.md principle 6: bad input is data).
      const where = `${flow.protocol} ${formatEndpoint(flow.client)} -> ${formatEndpoint(flow.server)}`;
      notes.push({ record: null, message: `internal error on ${where}: ${(e as Error).message}` });
      continue;
    }
    if (inspected === null) continue;
    for (const message of inspected.notes) notes.push({ record: records.length, message });
    records.push(inspected.record);
  }
  return { format: capture.format, records, notes, packetCount: capture.packetCount, error: capture.error };
}
