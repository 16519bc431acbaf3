/**
 * The compliance suite: every driver runs it (after js-libp2p's transport compliance tests). It asserts the
 * connection model on both ends of real sessions: addresses, handshake fields equal on both
 * sides and to what a real peer reports, timestamps ordered, state transitions, `error` on a
 * failed connect, clean close and no leaked handles.
 */
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, type Connection, ConnectionState, type Server } from '../../src/connection/index.js';
import { ConnectError } from '../../src/transport/errors.js';
import type {
  AnySession,
  ConnectOptions,
  DatagramSession,
  Driver,
  Listener,
  ListenOptions,
  StreamSession,
} from '../../src/transport/types.js';

/** Handshake fields a session must end up with (on both ends, or as a real peer reported). */
export interface ExpectedHandshake {
  tlsVersion?: Connection['tlsVersion'];
  cipher?: string | null;
  alpn?: string | null;
  sni?: string | null;
}

/** A real peer (openssl, gnutls, ngtcp2, Node itself) acting as a server for our client. */
export interface PeerServer {
  name: string;
  start(host: string): Promise<{ port: number; stop(): Promise<void>; expected: ExpectedHandshake }>;
  connectOptions?: (host: string) => Partial<ConnectOptions>;
}

/** A real peer acting as a client of our listener; resolves with what it negotiated. */
export interface PeerClient {
  name: string;
  run(host: string, port: number): Promise<ExpectedHandshake>;
  listenOptions?: (host: string) => ListenOptions;
}

export interface ComplianceFixture {
  driver: Driver;
  /** Hosts to run on, e.g. ['127.0.0.1', '::1']. */
  hosts: readonly string[];
  transportProtocol: 'tcp' | 'udp';
  /** TCP sets `timestampTcpSetup` on the Server; UDP-based drivers leave it null. */
  tcpSetup: boolean;
  /** TLS, DTLS, QUIC: the handshake fields both ends must agree on. */
  handshake?: ExpectedHandshake & { tls: true };
  listenOptions?: (host: string) => ListenOptions;
  connectOptions?: (host: string, port: number) => Partial<ConnectOptions>;
  /** A port on `host` where a connect must fail (nothing listening). */
  refusedPort(host: string): Promise<number>;
  /**
   * Options for the connect to `refusedPort` (UDP: a `probe`, since a bare UDP connect has no
   * handshake to be refused).
   */
  refusedConnectOptions?: (host: string, port: number) => Partial<ConnectOptions>;
  /**
   * Makes the listener learn of a fresh connection (UDP: a listener sees a flow only once its
   * first datagram arrives, so send one). Called right after each connect the suite awaits an
   * accepted session for.
   */
  announce?: (session: AnySession<Server>) => void;
  peerServers?: readonly PeerServer[];
  peerClients?: readonly PeerClient[];
}

const isStream = (s: AnySession): s is StreamSession => 'stream' in s;

/** One round trip of `payload` from `a` to `b` and back (b echoes). */
export async function roundTrip(a: AnySession, b: AnySession, payload: Uint8Array): Promise<Uint8Array> {
  if (isStream(a) && isStream(b)) {
    b.stream.once('data', (chunk: Buffer) => b.stream.write(chunk));
    a.stream.write(payload);
    const chunks: Buffer[] = [];
    let length = 0;
    while (length < payload.length) {
      const [chunk] = (await once(a.stream, 'data')) as [Buffer];
      chunks.push(chunk);
      length += chunk.length;
    }
    return Buffer.concat(chunks);
  }
  const da = a as DatagramSession;
  const db = b as DatagramSession;
  db.datagrams.once('datagram', (d: Uint8Array) => db.datagrams.send(d));
  const reply = once(da.datagrams, 'datagram') as Promise<[Uint8Array]>;
  da.datagrams.send(payload);
  return (await reply)[0];
}

/** Counts the handles that sessions own (sockets, servers, timers), to detect leaks. */
export function transportHandles(): number {
  return process
    .getActiveResourcesInfo()
    .filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap' || r === 'UDPWrap' || r === 'Timeout')
    .length;
}

async function settleHandles(baseline: number): Promise<number> {
  for (let i = 0; i < 50 && transportHandles() > baseline; i++) await new Promise((r) => setTimeout(r, 20));
  return transportHandles();
}

