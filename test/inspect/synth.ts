/** Synthetic captures for inspect tests: TCP and UDP conversations wrapped in raw-IP pcaps. */

import { concat, ipv4, rawPcap, TCP, tcp, udp } from '../capture/synth.js';
import {
  clientHelloBody,
  type Ext,
  handshake,
  supportedVersionsExt,
  tlsRecords,
  u16,
} from '../handshake/build.js';

export const CLIENT = '10.0.0.1';
export const SERVER = '10.0.0.2';
export const CLIENT_PORT = 50000;
export const SERVER_PORT = 443;

/**
 * A TCP connection in a raw-IP pcap: handshake, then each chunk as one segment from its side,
 * in order. `synFrom` 'none' leaves the handshake out (a capture started mid-connection).
 */
export function tcpCapture(
  chunks: readonly { from: 'client' | 'server'; data: Uint8Array }[],
  options: { synFrom?: 'client' | 'none'; firstSender?: 'client' | 'server' } = {},
): Uint8Array {
  const packets: Uint8Array[] = [];
  const seq = { client: 1000, server: 5000 };
  const send = (from: 'client' | 'server', flags: number, payload: Uint8Array = new Uint8Array(0)) => {
    const [src, dst, sport, dport] =
      from === 'client'
        ? [CLIENT, SERVER, CLIENT_PORT, SERVER_PORT]
        : [SERVER, CLIENT, SERVER_PORT, CLIENT_PORT];
    const other = from === 'client' ? 'server' : 'client';
    packets.push(
      ipv4({
        src,
        dst,
        protocol: 6,
        payload: tcp({ sport, dport, seq: seq[from], ack: seq[other], flags, payload }),
      }),
    );
    seq[from] += payload.length + (flags & TCP.SYN ? 1 : 0);
  };
  if ((options.synFrom ?? 'client') === 'client') {
    send('client', TCP.SYN);
    send('server', TCP.SYN | TCP.ACK);
    send('client', TCP.ACK);
  }
  for (const chunk of chunks) send(chunk.from, TCP.ACK | TCP.PSH, chunk.data);
  return rawPcap(packets);
}

/** A UDP conversation in a raw-IP pcap, datagrams in the order given. */
export function udpCapture(
  datagrams: readonly { from: 'client' | 'server'; data: Uint8Array }[],
): Uint8Array {
  return rawPcap(
    datagrams.map(({ from, data }) =>
      from === 'client'
        ? ipv4({ src: CLIENT, dst: SERVER, protocol: 17, payload: udp(CLIENT_PORT, SERVER_PORT, data) })
        : ipv4({ src: SERVER, dst: CLIENT, protocol: 17, payload: udp(SERVER_PORT, CLIENT_PORT, data) }),
    ),
  );
}

/** A ServerHello body: TLS 1.3 (supported_versions) unless `extensions` say otherwise. */
export function serverHelloBody(
  cipher: number,
  extensions: readonly Ext[] = [supportedVersionsServerExt(0x0304), serverKeyShareExt(29)],
  options: { version?: number; random?: Uint8Array } = {},
): Uint8Array {
  const exts = concat(
    ...extensions.map(([type, data]) => Uint8Array.from([...u16(type), ...u16(data.length), ...data])),
  );
  return Uint8Array.from([
    ...u16(options.version ?? 0x0303),
    ...(options.random ?? new Uint8Array(32).fill(9)),
    0,
    ...u16(cipher),
    0,
    ...u16(exts.length),
    ...exts,
  ]);
}

/** A ServerHello's key_share: one entry (group, 32-byte key), no list length. */
export function serverKeyShareExt(group: number): Ext {
  return [51, Uint8Array.from([...u16(group), ...u16(32), ...new Array<number>(32).fill(0x5b)])];
}

/** A HelloRetryRequest's key_share: the group asked for, nothing else. */
export function retryKeyShareExt(group: number): Ext {
  return [51, Uint8Array.from(u16(group))];
}

/** A ServerHello's supported_versions: one version, no list length. */
export function supportedVersionsServerExt(version: number): Ext {
  return [43, Uint8Array.from(u16(version))];
}

/** ServerHello records (handshake type 2). */
export function serverHelloRecords(body: Uint8Array): Uint8Array {
  return tlsRecords(0x16, 0x0303, handshake(2, body));
}

export { clientHelloBody, handshake, supportedVersionsExt, tlsRecords };
