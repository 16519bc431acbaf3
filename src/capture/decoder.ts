import { formatIp } from './address.js';
import { type FragmentLimits, IpFragmentReassembler } from './fragments.js';
import { decodeIp, IP_PROTOCOL_TCP, IP_PROTOCOL_UDP } from './ip.js';
import { decodeLinkLayer } from './link.js';
import type { CapturedPacket } from './packet.js';
import { type Skipped, type SkipReason, skipped } from './skip.js';
import { decodeTcp, decodeUdp, type TcpSegment, type UdpDatagram } from './transport.js';

/** A captured packet decoded down to its TCP segment or UDP datagram. */
export interface DecodedPacket {
  readonly kind: 'decoded';
  readonly timestamp: number;
  readonly ipVersion: 4 | 6;
  /** Address text (dotted quad, or RFC 5952 IPv6). */
  readonly source: string;
  readonly destination: string;
  readonly transport: TcpSegment | UdpDatagram;
  /** The snapshot length cut the payload short: bytes past its end are missing, not absent. */
  readonly truncated: boolean;
}

/** Counts of packets that gave no segment or datagram, by reason. */
export type SkipCounts = { [R in SkipReason]: number };

export function emptySkipCounts(): SkipCounts {
  return {
    'unsupported-link-type': 0,
    'not-ip': 0,
    'not-tcp-udp': 0,
    truncated: 0,
    malformed: 0,
    fragment: 0,
  };
}

/**
 * Decodes captured packets through the link layer, IP (fragments reassembled) and TCP/UDP.
 * Stateful only for IP fragments; never throws on bad bytes, it answers with a skip reason.
 */
export class PacketDecoder {
  readonly #fragments: IpFragmentReassembler;
  /** How many packets were skipped, and why. */
  readonly skips: SkipCounts = emptySkipCounts();

  constructor(limits: FragmentLimits = {}) {
    this.#fragments = new IpFragmentReassembler(limits);
  }

  decode(packet: CapturedPacket): DecodedPacket | Skipped {
    const result = this.#decode(packet);
    if (result.kind === 'skipped') this.skips[result.reason]++;
    return result;
  }

  #decode(packet: CapturedPacket): DecodedPacket | Skipped {
    const network = decodeLinkLayer(packet.linkType, packet.data);
    if (network.kind === 'skipped') return network;
    let datagram = decodeIp(network.version, network.data);
    if (datagram.kind === 'skipped') return datagram;
    if (datagram.fragment !== null) {
      datagram = this.#fragments.push(datagram);
      if (datagram.kind === 'skipped') return datagram;
    }
    let transport: TcpSegment | UdpDatagram | Skipped;
    let truncated = datagram.truncated;
    if (datagram.protocol === IP_PROTOCOL_TCP) {
      transport = decodeTcp(datagram.payload);
    } else if (datagram.protocol === IP_PROTOCOL_UDP) {
      transport = decodeUdp(datagram.payload);
      // The UDP length says how much was sent even when the IP header was cut off with the rest.
      if (transport.kind === 'udp' && transport.payload.length + 8 < udpLength(datagram.payload))
        truncated = true;
    } else {
      return skipped('not-tcp-udp');
    }
    if (transport.kind === 'skipped') return transport;
    return {
      kind: 'decoded',
      timestamp: packet.timestamp,
      ipVersion: datagram.version,
      source: formatIp(datagram.source),
      destination: formatIp(datagram.destination),
      transport,
      truncated,
    };
  }
}

function udpLength(udp: Uint8Array): number {
  return (udp[4]! << 8) | udp[5]!;
}