function expectOrdered(conn: Connection, tcpSetup: boolean): void {
  const server = conn as Server;
  const stamps = [
    conn.timestampStart,
    tcpSetup ? server.timestampTcpSetup : undefined,
    conn.timestampTlsSetup ?? undefined,
    conn.timestampEnd ?? undefined,
  ].filter((t): t is number => typeof t === 'number');
  expect(stamps.length).toBeGreaterThan(0);
  for (let i = 1; i < stamps.length; i++) expect(stamps[i]).toBeGreaterThanOrEqual(stamps[i - 1]!);
}

const sameHost = (a: string, b: string): boolean => a.replace(/^::ffff:/, '') === b.replace(/^::ffff:/, '');

function expectHandshake(conn: Connection, expected: ExpectedHandshake): void {
  for (const key of ['tlsVersion', 'cipher', 'alpn', 'sni'] as const) {
    if (expected[key] !== undefined) expect(conn[key], key).toBe(expected[key]);
  }
}

export function runCompliance(name: string, fx: ComplianceFixture): void {
  describe(`compliance: ${name}`, () => {
    for (const host of fx.hosts) {
      describe(host, () => {
        let listener: Listener;
        let baseline: number;
        beforeAll(async () => {
          baseline = transportHandles();
          listener = await fx.driver.listen({ host, port: 0, ...fx.listenOptions?.(host) });
        });
        afterAll(async () => {
          await listener.close();
          expect(await settleHandles(baseline), 'handles left after close').toBeLessThanOrEqual(baseline);
        });

        it('fills both models on connect, agrees on the handshake, carries data, closes cleanly', async () => {
          const [port] = [listener.address[1]];
          expect(port).toBeGreaterThan(0);
          const accepted = once(listener, 'session') as Promise<[AnySession<Client>]>;
          const started = once(listener, 'start') as Promise<[AnySession<Client>]>;
          const before = Date.now() / 1000;
          const out = await fx.driver.connect({ host, port, ...fx.connectOptions?.(host, port) });
          fx.announce?.(out);
          const [inbound] = await accepted;
          expect((await started)[0]).toBe(inbound);
          const server = out.conn;
          const client = inbound.conn;

          // the Server model we dialed
          expect(out.established).toBe(true);
          expect(server.state).toBe(ConnectionState.OPEN);
          expect(server.connected).toBe(true);
          expect(server.address).toEqual([host, port]);
          expect(server.transportProtocol).toBe(fx.transportProtocol);
          expect(server.peername?.[1]).toBe(port);
          expect(sameHost(server.peername![0], host)).toBe(true);
          expect(server.sockname?.[1]).toBeGreaterThan(0);
          expect(server.timestampStart).toBeGreaterThanOrEqual(before - 1);
          expect(server.timestampTcpSetup === null).toBe(!fx.tcpSetup);
          expect(server.error).toBeNull();

          // the Client model that was accepted: the mirror image
          expect(inbound.established).toBe(true);
          expect(client.state).toBe(ConnectionState.OPEN);
          expect(client.transportProtocol).toBe(fx.transportProtocol);
          expect(client.peername[1]).toBe(server.sockname![1]);
          expect(sameHost(client.peername[0], server.sockname![0])).toBe(true);
          expect(client.sockname[1]).toBe(port);
          expect(client.timestampStart).toBeLessThanOrEqual(Date.now() / 1000 + 1);

          if (fx.handshake) {
            for (const conn of [server, client] as Connection[]) {
              expect(conn.tls).toBe(true);
              expect(conn.tlsEstablished).toBe(true);
              expectHandshake(conn, fx.handshake);
            }
            expect(client.tlsVersion).toBe(server.tlsVersion);
            expect(client.cipher).toBe(server.cipher);
            expect(client.alpn).toBe(server.alpn);
          } else {
            for (const conn of [server, client] as Connection[]) {
              expect(conn.tls).toBe(false);
              expect(conn.tlsVersion).toBeNull();
              expect(conn.timestampTlsSetup).toBeNull();
            }
          }

          const payload = Buffer.from(`hello over ${name} on ${host}`);
          expect(Buffer.from(await roundTrip(out, inbound, payload)).equals(payload)).toBe(true);
          expect(Buffer.from(await roundTrip(inbound, out, payload)).equals(payload)).toBe(true);

          await out.close();
          await (inbound.closed ? Promise.resolve() : once(inbound, 'close'));
          for (const conn of [server, client] as Connection[]) {
            expect(conn.state).toBe(ConnectionState.CLOSED);
            expect(conn.connected).toBe(false);
            expect(conn.error).toBeNull();
            expect(conn.timestampEnd).not.toBeNull();
            expectOrdered(conn, conn === server && fx.tcpSetup);
          }
          expect(out.closed && inbound.closed).toBe(true);
        });

        it('records error on a failed connect and rejects with a ConnectError', async () => {
          const port = await fx.refusedPort(host);
          const err = await fx.driver
            .connect({
              host,
              port,
              timeout: 5000,
              ...fx.connectOptions?.(host, port),
              ...fx.refusedConnectOptions?.(host, port),
            })
            .then(
              () => null,
              (e: unknown) => e,
            );
          expect(err).toBeInstanceOf(ConnectError);
          const conn = (err as ConnectError).conn;
          expect(conn.error).toBeTypeOf('string');
          expect(conn.error!.length).toBeGreaterThan(0);
          expect((err as ConnectError).message).toBe(conn.error);
          expect(conn.state).toBe(ConnectionState.CLOSED);
          expect(conn.timestampStart).not.toBeNull();
          expect(conn.address).toEqual([host, port]);
        });

        it('rejects a connect whose signal is already aborted', async () => {
          const err = await fx.driver
            .connect({
              host,
              port: listener.address[1],
              signal: AbortSignal.abort(),
              ...fx.connectOptions?.(host, 1),
            })
            .catch((e: unknown) => e);
          expect(err).toBeInstanceOf(ConnectError);
          expect((err as ConnectError).code).toBe('ABORT_ERR');
        });

        it('yields sessions from the async iterator and closes them with the listener', async () => {
          const own = await fx.driver.listen({ host, port: 0, ...fx.listenOptions?.(host) });
          const iterator = own[Symbol.asyncIterator]();
          const out = await fx.driver.connect({
            host,
            port: own.address[1],
            ...fx.connectOptions?.(host, own.address[1]),
          });
          fx.announce?.(out);
          const { value: inbound } = await iterator.next();
          expect(inbound.conn.peername[1]).toBe(out.conn.sockname?.[1]);
          const closedOut = out.closed ? Promise.resolve() : once(out, 'close');
          await own.close();
          expect(inbound.closed).toBe(true);
          expect(inbound.conn.state).toBe(ConnectionState.CLOSED);
          expect((await iterator.next()).done).toBe(true);
          await closedOut;
        });

        it('closes the listener on abort', async () => {
          const ac = new AbortController();
          const own = await fx.driver.listen({
            host,
            port: 0,
            signal: ac.signal,
            ...fx.listenOptions?.(host),
          });
          const closed = once(own, 'close');
          ac.abort();
          await closed;
        });

        for (const peer of fx.peerServers ?? []) {
          it(`our client against ${peer.name}: the model equals what the peer reports`, async () => {
            const started = await peer.start(host);
            try {
              const out = await fx.driver.connect({
                host,
                port: started.port,
                ...fx.connectOptions?.(host, started.port),
                ...peer.connectOptions?.(host),
              });
              expect(out.conn.state).toBe(ConnectionState.OPEN);
              expectHandshake(out.conn, started.expected);
              expectOrdered(out.conn, fx.tcpSetup);
              await out.close();
              expect(out.conn.state).toBe(ConnectionState.CLOSED);
            } finally {
              await started.stop();
            }
          });
        }

        for (const peer of fx.peerClients ?? []) {
          it(`${peer.name} against our listener: the model equals what the peer reports`, async () => {
            const own = await fx.driver.listen({
              host,
              port: 0,
              ...(peer.listenOptions ?? fx.listenOptions)?.(host),
            });
            try {
              const accepted = once(own, 'session') as Promise<[AnySession<Client>]>;
              const reported = await peer.run(host, own.address[1]);
              const [inbound] = await accepted;
              expectHandshake(inbound.conn, reported);
              expectOrdered(inbound.conn, false);
            } finally {
              await own.close();
            }
          });
        }
      });
    }
  });
}
