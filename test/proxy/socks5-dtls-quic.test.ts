/**
 * socks5 mode, DTLS and QUIC inside UDP associations, detected by their first datagram and
 * handled by the reverse modes' layers: gnutls-cli --udp (behind a local forward of the SOCKS5
 * helper) to gnutls-serv --udp --echo, intercepted and passed through; our QUIC client (its
 * socket the SOCKS5 helper's) to gtlsserver, an HTTP/3 GET of a file, intercepted.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection, Server } from '../../src/connection/index.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { quic } from '../../src/transport/quic/index.js';
import type { QuicStream } from '../../src/transport/quic/stream.js';
import { EC_CERT, EC_CERT_PEM, fixturePath } from '../helpers/certs.js';
import { type PeerProcess, spawnPeer } from '../helpers/peer.js';
import { freeUdpPort } from '../helpers/ports.js';
import { Socks5Association } from '../helpers/socks5-udp.js';
import { waitUntil } from '../helpers/wait.js';
import { startGtlsServer } from '../transport/quic-peers.js';
import { hookRecorder, tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();
let ca: string;

beforeAll(async () => {
  await (await WirelayerProxy.start({ modes: ['socks5@0'], confdir: conf.dir })).close();
  ca = readFileSync(conf.caFile, 'utf8');
});
afterAll(() => conf.remove());

function startProxy(options: Partial<ProxyOptions> = {}): Promise<WirelayerProxy> {
  return WirelayerProxy.start({
    modes: ['socks5'],
    listenPort: 0,
    confdir: conf.dir,
    upstreamCa: EC_CERT_PEM,
    ...options,
  });
}

function legs(proxy: WirelayerProxy): { clients: Client[]; servers: Server[] } {
  const clients: Client[] = [];
  const servers: Server[] = [];
  proxy.on('model', (_e: string, conn: Connection) => {
    const list = (conn.constructor.name === 'Client' ? clients : servers) as Connection[];
    if (!list.includes(conn)) list.push(conn);
  });
  return { clients, servers };
}

/** `gnutls-serv --udp --echo` with the EC fixture, on a free port. */
async function gnutlsEcho(): Promise<{ port: number; peer: PeerProcess }> {
  const port = await freeUdpPort('127.0.0.1');
  const peer = spawnPeer('gnutls-serv', [
    '--udp',
    '--echo',
    '-p',
    String(port),
    '--x509certfile',
    fixturePath('ec-cert.pem'),
    '--x509keyfile',
    fixturePath('ec-key.pem'),
    '--priority',
    'NORMAL:-VERS-ALL:+VERS-DTLS1.2',
  ]);
  await peer.waitFor(/listening on IPv4/);
  return { port, peer };
}

/** `gnutls-cli --udp` to a local port (the SOCKS5 helper's forward), trusting `caFile`. */
function gnutlsClient(port: number, caFile: string): PeerProcess {
  return spawnPeer('gnutls-cli', [
    '--udp',
    '-p',
    String(port),
    '127.0.0.1',
    '--sni-hostname',
    'localhost',
    '--verify-hostname',
    'localhost',
    '--x509cafile',
    caFile,
    '--priority',
    'NORMAL:-VERS-ALL:+VERS-DTLS1.2',
  ]);
}

