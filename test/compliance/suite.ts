/**
 * The compliance suite: every driver runs it (after js-libp2p's transport compliance tests). It asserts the
 * connection model on both ends of real sessions: addresses, handshake fields equal on both
 * sides and to what a real peer reports, transport and `tls` already right at `start`,
 * timestamps ordered, state transitions, `error` and `timestampEnd` on a failed connect, aborts
 * (before, in the middle of and after a dial) as Node reports them, clean close and no leaked
 * handles; and the listener surface: coded `sessionError`s and `error` counted in `stats`,
 * iteration that can stop and start again, the CA read in `listen()`.
 */
import { X509Certificate } from 'node:crypto';
import { type EventEmitter, once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CA_CERT_FILE, CA_FILE, CertificateAuthority } from '../../src/certs/index.js';
import { type Client, type Connection, ConnectionState, Server } from '../../src/connection/index.js';
import { ConnectError, SessionError } from '../../src/transport/errors.js';
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
  /**
   * Listen options that install `hook` as the listener's ClientHello hook (TLS, DTLS, QUIC). The
   * suite uses it to stall a handshake in its middle and to make a hook throw.
   */
  clientHello?: (hook: () => Promise<void>) => Partial<ListenOptions>;
  /**
   * Without a hook to stall (TCP, UDP): connect options that keep a dial in flight on the
   * listener, whose `start` then marks the middle of the dial (UDP: a probe it never answers).
   * Absent too (TCP), the abort comes right after the dial has begun.
   */
  holdDial?: () => Partial<ConnectOptions>;
  /**
   * The listener's own socket (a net.Server, a dgram socket), where the suite raises the error
   * the OS would report (EMFILE on accept, a failed recvmsg: no loopback peer can cause one).
   */
  listeningSocket?: (listener: Listener) => EventEmitter;
  /**
   * How to make a handshake fail on the listener's side. Default: our client distrusts the
   * listener's certificate (a CA of its own), which DTLS and QUIC clients say with an alert;
   * a Node TLS client only closes after its handshake, so TLS needs versions that do not meet.
   */
  handshakeFailure?: () => { listen?: Partial<ListenOptions>; connect?: Partial<ConnectOptions> };
  peerServers?: readonly PeerServer[];
  peerClients?: readonly PeerClient[];
}

/** Resolves with the listener's next `session`. */
const nextSession = (listener: Listener): Promise<AnySession<Client>> =>
  (once(listener, 'session') as Promise<[AnySession<Client>]>).then(([s]) => s);

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

