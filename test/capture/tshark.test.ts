import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Endpoint, readFlows, type TcpFlow, type UdpFlow } from '../../src/capture/index.js';
import { ETHERTYPE_IPV4, ethernet, ipv4, pcapFile, TCP, tcp, text } from './synth.js';

const dir = join(import.meta.dirname, '../fixtures/capture');
const fixtures = readdirSync(dir).filter((name) => /\.pcap(ng)?$/.test(name));
const TSHARK = '/usr/bin/tshark';

interface Followed {
  readonly nodes: [Endpoint, Endpoint];
  /** Hex of what node 0 sent, and of what node 1 sent, each in order, one entry per tshark line. */
  readonly fromNode0: string[];
  readonly fromNode1: string[];
}

/** `tshark -q -z follow,PROTO,raw,N`: lines of node 1 are tab-indented. Bounded in time. */
function follow(file: string, protocol: 'tcp' | 'udp', stream: number): Followed {
  const output = execFileSync(TSHARK, ['-r', file, '-q', '-z', `follow,${protocol},raw,${stream}`], {
    encoding: 'utf8',
    timeout: 20_000,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const nodes: Endpoint[] = [];
  const fromNode0: string[] = [];
  const fromNode1: string[] = [];
  for (const line of output.split('\n')) {
    const node = /^Node [01]: \[?([^\]]*?)\]?:(\d+)$/.exec(line);
    if (node) nodes.push([node[1]!, Number(node[2])]);
    else if (/^\t[0-9a-f]+$/.test(line)) fromNode1.push(line.trim());
    else if (/^[0-9a-f]+$/.test(line)) fromNode0.push(line);
  }
  expect(nodes).toHaveLength(2);
  return { nodes: [nodes[0]!, nodes[1]!], fromNode0, fromNode1 };
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('flows agree with tshark', () => {
  it.each(fixtures)('%s: every TCP stream and UDP datagram as tshark follows it', (name) => {
    const file = join(dir, name);
    const { flows, error } = readFlows(readFileSync(file));
    expect(error).toBeNull();
    expect(flows.length).toBeGreaterThan(0);
    const tcp = flows.filter((f): f is TcpFlow => f.protocol === 'tcp');
    const udp = flows.filter((f): f is UdpFlow => f.protocol === 'udp');

    tcp.forEach((flow, index) => {
      const followed = follow(file, 'tcp', index);
      // Every fixture's capture saw the SYN, so tshark's node 0 (first sender) is the client.
      expect(followed.nodes).toEqual([flow.client, flow.server]);
      expect(hex(flow.clientToServer)).toBe(followed.fromNode0.join(''));
      expect(hex(flow.serverToClient)).toBe(followed.fromNode1.join(''));
    });
    udp.forEach((flow, index) => {
      const followed = follow(file, 'udp', index);
      expect(followed.nodes).toEqual([flow.client, flow.server]);
      // One tshark line per datagram: boundaries must match too.
      expect(flow.clientToServer.filter((d) => d.length > 0).map(hex)).toEqual(followed.fromNode0);
      expect(flow.serverToClient.filter((d) => d.length > 0).map(hex)).toEqual(followed.fromNode1);
    });
  });

  it('finds as many conversations as tshark, with its packet count per flow', () => {
    for (const name of fixtures) {
      const file = join(dir, name);
      const fields = execFileSync(
        TSHARK,
        ['-r', file, '-T', 'fields', '-e', 'tcp.stream', '-e', 'udp.stream'],
        {
          encoding: 'utf8',
          timeout: 20_000,
          stdio: ['ignore', 'pipe', 'ignore'],
        },
      );
      const counts = new Map<string, number>();
      for (const line of fields.trimEnd().split('\n')) {
        const [tcpStream, udpStream] = line.split('\t');
        const key = tcpStream ? `tcp${tcpStream}` : `udp${udpStream}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const { flows } = readFlows(readFileSync(file));
      const ours = new Map<string, number>();
      let tcpIndex = 0;
      let udpIndex = 0;
      for (const flow of flows)
        ours.set(flow.protocol === 'tcp' ? `tcp${tcpIndex++}` : `udp${udpIndex++}`, flow.packets);
      expect(ours, name).toEqual(counts);
    }
  });
});

describe('synthetic TCP edge cases agree with tshark', () => {
  it('reordered, retransmitted and overlapping segments across sequence wrap-around, VLAN-tagged', () => {
    const C: Endpoint = ['192.0.2.1', 51000];
    const S: Endpoint = ['192.0.2.2', 443];
    const frame = (fromClient: boolean, seq: number, flags: number, payload: string, ack: number) => {
      const [src, dst] = fromClient ? [C, S] : [S, C];
      const segment = tcp({ sport: src[1], dport: dst[1], seq, ack, flags, payload: text(payload) });
      return ethernet(
        ETHERTYPE_IPV4,
        ipv4({ src: src[0], dst: dst[0], protocol: 6, payload: segment }),
        [10],
      );
    };
    const cIsn = 0xfffffff8; // the client's data wraps after 7 bytes
    const sIsn = 0x12345678;
    const c = (offset: number) => (cIsn + 1 + offset) >>> 0;
    const s = (offset: number) => (sIsn + 1 + offset) >>> 0;
    const frames = [
      frame(true, cIsn, TCP.SYN, '', 0),
      frame(false, sIsn, TCP.SYN | TCP.ACK, '', c(0)),
      frame(true, c(0), TCP.ACK, '', s(0)),
      frame(true, c(0), TCP.ACK | TCP.PSH, 'ClientH', s(0)),
      frame(true, c(12), TCP.ACK | TCP.PSH, 'part-three', s(0)), // sent before part two arrives
      frame(true, c(7), TCP.ACK | TCP.PSH, 'ello,', s(0)),
      frame(true, c(0), TCP.ACK | TCP.PSH, 'ClientH', s(0)), // retransmission
      frame(false, s(0), TCP.ACK | TCP.PSH, 'ServerHello', c(22)),
      frame(false, s(0), TCP.ACK | TCP.PSH, 'ServerHello and more', c(22)), // retransmitted, extended
      frame(true, c(22), TCP.ACK | TCP.FIN, '', s(20)),
      frame(false, s(20), TCP.ACK | TCP.FIN, '', c(23)),
    ];
    const bytes = pcapFile({
      linkType: 1,
      packets: frames.map((data, i) => ({ seconds: 1_700_000_000, fraction: i, data })),
    });
    const work = mkdtempSync(join(tmpdir(), 'wirelayer-capture-'));
    try {
      const file = join(work, 'edge.pcap');
      writeFileSync(file, bytes);
      const [flow] = readFlows(bytes).flows as TcpFlow[];
      expect(Buffer.from(flow!.clientToServer).toString()).toBe('ClientHello,part-three');
      expect(Buffer.from(flow!.serverToClient).toString()).toBe('ServerHello and more');
      const followed = follow(file, 'tcp', 0);
      expect(followed.nodes).toEqual([C, S]);
      expect(hex(flow!.clientToServer)).toBe(followed.fromNode0.join(''));
      expect(hex(flow!.serverToClient)).toBe(followed.fromNode1.join(''));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