describe('socks5 UDP ASSOCIATE carrying DTLS', () => {
  it('gnutls-cli -> association -> gnutls-serv --udp --echo: intercepted, each leg its own handshake, records echoed', async () => {
    const upstream = await gnutlsEcho();
    const hooks = hookRecorder();
    await using proxy = await startProxy({ addons: [hooks.addon] });
    const seen = legs(proxy);
    const assoc = await Socks5Association.open('127.0.0.1', proxy.listening[0]!.address[1]);
    const forward = await assoc.forward('127.0.0.1', upstream.port);
    const client = gnutlsClient(forward.port, conf.caFile);
    try {
      await client.waitFor(/Status: The certificate is trusted/, 15_000);
      await client.waitFor(/Handshake was completed/);
      client.child.stdin!.write('through socks5\n');
      await client.waitFor(/Simple Client Mode:[\s\S]*through socks5/);
      const dtlsClient = seen.clients.find((c) => c.transportProtocol === 'udp')!;
      const server = seen.servers.at(-1)!;
      expect(dtlsClient).toMatchObject({ proxyMode: 'socks5', tlsVersion: 'DTLSv1.2', sni: 'localhost' });
      expect(dtlsClient.peername).toEqual(['127.0.0.1', assoc.local.port]);
      expect(dtlsClient.mitmcert!.subjectAltName).toContain('DNS:localhost');
      expect(server).toMatchObject({ tlsVersion: 'DTLSv1.2', sni: 'localhost' });
      expect(server.address).toEqual(['127.0.0.1', upstream.port]);
      expect(server.certificateList[0]!.fingerprint256).toBe(EC_CERT.fingerprint256);
    } finally {
      await client.stop();
      await forward.close();
      await assoc.close();
      await upstream.peer.stop();
    }
    await waitUntil(
      () => hooks.log.filter((h) => h === 'clientDisconnected').length === 2,
      'both clients to end',
    );
    // the control connection's, around the DTLS flow's own, as reverse:dtls orders them
    expect(hooks.log.filter((h) => h !== 'udpMessage')).toEqual([
      'clientConnected',
      'clientConnected',
      'tlsClienthello',
      'serverConnect',
      'serverConnected',
      'tlsStartServer',
      'tlsEstablishedServer',
      'tlsStartClient',
      'tlsEstablishedClient',
      'udpStart',
      'udpEnd',
      'serverDisconnected',
      'clientDisconnected',
      'clientDisconnected',
    ]);
    // the line went up and came back as records of the intercepted flow
    expect(hooks.log.filter((h) => h === 'udpMessage').length).toBeGreaterThanOrEqual(2);
  });

  it('ignoreHosts: the DTLS flow is passed through, gnutls-cli verifies the upstream certificate itself', async () => {
    const upstream = await gnutlsEcho();
    await using proxy = await startProxy({ ignoreHosts: ['^localhost:'] });
    const seen = legs(proxy);
    const assoc = await Socks5Association.open('127.0.0.1', proxy.listening[0]!.address[1]);
    const forward = await assoc.forward('127.0.0.1', upstream.port);
    const client = gnutlsClient(forward.port, fixturePath('ec-cert.pem'));
    try {
      await client.waitFor(/Status: The certificate is trusted/, 15_000);
      client.child.stdin!.write('passed through\n');
      await client.waitFor(/Simple Client Mode:[\s\S]*passed through/);
      expect(proxy.stats.passthrough).toBe(1);
      const dtlsClient = seen.clients.find((c) => c.transportProtocol === 'udp')!;
      expect(dtlsClient.mitmcert).toBeNull();
      expect(dtlsClient.sni).toBe('localhost');
      await waitUntil(() => dtlsClient.tlsVersion !== null, 'the ServerHello observed');
      expect(dtlsClient.tlsVersion).toBe('DTLSv1.2');
    } finally {
      await client.stop();
      await forward.close();
      await assoc.close();
      await upstream.peer.stop();
    }
  });
});

/** QUIC variable-length integers (RFC 9000 16). */
function varint(n: number): Buffer {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(0x80000000 | n);
  return b;
}

function readVarint(buf: Buffer, offset: number): [number, number] {
  const prefix = buf[offset]! >> 6;
  const length = 1 << prefix;
  let v = buf[offset]! & 0x3f;
  for (let i = 1; i < length; i++) v = v * 256 + buf[offset + i]!;
  return [v, offset + length];
}

/** A QPACK string literal without Huffman coding (7-bit prefix length). */
const qpackString = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);

/**
 * An HTTP/3 GET as one HEADERS frame (RFC 9114, QPACK RFC 9204 with the static table only):
 * :method GET (17), :scheme https (23), then :authority and :path as literals naming static
 * entries 0 and 1.
 */
function h3Get(authority: string, path: string): Buffer {
  const fields = Buffer.concat([
    Buffer.from([0x00, 0x00, 0xc0 | 17, 0xc0 | 23]),
    Buffer.from([0x50 | 0]),
    qpackString(authority),
    Buffer.from([0x50 | 1]),
    qpackString(path),
  ]);
  return Buffer.concat([varint(0x01), varint(fields.length), fields]);
}

/** The DATA frames' payloads of an HTTP/3 response stream. */
function h3Body(stream: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < stream.length; ) {
    const [type, afterType] = readVarint(stream, offset);
    const [length, payload] = readVarint(stream, afterType);
    if (type === 0x00) parts.push(stream.subarray(payload, payload + length));
    offset = payload + length;
  }
  return Buffer.concat(parts);
}

