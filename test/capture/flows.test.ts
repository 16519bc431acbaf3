import { describe, expect, it } from 'vitest';
import { type Flow, FlowAssembler, readFlows, type TcpFlow, type UdpFlow } from '../../src/capture/index.js';
import {
  concat,
  ETHERTYPE_IPV4,
  ethernet,
  extensionBody,
  ipv4,
  ipv6,
  loopback,
  pcapFile,
  rawPcap,
  TCP,
  tcp,
  text,
  udp,
} from './synth.js';

const str = (bytes: Uint8Array) => Buffer.from(bytes).toString();
const C = '192.0.2.10';
const S = '198.51.100.20';

/** A TCP segment from the client (c2s) or the server, as raw IPv4. */
function seg(fromClient: boolean, seq: number, flags: number, payload = '', ack = 0): Uint8Array {
  const [src, dst, sport, dport] = fromClient ? [C, S, 40000, 443] : [S, C, 443, 40000];
  return ipv4({
    src,
    dst,
    protocol: 6,
    payload: tcp({ sport, dport, seq, ack, flags, payload: text(payload) }),
  });
}

function tcpFlows(packets: Uint8Array[]): TcpFlow[] {
  const { flows, error } = readFlows(rawPcap(packets));
  expect(error).toBeNull();
  return flows.filter((f): f is TcpFlow => f.protocol === 'tcp');
}

describe('TCP flows', () => {
  it('reassembles both directions through loss-free reordering and retransmission', () => {
    const [flow, ...rest] = tcpFlows([
      seg(true, 100, TCP.SYN),
      seg(false, 5000, TCP.SYN | TCP.ACK),
      seg(true, 101, TCP.ACK),
      seg(true, 107, TCP.ACK | TCP.PSH, 'Hello!'), // before the segment it follows
      seg(true, 101, TCP.ACK, 'Client'),
      seg(true, 101, TCP.ACK, 'Client'), // retransmitted
      seg(false, 5001, TCP.ACK, 'Server'),
      seg(false, 5004, TCP.ACK, 'ver says hi'), // overlaps "ver"
      seg(true, 113, TCP.FIN | TCP.ACK),
      seg(false, 5015, TCP.FIN | TCP.ACK),
    ]);
    expect(rest).toEqual([]);
    expect(flow).toMatchObject({ client: [C, 40000], server: [S, 443], ipVersion: 4, packets: 10 });
    expect(str(flow!.clientToServer)).toBe('ClientHello!');
    expect(str(flow!.serverToClient)).toBe('Server says hi');
    expect(flow!.clientStream).toMatchObject({
      sawSyn: true,
      sawFin: true,
      gapAt: null,
      retransmittedBytes: 6,
    });
    expect(flow!.serverStream).toMatchObject({ sawSyn: true, retransmittedBytes: 3 });
    expect(flow!.firstTimestamp).toBe(1_700_000_000);
    expect(flow!.lastTimestamp).toBe(1_700_000_009);
    expect(flow!.clientStream.firstDataTimestamp).toBe(1_700_000_003);
  });

  it('decides the client from the SYN-ACK when the capture starts after the SYN', () => {
    const [flow] = tcpFlows([seg(false, 9, TCP.SYN | TCP.ACK), seg(true, 1, TCP.ACK, 'hi')]);
    expect(flow).toMatchObject({ client: [C, 40000], server: [S, 443] });
    expect(str(flow!.clientToServer)).toBe('hi');
  });

  it('takes the first sender as the client without a handshake', () => {
    const [flow] = tcpFlows([
      seg(false, 70, TCP.ACK, 'mid'),
      seg(true, 900, TCP.ACK, 'stream'),
      seg(false, 73, TCP.ACK, 'dle'),
    ]);
    expect(flow).toMatchObject({ client: [S, 443], server: [C, 40000] });
    expect(str(flow!.clientToServer)).toBe('middle');
    expect(flow!.clientStream.sawSyn).toBe(false);
  });

  it('opens a new flow when a new SYN reuses the addresses and ports', () => {
    const flows = tcpFlows([
      seg(true, 100, TCP.SYN),
      seg(true, 100, TCP.SYN), // retransmitted SYN: same connection
      seg(true, 101, TCP.ACK, 'one'),
      seg(true, 104, TCP.FIN | TCP.ACK),
      seg(true, 77_777, TCP.SYN),
      seg(true, 77_778, TCP.ACK, 'two'),
    ]);
    expect(flows.map((f) => str(f.clientToServer))).toEqual(['one', 'two']);
    expect(flows.map((f) => f.packets)).toEqual([4, 2]);
  });

  it('leaves the stream at a hole a lost segment made, or a snapshot length cut', () => {
    const cut = seg(true, 101, TCP.ACK, 'truncated-by-snaplen');
    const [flow] = tcpFlows([
      seg(true, 100, TCP.SYN),
      cut.subarray(0, cut.length - 11),
      seg(true, 121, TCP.ACK, 'after'),
    ]);
    expect(str(flow!.clientToServer)).toBe('truncated');
    expect(flow!.clientStream.gapAt).toBe(9);
  });

  it('caps the bytes kept per direction', () => {
    const { flows } = readFlows(rawPcap([seg(true, 0, TCP.SYN), seg(true, 1, TCP.ACK, 'abcdefghij')]), {
      maxBytesPerDirection: 4,
    });
    const flow = flows[0] as TcpFlow;
    expect(str(flow.clientToServer)).toBe('abcd');
    expect(flow.clientStream.capped).toBe(true);
  });

  it('tracks IPv6 connections behind extension headers, over DLT_NULL', () => {
    const segment = (fromClient: boolean, seq: number, flags: number, payload: string) =>
      loopback(
        30,
        ipv6({
          src: fromClient ? '2001:db8::c' : '2001:db8::5',
          dst: fromClient ? '2001:db8::5' : '2001:db8::c',
          extensions: [
            { type: 0, body: extensionBody(0) },
            { type: 60, body: extensionBody(1) },
          ],
          protocol: 6,
          payload: tcp({
            sport: fromClient ? 50000 : 8443,
            dport: fromClient ? 8443 : 50000,
            seq,
            flags,
            payload: text(payload),
          }),
        }),
        true,
      );
    const file = pcapFile({
      linkType: 0,
      packets: [
        segment(true, 1, TCP.SYN, ''),
        segment(false, 1, TCP.SYN | TCP.ACK, ''),
        segment(true, 2, TCP.ACK, 'v6!'),
      ].map((data, i) => ({ seconds: 10 + i, data })),
    });
    const [flow] = readFlows(file).flows as TcpFlow[];
    expect(flow).toMatchObject({
      client: ['2001:db8::c', 50000],
      server: ['2001:db8::5', 8443],
      ipVersion: 6,
    });
    expect(str(flow!.clientToServer)).toBe('v6!');
  });
});

