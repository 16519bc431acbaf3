import { type DecodedPacket, PacketDecoder, type SkipCounts } from './decoder.js';
import type { CaptureError } from './errors.js';
import type { FragmentLimits } from './fragments.js';
import type { CapturedPacket, CaptureFormat } from './packet.js';
import { detectCaptureFormat, iteratePackets } from './reader.js';
import { DEFAULT_TCP_STREAM_MAX_BYTES, TcpStreamReassembler } from './tcp-stream.js';
import { TcpFlag } from './transport.js';

/** `[host, port]`, host as dotted quad or RFC 5952 IPv6 text (the model's `Address` shape). */
export type Endpoint = readonly [host: string, port: number];

export interface FlowOptions extends FragmentLimits {
  /**
   * Bytes kept per direction of a flow: TCP stream bytes, or UDP payload bytes (whole datagrams;
   * the first one past the cap is not kept). Default 1 MiB.
   */
  readonly maxBytesPerDirection?: number;
}

interface FlowCommon {
  /** Who opened the flow: the SYN's sender, else the first packet's sender. */
  readonly client: Endpoint;
  readonly server: Endpoint;
  readonly ipVersion: 4 | 6;
  /** Timestamp of the flow's first packet in capture order, and the latest of any of its packets. */
  readonly firstTimestamp: number;
  readonly lastTimestamp: number;
  /** Packets of the flow, both directions, retransmissions included. */
  readonly packets: number;
}

/** One datagram of a UDP flow, in capture order. */
export interface UdpMessage {
  readonly direction: 'client-to-server' | 'server-to-client';
  readonly timestamp: number;
  readonly data: Uint8Array;
  /** The snapshot length cut it: `data` is a prefix of what was sent. */
  readonly truncated: boolean;
}

export interface UdpFlow extends FlowCommon {
  readonly protocol: 'udp';
  /** Payloads sent by the client, datagram boundaries and order kept. */
  readonly clientToServer: readonly Uint8Array[];
  readonly serverToClient: readonly Uint8Array[];
  /** Both directions interleaved in capture order, with timestamps. */
  readonly messages: readonly UdpMessage[];
  /** Datagrams were dropped for `maxBytesPerDirection`. */
  readonly capped: boolean;
}

/** How one direction of a TCP flow was reassembled. */
export interface TcpDirectionSummary {
  /** The direction's SYN was seen, so its stream starts at the real beginning. */
  readonly sawSyn: boolean;
  readonly sawFin: boolean;
  /** Bytes past `maxBytesPerDirection` were dropped. */
  readonly capped: boolean;
  /** Offset of a hole (lost segment, or cut by the snapshot length) after which data could not be delivered; null if none. */
  readonly gapAt: number | null;
  readonly retransmittedBytes: number;
  /** Out-of-order segments dropped because too many were already waiting (see `TcpStreamLimits`). */
  readonly droppedSegments: number;
  /** Timestamp of the first packet carrying data in this direction; null if none did. */
  readonly firstDataTimestamp: number | null;
}

export interface TcpFlow extends FlowCommon {
  readonly protocol: 'tcp';
  /** The client's byte stream, in order, up to the first hole or the cap. */
  readonly clientToServer: Uint8Array;
  readonly serverToClient: Uint8Array;
  readonly clientStream: TcpDirectionSummary;
  readonly serverStream: TcpDirectionSummary;
}

export type Flow = TcpFlow | UdpFlow;

interface FlowState {
  readonly protocol: 'tcp' | 'udp';
  readonly client: Endpoint;
  readonly server: Endpoint;
  readonly clientKey: string;
  readonly ipVersion: 4 | 6;
  readonly firstTimestamp: number;
  lastTimestamp: number;
  packets: number;
  // tcp
  readonly toServer: TcpStreamReassembler | null;
  readonly toClient: TcpStreamReassembler | null;
  firstDataToServer: number | null;
  firstDataToClient: number | null;
  // udp
  readonly messages: UdpMessage[];
  udpBytesToServer: number;
  udpBytesToClient: number;
  udpCapped: boolean;
}

