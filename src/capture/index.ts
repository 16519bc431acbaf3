/**
 * The capture layer under `wirelayer inspect`: pcap/pcapng readers, link/IP/TCP/UDP decoding and
 * flow assembly, all sans-IO over a file's bytes (`readCapture` is the one function that reads a file).
 *
 * ```ts
 * const { flows, error, skips } = readFlows(await readFile('handshake.pcapng'));
 * for (const flow of flows) {
 *   if (flow.protocol === 'tcp') parseTlsRecords(flow.clientToServer); // the client's byte stream
 *   else for (const m of flow.messages) detect(m.data); // UDP: datagrams in capture order
 * }
 * if (error) console.error(`${error.code} at byte ${error.offset}`); // flows hold everything before it
 * ```
 *
 * Layers, bottom up: `readPcap` / `readPcapng` (records) → `decodeLinkLayer` (Ethernet + VLAN,
 * SLL, SLL2, NULL/LOOP, raw IP) → `decodeIp` (IPv4 options, IPv6 extension headers, fragments
 * reassembled by `IpFragmentReassembler`) → `decodeTcp` / `decodeUdp`; `PacketDecoder` chains them,
 * `TcpStreamReassembler` orders one TCP direction, `FlowAssembler` groups packets into flows.
 */
export { formatIp, formatIpv4, formatIpv6 } from './address.js';
export { type DecodedPacket, emptySkipCounts, PacketDecoder, type SkipCounts } from './decoder.js';
export { CaptureError, type CaptureErrorCode } from './errors.js';
export {
  assembleFlows,
  type CaptureFlows,
  type Endpoint,
  type Flow,
  FlowAssembler,
  type FlowOptions,
  readFlows,
  type TcpDirectionSummary,
  type TcpFlow,
  type UdpFlow,
  type UdpMessage,
} from './flows.js';
export { type FragmentLimits, IpFragmentReassembler } from './fragments.js';
export { decodeIp, decodeIpv4, decodeIpv6, type IpDatagram, type IpFragmentInfo } from './ip.js';
export { decodeLinkLayer, LinkType, type NetworkPacket } from './link.js';
export type { CapturedPacket, CaptureFormat } from './packet.js';
export { readPcap } from './pcap.js';
export { readPcapng } from './pcapng.js';
export {
  type CaptureContents,
  detectCaptureFormat,
  iteratePackets,
  readCapture,
  readPackets,
} from './reader.js';
export { SKIP_REASONS, type Skipped, type SkipReason } from './skip.js';
export {
  DEFAULT_TCP_STREAM_MAX_BYTES,
  type TcpStreamLimits,
  TcpStreamReassembler,
} from './tcp-stream.js';
export { decodeTcp, decodeUdp, TcpFlag, type TcpSegment, type UdpDatagram } from './transport.js';