describe('UDP flows', () => {
  const dgram = (fromClient: boolean, payload: string, port = 5555) =>
    ethernet(
      ETHERTYPE_IPV4,
      ipv4({
        src: fromClient ? C : S,
        dst: fromClient ? S : C,
        protocol: 17,
        payload: udp(fromClient ? port : 443, fromClient ? 443 : port, text(payload)),
      }),
      [42],
      60,
    );

  it('keeps datagram boundaries and order per direction, and the interleaving with timestamps', () => {
    const file = pcapFile({
      linkType: 1,
      packets: [
        dgram(true, 'a1'),
        dgram(false, 'b1'),
        dgram(true, ''),
        dgram(true, 'a3'),
        dgram(false, 'b2'),
        dgram(true, 'x', 6666),
      ].map((data, i) => ({ seconds: 100, fraction: i * 1000, data })),
    });
    const { flows } = readFlows(file);
    expect(flows).toHaveLength(2);
    const flow = flows[0] as UdpFlow;
    expect(flow).toMatchObject({ protocol: 'udp', client: [C, 5555], server: [S, 443], packets: 5 });
    expect(flow.clientToServer.map(str)).toEqual(['a1', '', 'a3']);
    expect(flow.serverToClient.map(str)).toEqual(['b1', 'b2']);
    expect(flow.messages.map((m) => `${m.direction[0]}:${str(m.data)}`)).toEqual([
      'c:a1',
      's:b1',
      'c:',
      'c:a3',
      's:b2',
    ]);
    expect(flow.messages[4]!.timestamp).toBeCloseTo(100.004, 9);
    expect(flows[1]).toMatchObject({ client: [C, 6666] });
  });

  it('stops keeping datagrams past the cap and says so', () => {
    const file = rawPcap(
      [udp(1, 2, text('12345')), udp(1, 2, text('678')), udp(1, 2, text('9'))].map((p) =>
        ipv4({ protocol: 17, payload: p }),
      ),
    );
    const flow = readFlows(file, { maxBytesPerDirection: 8 }).flows[0] as UdpFlow;
    expect(flow.clientToServer.map(str)).toEqual(['12345', '678']);
    expect(flow.capped).toBe(true);
    expect(flow.packets).toBe(3);
  });

  it('marks a datagram the snapshot length cut', () => {
    const whole = ipv4({ protocol: 17, payload: udp(1, 2, text('0123456789')) });
    const flow = readFlows(rawPcap([whole.subarray(0, whole.length - 5)])).flows[0] as UdpFlow;
    expect(flow.messages[0]).toMatchObject({ truncated: true });
    expect(str(flow.clientToServer[0]!)).toBe('01234');
  });
});

describe('FlowAssembler', () => {
  it('counts what it skipped and keeps flows in first-packet order', () => {
    const assembler = new FlowAssembler();
    const add = (data: Uint8Array, linkType = 101) =>
      assembler.add({ timestamp: 1, linkType, data, originalLength: data.length, interfaceId: 0, offset: 0 });
    add(ipv4({ protocol: 17, payload: udp(9, 10, text('u')) }));
    add(ipv4({ protocol: 1, payload: new Uint8Array(8) }));
    add(new Uint8Array(3), 1);
    add(concat(ipv4({ protocol: 6, payload: tcp({ sport: 1, dport: 2, seq: 0, flags: TCP.SYN }) })));
    add(new Uint8Array(4), 9999);
    expect(assembler.flows().map((f: Flow) => f.protocol)).toEqual(['udp', 'tcp']);
    expect(assembler.skips).toMatchObject({ 'not-tcp-udp': 1, truncated: 1, 'unsupported-link-type': 1 });
  });
});