/** What Node users expect of an aborted operation (net.connect, events.once), and a ConnectError. */
function expectAbortError(err: unknown): void {
  expect(err).toBeInstanceOf(ConnectError);
  const e = err as ConnectError;
  expect(e.name).toBe('AbortError');
  expect(e.code).toBe('ABORT_ERR');
  expect(e.conn.state).toBe(ConnectionState.CLOSED);
  expect(e.conn.error).toBe(e.message);
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
          // the Client model at `start`, as it was then
          const started = new Promise<[AnySession<Client>, { transportProtocol: string; tls: boolean }]>(
            (resolve) =>
              listener.once('start', (s: AnySession<Client>) =>
                resolve([s, { transportProtocol: s.conn.transportProtocol, tls: s.conn.tls }]),
              ),
          );
          const before = Date.now() / 1000;
          // the Server model at `start`: made by the driver, filled before anything is dialed
          const model = fx.driver.serverModel({ host, port, ...fx.connectOptions?.(host, port) });
          expect(model.address).toEqual([host, port]);
          expect(model.transportProtocol).toBe(fx.transportProtocol);
          expect(model.tls).toBe(fx.handshake !== undefined);
          expect(model.state).toBe(ConnectionState.CLOSED);
          const connecting = fx.driver.connect({
            host,
            port,
            ...fx.connectOptions?.(host, port),
            conn: model,
          });
          const out = await connecting;
          expect(out.conn).toBe(model);
          fx.announce?.(out);
          const [inbound] = await accepted;
          const [first, atStart] = await started;
          expect(first).toBe(inbound);
          expect(atStart).toEqual({
            transportProtocol: fx.transportProtocol,
            tls: fx.handshake !== undefined,
          });
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
              connectTimeout: 5000,
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
          expect(conn.timestampEnd).not.toBeNull();
          expect(conn.timestampEnd!).toBeGreaterThanOrEqual(conn.timestampStart!);
          expect(conn.address).toEqual([host, port]);
          expect(conn.transportProtocol).toBe(fx.transportProtocol);
          expect(conn.tls).toBe(fx.handshake !== undefined);
        });

        it('rejects a connect whose signal is already aborted', async () => {
          const signal = AbortSignal.abort();
          const err = await fx.driver
            .connect({ host, port: listener.address[1], signal, ...fx.connectOptions?.(host, 1) })
            .catch((e: unknown) => e);
          expectAbortError(err);
          expect((err as ConnectError).cause).toBe(signal.reason);
          expect((err as ConnectError).conn.timestampEnd).not.toBeNull();
        });

        it('an abort in the middle of the dial rejects as Node does and leaves the model CLOSED', async () => {
          let entered!: () => void;
          const inside = new Promise<void>((resolve) => {
            entered = resolve;
          });
          let release!: () => void;
          const released = new Promise<void>((resolve) => {
            release = resolve;
          });
          const own = await fx.driver.listen({
            host,
            port: 0,
            ...fx.listenOptions?.(host),
            ...fx.clientHello?.(() => {
              entered();
              return released;
            }),
          });
          try {
            const port = own.address[1];
            if (fx.clientHello === undefined && fx.holdDial !== undefined) own.once('start', () => entered());
            const ac = new AbortController();
            const conn = new Server({ address: [host, port] });
            const pending = fx.driver
              .connect({
                host,
                port,
                ...fx.connectOptions?.(host, port),
                ...fx.holdDial?.(),
                conn,
                signal: ac.signal,
              })
              .then(
                () => null,
                (e: unknown) => e,
              );
            // the transport is up and the handshake (or the probe) waits on the listener; TCP: the
            // connect has only begun
            if (fx.clientHello !== undefined || fx.holdDial !== undefined) await inside;
            else expect(conn.state).toBe(ConnectionState.CLOSED);
            expect(conn.timestampStart).not.toBeNull();
            ac.abort();
            const err = await pending;
            expectAbortError(err);
            expect((err as ConnectError).cause).toBe(ac.signal.reason);
            expect((err as ConnectError).conn).toBe(conn);
            expect(conn.state).toBe(ConnectionState.CLOSED);
            expect(conn.error).toBe((err as ConnectError).message);
            expect(conn.timestampEnd).not.toBeNull();
            expect(conn.timestampEnd!).toBeGreaterThanOrEqual(conn.timestampStart!);
            expect(conn.timestampTlsSetup).toBeNull();
          } finally {
            release();
            await own.close();
          }
        });

        it('an abort after the connect closes the session', async () => {
          const ac = new AbortController();
          const accepted = nextSession(listener);
          const out = await fx.driver.connect({
            host,
            port: listener.address[1],
            ...fx.connectOptions?.(host, listener.address[1]),
            signal: ac.signal,
          });
          fx.announce?.(out);
          const inbound = await accepted;
          ac.abort();
          await (out.closed ? undefined : once(out, 'close'));
          expect(out.conn.state).toBe(ConnectionState.CLOSED);
          expect(out.conn.error).toBe('Aborted');
          await inbound.close();
        });

        if (fx.clientHello !== undefined) {
          const withHook = fx.clientHello;
          it('a ClientHello hook that throws fails that session with ERR_CLIENT_HELLO_HOOK, counted', async () => {
            const thrown = new Error('no certificate for you');
            const own = await fx.driver.listen({
              host,
              port: 0,
              ...fx.listenOptions?.(host),
              ...withHook(() => {
                throw thrown;
              }),
            });
            try {
              const started = once(own, 'start') as Promise<[AnySession<Client>]>;
              const failed = once(own, 'sessionError') as Promise<[AnySession<Client>, SessionError]>;
              const port = own.address[1];
              const err = await fx.driver
                .connect({ host, port, ...fx.connectOptions?.(host, port), connectTimeout: 1500 })
                .catch((e: unknown) => e);
              expect(err).toBeInstanceOf(ConnectError);
              const [session, error] = await failed;
              expect((await started)[0]).toBe(session);
              expect(error).toBeInstanceOf(SessionError);
              expect(error.code).toBe('ERR_CLIENT_HELLO_HOOK');
              expect(error.cause).toBe(thrown);
              expect(error.conn).toBe(session.conn);
              expect(session.conn.error).toBe('ClientHello hook failed: no certificate for you');
              expect(error.message).toBe(session.conn.error);
              expect(session.established).toBe(false);
              // DTLS: no alert tells our client, whose retransmitted ClientHellos each fail the same way
              expect(Object.keys(own.stats.sessionErrors)).toEqual(['ERR_CLIENT_HELLO_HOOK']);
              expect(own.stats.sessionErrors.ERR_CLIENT_HELLO_HOOK).toBeGreaterThanOrEqual(1);
              expect(own.stats.socketErrors).toEqual({});
            } finally {
              await own.close();
            }
          });
        }

        if (fx.listeningSocket !== undefined) {
          const socketOf = fx.listeningSocket;
          it("an error of the listening socket is the listener's 'error', counted by code; it goes on", async () => {
            const own = await fx.driver.listen({ host, port: 0, ...fx.listenOptions?.(host) });
            try {
              const failure = Object.assign(new Error('accept EMFILE'), {
                code: 'EMFILE',
                syscall: 'accept',
              });
              const reported = once(own, 'error') as Promise<[Error]>;
              socketOf(own).emit('error', failure);
              expect((await reported)[0]).toBe(failure);
              expect(own.stats.socketErrors).toEqual({ EMFILE: 1 });
              expect(own.stats.sessionErrors).toEqual({});
              const accepted = nextSession(own);
              const port = own.address[1];
              const out = await fx.driver.connect({ host, port, ...fx.connectOptions?.(host, port) });
              fx.announce?.(out);
              const inbound = await accepted;
              const payload = Buffer.from('still serving');
              expect(Buffer.from(await roundTrip(out, inbound, payload)).equals(payload)).toBe(true);
              await out.close();
            } finally {
              await own.close();
            }
          });
        }

        if (fx.handshake !== undefined) {
          it("a handshake the listener fails: sessionError keeps the engine's code, counted once", async () => {
            const failing = fx.handshakeFailure?.() ?? {};
            const own = await fx.driver.listen({
              host,
              port: 0,
              ...fx.listenOptions?.(host),
              ...failing.listen,
            });
            try {
              const failed = once(own, 'sessionError') as Promise<[AnySession<Client>, SessionError]>;
              const port = own.address[1];
              const err = await fx.driver
                .connect({
                  host,
                  port,
                  ...fx.connectOptions?.(host, port),
                  ca: CertificateAuthority.create().certPem,
                  ...failing.connect,
                  connectTimeout: 5000,
                })
                .catch((e: unknown) => e);
              expect(err).toBeInstanceOf(ConnectError);
              const [session, error] = await failed;
              expect(error).toBeInstanceOf(SessionError);
              // the engine's or the OS's code, kept
              expect(error.code).toMatch(/^(E[A-Z]+|ERR_[A-Z0-9_]+)$/);
              expect(error.conn).toBe(session.conn);
              expect(error.message).toBe(session.conn.error);
              expect(own.stats.sessionErrors).toEqual({ [error.code]: 1 });
            } finally {
              await own.close();
            }
          });

          it('without a certificate of its own, a listener reads (or makes) its CA in listen(), before any client', async () => {
            const confdir = mkdtempSync(join(tmpdir(), 'wirelayer-compliance-ca-'));
            try {
              const options: ListenOptions & { confdir: string } = { host, port: 0, confdir };
              const own = await fx.driver.listen(options);
              try {
                // there already: no file read nor key made in the middle of a handshake
                expect(existsSync(join(confdir, CA_FILE))).toBe(true);
                const ca = readFileSync(join(confdir, CA_CERT_FILE));
                const port = own.address[1];
                const accepted = nextSession(own);
                const out = await fx.driver.connect({
                  host,
                  port,
                  ...fx.connectOptions?.(host, port),
                  ca,
                  servername: 'localhost',
                });
                await accepted;
                expect(out.conn.certificateList[0]?.checkHost('localhost')).toBe('localhost');
                expect(out.conn.certificateList[0]?.checkIssued(new X509Certificate(ca))).toBe(true);
                await out.close();
              } finally {
                await own.close();
              }
            } finally {
              rmSync(confdir, { recursive: true, force: true });
            }
          });
        }

        it('ending an iteration early leaves the listener serving; a new iteration works', async () => {
          const own = await fx.driver.listen({ host, port: 0, ...fx.listenOptions?.(host) });
          const port = own.address[1];
          const dial = async (): Promise<[AnySession<Server>, AnySession<Client>]> => {
            const accepted = nextSession(own);
            const out = await fx.driver.connect({ host, port, ...fx.connectOptions?.(host, port) });
            fx.announce?.(out);
            return [out, await accepted];
          };
          const outs: AnySession<Server>[] = [];
          try {
            // two sessions queued for an iteration that takes only the first
            const iterator = own[Symbol.asyncIterator]();
            const [outA, inA] = await dial();
            const [outB, inB] = await dial();
            outs.push(outA, outB);
            expect((await iterator.next()).value).toBe(inA);
            await iterator.return?.();
            // the one queued and never taken is closed, not leaked
            await (inB.closed ? undefined : once(inB, 'close'));
            expect(inB.conn.error).toBeNull();

            // with no iteration running, sessions still come up and stay up
            const [outC, inC] = await dial();
            outs.push(outC);
            expect(inC.conn.error).toBeNull();
            const payload = Buffer.from(`after the iteration on ${host}`);
            expect(Buffer.from(await roundTrip(outC, inC, payload)).equals(payload)).toBe(true);
            expect(inC.closed).toBe(false);
            expect(inC.conn.error).toBeNull();

            // `break` out of a new `for await`: it yields the next session, then the listener goes on
            const iterated = (async () => {
              for await (const session of own) return session;
              return null;
            })();
            const [outD, inD] = await dial();
            outs.push(outD);
            expect(await iterated).toBe(inD);
            const [outE, inE] = await dial();
            outs.push(outE);
            expect(Buffer.from(await roundTrip(outE, inE, payload)).equals(payload)).toBe(true);
            for (const s of [inA, inC, inD, inE]) expect(s.conn.error).toBeNull();
            expect(own.sessions.has(inB)).toBe(false);
          } finally {
            await Promise.all(outs.map((s) => s.close()));
            await own.close();
          }
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