describe('socks5 UDP ASSOCIATE carrying QUIC', () => {
  it('our QUIC client over the association -> gtlsserver: intercepted, an HTTP/3 GET of a file arrives whole', async () => {
    const htdocs = join(conf.dir, 'htdocs');
    mkdirSync(htdocs, { recursive: true });
    const body = randomBytes(50 * 1024);
    writeFileSync(join(htdocs, 'file.bin'), body);
    const upstream = await startGtlsServer('127.0.0.1', [`--htdocs=${htdocs}`]);
    const hooks = hookRecorder();
    await using proxy = await startProxy({ addons: [hooks.addon] });
    const seen = legs(proxy);
    const assoc = await Socks5Association.open('127.0.0.1', proxy.listening[0]!.address[1]);
    try {
      const session = await quic.connect({
        host: '127.0.0.1',
        port: upstream.port,
        servername: 'localhost',
        ALPNProtocols: ['h3'],
        ca,
        socket: assoc.socket(),
        connectTimeout: 10_000,
      });
      try {
        // intercepted: the certificate is one of our CA's, for the name the client asked
        expect(session.conn.certificateList[0]!.issuer).toMatch(/CN=wirelayer/);
        expect(session.conn.alpn).toBe('h3');
        // the server's control and QPACK streams are read and dropped
        session.on('stream', (s: QuicStream) => s.resume());
        const control = session.openStream({ bidirectional: false });
        control.write(Buffer.concat([varint(0x00), varint(0x04), varint(0)]));
        const request = session.stream;
        const chunks: Buffer[] = [];
        request.on('data', (c: Buffer) => chunks.push(c));
        request.end(h3Get('localhost', '/file.bin'));
        await once(request, 'end');
        expect(h3Body(Buffer.concat(chunks)).equals(body)).toBe(true);
      } finally {
        await session.close();
      }
      const quicClient = seen.clients.find((c) => c.transportProtocol === 'udp')!;
      const server = seen.servers.at(-1)!;
      expect(quicClient).toMatchObject({
        proxyMode: 'socks5',
        tlsVersion: 'QUICv1',
        alpn: 'h3',
        sni: 'localhost',
      });
      expect(quicClient.peername).toEqual(['127.0.0.1', assoc.local.port]);
      expect(server).toMatchObject({ tlsVersion: 'QUICv1', alpn: 'h3', sni: 'localhost' });
      expect(server.address).toEqual(['127.0.0.1', upstream.port]);
      expect(server.certificateList[0]!.fingerprint256).toBe(EC_CERT.fingerprint256);
    } finally {
      await assoc.close();
      await upstream.peer.stop();
    }
    await waitUntil(
      () => hooks.log.filter((h) => h === 'clientDisconnected').length === 2,
      'both clients to end',
    );
    expect(hooks.log.slice(0, 9)).toEqual([
      'clientConnected',
      'clientConnected',
      'tlsClienthello',
      'serverConnect',
      'quicStartServer',
      'serverConnected',
      'tlsEstablishedServer',
      'quicStartClient',
      'tlsEstablishedClient',
    ]);
  });

  it('passed through (--ignore-hosts): the client sees the upstream certificate, the fetch arrives whole', async () => {
    const htdocs = join(conf.dir, 'htdocs-pass');
    mkdirSync(htdocs, { recursive: true });
    const body = randomBytes(20 * 1024);
    writeFileSync(join(htdocs, 'file.bin'), body);
    const upstream = await startGtlsServer('127.0.0.1', [`--htdocs=${htdocs}`]);
    await using proxy = await startProxy({ ignoreHosts: ['^localhost:'] });
    const assoc = await Socks5Association.open('127.0.0.1', proxy.listening[0]!.address[1]);
    try {
      const session = await quic.connect({
        host: '127.0.0.1',
        port: upstream.port,
        servername: 'localhost',
        ALPNProtocols: ['h3'],
        ca: EC_CERT_PEM,
        socket: assoc.socket(),
        connectTimeout: 10_000,
      });
      try {
        expect(session.conn.certificateList[0]!.fingerprint256).toBe(EC_CERT.fingerprint256);
        session.on('stream', (s: QuicStream) => s.resume());
        session
          .openStream({ bidirectional: false })
          .write(Buffer.concat([varint(0x00), varint(0x04), varint(0)]));
        const chunks: Buffer[] = [];
        session.stream.on('data', (c: Buffer) => chunks.push(c));
        session.stream.end(h3Get('localhost', '/file.bin'));
        await once(session.stream, 'end');
        expect(h3Body(Buffer.concat(chunks)).equals(body)).toBe(true);
      } finally {
        await session.close();
      }
      expect(proxy.stats.passthrough).toBe(1);
    } finally {
      await assoc.close();
      await upstream.peer.stop();
    }
  });
});