/**
 * Groups decoded packets into flows: UDP per 5-tuple, TCP per connection (a new SYN on the same
 * 4-tuple starts a new one), each TCP direction reassembled into a byte stream. Feed packets in
 * capture order with `add` (or already decoded ones with `push`), then read `flows()`.
 */
export class FlowAssembler {
  readonly #decoder: PacketDecoder;
  readonly #maxBytes: number;
  readonly #table = new Map<string, FlowState>();
  readonly #all: FlowState[] = [];

  constructor(options: FlowOptions = {}) {
    this.#decoder = new PacketDecoder(options);
    this.#maxBytes = options.maxBytesPerDirection ?? DEFAULT_TCP_STREAM_MAX_BYTES;
  }

  /** Packets that gave no TCP segment or UDP datagram, by reason. */
  get skips(): SkipCounts {
    return this.#decoder.skips;
  }

  /** Decodes a captured packet and adds it to its flow; undecodable packets are only counted. */
  add(packet: CapturedPacket): void {
    const decoded = this.#decoder.decode(packet);
    if (decoded.kind === 'decoded') this.push(decoded);
  }

  /** Adds an already decoded packet to its flow. */
  push(packet: DecodedPacket): void {
    const t = packet.transport;
    const source = `${packet.source}|${t.sourcePort}`;
    const destination = `${packet.destination}|${t.destinationPort}`;
    const key =
      source < destination ? `${t.kind}|${source}|${destination}` : `${t.kind}|${destination}|${source}`;
    let flow = this.#table.get(key);

    if (t.kind === 'tcp') {
      const pureSyn = (t.flags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
      if (flow !== undefined && pureSyn && !continuesConnection(flow, source, t.seq)) flow = undefined;
      if (flow === undefined) {
        // A SYN-ACK comes from the server; any other first packet from the client.
        const fromServer = (t.flags & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK);
        flow = this.#open(key, packet, fromServer);
      }
      const fromClient = source === flow.clientKey;
      const stream = fromClient ? flow.toServer! : flow.toClient!;
      // A payload cut by the snapshot length is still a true prefix: its end becomes a hole.
      stream.push(t.seq, t.flags, t.payload);
      if (t.payload.length > 0) {
        if (fromClient) flow.firstDataToServer ??= packet.timestamp;
        else flow.firstDataToClient ??= packet.timestamp;
      }
    } else {
      flow ??= this.#open(key, packet, false);
      const fromClient = source === flow.clientKey;
      const size = t.payload.length;
      const used = fromClient ? flow.udpBytesToServer : flow.udpBytesToClient;
      if (used + size > this.#maxBytes) {
        flow.udpCapped = true;
      } else {
        if (fromClient) flow.udpBytesToServer += size;
        else flow.udpBytesToClient += size;
        flow.messages.push({
          direction: fromClient ? 'client-to-server' : 'server-to-client',
          timestamp: packet.timestamp,
          data: t.payload,
          truncated: packet.truncated,
        });
      }
    }
    flow.packets++;
    if (packet.timestamp > flow.lastTimestamp) flow.lastTimestamp = packet.timestamp;
  }

  #open(key: string, packet: DecodedPacket, fromServer: boolean): FlowState {
    const t = packet.transport;
    const sender: Endpoint = [packet.source, t.sourcePort];
    const receiver: Endpoint = [packet.destination, t.destinationPort];
    const client = fromServer ? receiver : sender;
    const server = fromServer ? sender : receiver;
    const tcp = t.kind === 'tcp';
    const flow: FlowState = {
      protocol: t.kind,
      client,
      server,
      clientKey: `${client[0]}|${client[1]}`,
      ipVersion: packet.ipVersion,
      firstTimestamp: packet.timestamp,
      lastTimestamp: packet.timestamp,
      packets: 0,
      toServer: tcp ? new TcpStreamReassembler({ maxBytes: this.#maxBytes }) : null,
      toClient: tcp ? new TcpStreamReassembler({ maxBytes: this.#maxBytes }) : null,
      firstDataToServer: null,
      firstDataToClient: null,
      messages: [],
      udpBytesToServer: 0,
      udpBytesToClient: 0,
      udpCapped: false,
    };
    this.#table.set(key, flow);
    this.#all.push(flow);
    return flow;
  }

  /** Every flow so far, in the order of its first packet. */
  flows(): Flow[] {
    return this.#all.map(toFlow);
  }
}

/**
 * Whether a SYN without ACK belongs to `flow` (a retransmitted or duplicated SYN) rather than
 * opening a new connection on the same addresses and ports.
 */
function continuesConnection(flow: FlowState, source: string, seq: number): boolean {
  if (source !== flow.clientKey) return false;
  return flow.toServer!.initialSequence === (seq + 1) >>> 0;
}

function toFlow(state: FlowState): Flow {
  const common = {
    client: state.client,
    server: state.server,
    ipVersion: state.ipVersion,
    firstTimestamp: state.firstTimestamp,
    lastTimestamp: state.lastTimestamp,
    packets: state.packets,
  };
  if (state.protocol === 'tcp') {
    const toServer = state.toServer!;
    const toClient = state.toClient!;
    return {
      protocol: 'tcp',
      ...common,
      clientToServer: toServer.bytes(),
      serverToClient: toClient.bytes(),
      clientStream: summarize(toServer, state.firstDataToServer),
      serverStream: summarize(toClient, state.firstDataToClient),
    };
  }
  return {
    protocol: 'udp',
    ...common,
    clientToServer: state.messages.filter((m) => m.direction === 'client-to-server').map((m) => m.data),
    serverToClient: state.messages.filter((m) => m.direction === 'server-to-client').map((m) => m.data),
    messages: [...state.messages],
    capped: state.udpCapped,
  };
}

function summarize(stream: TcpStreamReassembler, firstDataTimestamp: number | null): TcpDirectionSummary {
  return {
    sawSyn: stream.sawSyn,
    sawFin: stream.sawFin,
    capped: stream.capped,
    gapAt: stream.gapAt,
    retransmittedBytes: stream.retransmittedBytes,
    droppedSegments: stream.droppedSegments,
    firstDataTimestamp,
  };
}

/** Assembles the flows of captured packets (in capture order). */
export function assembleFlows(packets: Iterable<CapturedPacket>, options: FlowOptions = {}): Flow[] {
  const assembler = new FlowAssembler(options);
  for (const packet of packets) assembler.add(packet);
  return assembler.flows();
}

/** What `readFlows` found in a capture file. */
export interface CaptureFlows {
  readonly format: CaptureFormat | null;
  readonly flows: Flow[];
  /** Packet records read from the file. */
  readonly packetCount: number;
  /** Packets that gave no TCP segment or UDP datagram, by reason. */
  readonly skips: SkipCounts;
  /** Why reading stopped early; the flows hold everything before it. Null when the whole file was read. */
  readonly error: CaptureError | null;
}

/** Reads a pcap or pcapng file held in memory straight into flows. Never throws on bad bytes. */
export function readFlows(bytes: Uint8Array, options: FlowOptions = {}): CaptureFlows {
  const assembler = new FlowAssembler(options);
  const iterator = iteratePackets(bytes);
  let packetCount = 0;
  for (;;) {
    const step = iterator.next();
    if (step.done) {
      return {
        format: detectCaptureFormat(bytes),
        flows: assembler.flows(),
        packetCount,
        skips: { ...assembler.skips },
        error: step.value,
      };
    }
    packetCount++;
    assembler.add(step.value);
  }
}
