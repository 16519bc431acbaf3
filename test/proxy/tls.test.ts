/**
 * reverse:tls through the proxy with real peers on both sides: openssl s_client (verifying the
 * wirelayer CA) -> proxy -> openssl s_server, and Node's tls on either side. Each leg's model is
 * compared with what that leg's peer reports; hooks are checked in mitmproxy's order.
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection, Server } from '../../src/connection/index.js';
import type { Flow, HookName, TcpFlow } from '../../src/proxy/hooks.js';
import type { StreamRecord } from '../../src/proxy/layers/tcp.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { fixturePath, RSA_CERT, RSA_CERT_PEM, RSA_KEY_PEM } from '../helpers/certs.js';
import { spawnPeer } from '../helpers/peer.js';
import { waitUntil } from '../helpers/wait.js';
import { startOpensslServer } from '../transport/tls-peers.js';
import { hookRecorder, nodeTlsEcho, opensslClient, tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();
let ca: string;

beforeAll(async () => {
  // the CA is made once here, so every test reads the same file
  await (await WirelayerProxy.start({ modes: ['reverse:tls://127.0.0.1:1'], confdir: conf.dir })).close();
  ca = readFileSync(conf.caFile, 'utf8');
});
afterAll(() => conf.remove());

/** The models of a proxy's flows, by role, as its `model` events last saw them. */
function watchModels(proxy: WirelayerProxy): {
  clients: Client[];
  servers: Server[];
  streams: StreamRecord[];
} {
  const clients = new Set<Client>();
  const servers = new Set<Server>();
  const streams: StreamRecord[] = [];
  proxy.on('model', (_e: string, conn: Connection) => {
    if (conn.constructor.name === 'Client') clients.add(conn as Client);
    else servers.add(conn as Server);
  });
  proxy.on('stream', (r: StreamRecord) => streams.push(r));
  return {
    get clients() {
      return [...clients];
    },
    get servers() {
      return [...servers];
    },
    streams,
  };
}

async function startProxy(
  upstreamPort: number,
  options: Partial<ProxyOptions> = {},
): Promise<WirelayerProxy> {
  return WirelayerProxy.start({
    modes: [`reverse:tls://127.0.0.1:${upstreamPort}`],
    confdir: conf.dir,
    upstreamCa: RSA_CERT_PEM,
    ...options,
  });
}

const portOf = (proxy: WirelayerProxy): number => proxy.listening[0]!.address[1];

async function nodeClient(port: number, options: ConnectionOptions = {}): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca, ...options });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  return socket;
}

async function exchange(socket: TLSSocket, text: string): Promise<string> {
  const reply = once(socket, 'data');
  socket.write(text);
  return String((await reply)[0]);
}

/** mitmproxy's order for an intercepted TLS flow with connection strategy eager. */
const EAGER: HookName[] = [
  'clientConnected',
  'serverConnect',
  'serverConnected',
  'tlsClienthello',
  'tlsStartServer',
  'tlsEstablishedServer',
  'tlsStartClient',
  'tlsEstablishedClient',
  'tcpStart',
  'tcpEnd',
  'serverDisconnected',
  'clientDisconnected',
];

describe('reverse:tls interception, openssl on both sides', () => {
  for (const [clientVersion, serverVersion] of [
    ['TLSv1.3', 'TLSv1.2'],
    ['TLSv1.2', 'TLSv1.3'],
  ] as const) {
    const flag = (v: string): string => (v === 'TLSv1.3' ? '-tls1_3' : '-tls1_2');
    it(`client leg ${clientVersion}, server leg ${serverVersion}: each model as its peer says, ALPN mirrored, upstream names, data both ways`, async () => {
      const upstream = await startOpensslServer(
        '127.0.0.1',
        [
          '-cert',
          fixturePath('rsa-cert.pem'),
          '-key',
          fixturePath('rsa-key.pem'),
          flag(serverVersion),
          '-alpn',
          'h2',
        ],
        { brief: false },
      );
      const hooks = hookRecorder();
      await using proxy = await startProxy(upstream.port, { addons: [hooks.addon] });
      const seen = watchModels(proxy);
      const { peer, report } = await opensslClient(portOf(proxy), [
        '-servername',
        'localhost',
        '-alpn',
        'h2,http/1.1',
        '-CAfile',
        conf.caFile,
        '-verify_return_error',
        '-verify_hostname',
        'localhost',
        flag(clientVersion),
      ]);
      try {
        const serverReport = await upstream.report();
        const [client] = seen.clients;
        const [server] = seen.servers;
        // the client leg: what s_client negotiated with us
        expect(report.verifyCode).toBe(0);
        expect(report.tlsVersion).toBe(clientVersion);
        expect(client!.tlsVersion).toBe(clientVersion);
        expect(client!.cipher).toBe(report.cipher);
        expect(client!.sni).toBe('localhost');
        expect(client!.alpnOffers).toEqual(['h2', 'http/1.1']);
        // the server leg: what s_server negotiated with us, offered what the client offered
        expect(server!.tlsVersion).toBe(serverVersion);
        expect(server!.cipher).toBe(serverReport.cipher);
        expect(server!.sni).toBe('localhost');
        expect(serverReport.output).toMatch(/ALPN protocols advertised by the client: h2, http\/1\.1/);
        expect(server!.alpn).toBe('h2');
        // mirrored: the client leg selected what the server chose
        expect(report.alpn).toBe('h2');
        expect(client!.alpn).toBe('h2');
        // upstream_cert: the leaf we presented carries the upstream's CN and SANs, signed by our CA
        expect(peer.output()).toMatch(/subject=CN = wirelayer-test-rsa/);
        expect(peer.output()).toMatch(/issuer=CN = wirelayer, O = wirelayer/);
        const mitmcert = client!.mitmcert!;
        expect(mitmcert.subjectAltName).toBe('DNS:wirelayer-test-rsa, DNS:localhost, IP Address:127.0.0.1');
        expect(mitmcert.checkIssued(new X509Certificate(ca))).toBe(true);
        expect(server!.certificateList[0]!.fingerprint256).toBe(RSA_CERT.fingerprint256);
        // bytes both ways
        peer.child.stdin!.write('from the client\n');
        await upstream.peer.waitFor(/from the client/);
        upstream.peer.child.stdin!.write('from the server\n');
        await peer.waitFor(/from the server/);
      } finally {
        await peer.stop();
        await upstream.stop();
      }
      await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
      expect(hooks.log.filter((h) => h !== 'tcpMessage')).toEqual(
        EAGER.map((h) => (h === 'tcpEnd' && hooks.log.includes('tcpError') ? 'tcpError' : h)),
      );
      expect(hooks.log.filter((h) => h === 'tcpMessage').length).toBeGreaterThanOrEqual(2);
    });
  }

  it('passes through a flow --ignore-hosts matches: the client sees the upstream certificate, models filled from the hellos', async () => {
    for (const [version, alpn] of [
      ['TLSv1.2', 'h2'],
      ['TLSv1.3', null],
    ] as const) {
      const upstream = await startOpensslServer(
        '127.0.0.1',
        [
          '-cert',
          fixturePath('rsa-cert.pem'),
          '-key',
          fixturePath('rsa-key.pem'),
          version === 'TLSv1.3' ? '-tls1_3' : '-tls1_2',
          '-alpn',
          'h2',
        ],
        { brief: false },
      );
      const hooks = hookRecorder();
      await using proxy = await startProxy(upstream.port, {
        addons: [hooks.addon],
        ignoreHosts: ['^localhost:'],
      });
      const seen = watchModels(proxy);
      const { peer, report } = await opensslClient(portOf(proxy), [
        '-servername',
        'localhost',
        '-alpn',
        'h2,http/1.1',
        '-CAfile',
        fixturePath('rsa-cert.pem'),
        '-verify_return_error',
      ]);
      try {
        const serverReport = await upstream.report();
        // the upstream's own certificate, verified by the client against the upstream's CA
        expect(report.verifyCode).toBe(0);
        expect(peer.output()).toMatch(/issuer=CN = wirelayer-test-rsa/);
        peer.child.stdin!.write('through\n');
        await upstream.peer.waitFor(/through/);
        upstream.peer.child.stdin!.write('back\n');
        await peer.waitFor(/back/);
        const [client] = seen.clients;
        const [server] = seen.servers;
        for (const conn of [client!, server!]) {
          expect(conn.tlsVersion, version).toBe(version);
          expect(conn.cipher).toBe(report.cipher);
          expect(conn.cipher).toBe(serverReport.cipher);
          // TLS 1.2 shows the chosen ALPN in the clear; TLS 1.3 encrypts it
          expect(conn.alpn).toBe(alpn);
          expect(conn.sni).toBe('localhost');
        }
        expect(client!.alpnOffers).toEqual(['h2', 'http/1.1']);
        expect(client!.mitmcert).toBeNull();
        expect(proxy.stats.passthrough).toBe(1);
      } finally {
        await peer.stop();
        await upstream.stop();
      }
      await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
      expect(hooks.log).toEqual([
        'clientConnected',
        'serverConnect',
        'serverConnected',
        'tlsClienthello',
        'serverDisconnected',
        'clientDisconnected',
      ]);
    }
  });

  it("a client that does not trust the proxy: tlsFailedClient, mitmproxy's words on the Client", async () => {
    const { server: upstream, port } = await nodeTlsEcho({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM });
    const failed: Client[] = [];
    await using proxy = await startProxy(port, {
      addons: [{ tlsFailedClient: (d: { conn: Connection }) => void failed.push(d.conn as Client) }],
    });
    const peer = spawnPeer('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${portOf(proxy)}`,
      '-servername',
      'localhost',
      '-CAfile',
      fixturePath('rsa-cert.pem'),
      '-verify_return_error',
    ]);
    try {
      await peer.waitFor(/unable to get local issuer certificate/);
    } finally {
      await peer.stop();
    }
    await waitUntil(() => failed.length === 1, 'tlsFailedClient');
    expect(failed[0]!.error).toMatch(
      /^The client does not trust the proxy's certificate for localhost \(ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: /,
    );
    expect(proxy.stats.flowErrors).toMatchObject({ ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 1 });
    upstream.close();
  });

  it('an upstream that fails verification: tlsFailedServer, the client gets a handshake_failure alert; --insecure goes through', async () => {
    const { server: upstream, port } = await nodeTlsEcho({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM });
    const hooks = hookRecorder();
    {
      await using proxy = await startProxy(port, { upstreamCa: undefined, addons: [hooks.addon] });
      const seen = watchModels(proxy);
      const peerRun = opensslClient(portOf(proxy), ['-servername', 'localhost', '-CAfile', conf.caFile]);
      await expect(peerRun).rejects.toThrow(/alert handshake failure/);
      await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
      expect(hooks.log).toEqual([
        'clientConnected',
        'serverConnect',
        'serverConnected',
        'tlsClienthello',
        'tlsStartServer',
        'tlsFailedServer',
        'tlsFailedClient',
        'serverDisconnected',
        'clientDisconnected',
      ]);
      expect(seen.servers[0]!.error).toMatch(/^Certificate verify failed: self[- ]signed certificate/);
      expect(seen.clients[0]!.error).toMatch(/^Server TLS handshake failed\. Certificate verify failed/);
    }
    {
      await using proxy = await startProxy(port, { upstreamCa: undefined, insecure: true });
      const socket = await nodeClient(portOf(proxy));
      expect(await exchange(socket, 'insecure')).toBe('echo:insecure');
      socket.destroy();
    }
    upstream.close();
  });
});

describe('reverse:tls with Node on both sides: hooks and flows', () => {
  it('a tcpMessage hook rewrites and drops messages; the flow holds only its current message; stream record', async () => {
    const received: string[] = [];
    const { server: upstream, port } = await nodeTlsEcho({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM });
    upstream.on('secureConnection', (s) => s.on('data', (d: Buffer) => received.push(String(d))));
    const held: unknown[] = [];
    await using proxy = await startProxy(port, {
      addons: [
        {
          async tcpMessage(flow: TcpFlow) {
            held.push(Object.keys(flow).includes('messages'));
            const message = flow.message!;
            const text = Buffer.from(message.content).toString();
            // async: the flow waits for it
            await new Promise((r) => setTimeout(r, 5));
            if (message.fromClient && text === 'drop me') message.drop();
            else message.content = Buffer.from(text.replace('secret', 'public'));
          },
        },
      ],
    });
    const seen = watchModels(proxy);
    const socket = await nodeClient(portOf(proxy));
    expect(await exchange(socket, 'a secret')).toBe('echo:a public');
    socket.write('drop me');
    expect(await exchange(socket, 'last')).toBe('echo:last');
    expect(received).toEqual(['a public', 'last']);
    socket.end();
    await waitUntil(() => seen.streams.length === 1, 'the stream record');
    expect(seen.streams[0]).toEqual({
      event: 'stream',
      flow: seen.clients[0]!.id,
      client_stream_id: null,
      server_stream_id: null,
      bytes_from_client: 'a secret'.length + 'drop me'.length + 'last'.length,
      bytes_from_server: 'echo:a public'.length + 'echo:last'.length,
      end: 'fin',
    });
    expect(held.every((h) => h === false)).toBe(true);
    upstream.close();
  });

  it('ignoreConnection from tlsClienthello passes one flow through while the next is intercepted', async () => {
    const { server: upstream, port } = await nodeTlsEcho({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM });
    const snis: (string | null)[] = [];
    await using proxy = await startProxy(port, {
      addons: [
        {
          tlsClienthello(data: { clientHello: { sni: string | null }; ignoreConnection: boolean }) {
            snis.push(data.clientHello.sni);
            if (data.clientHello.sni === 'skip.localhost') data.ignoreConnection = true;
          },
        },
      ],
    });
    const skipped = await nodeClient(portOf(proxy), {
      servername: 'skip.localhost',
      ca: RSA_CERT_PEM,
      checkServerIdentity: () => undefined,
    });
    expect(skipped.getPeerX509Certificate()!.fingerprint256).toBe(RSA_CERT.fingerprint256);
    expect(await exchange(skipped, 'raw')).toBe('echo:raw');
    const intercepted = await nodeClient(portOf(proxy));
    expect(intercepted.getPeerX509Certificate()!.issuer).toBe('CN=wirelayer\nO=wirelayer');
    expect(await exchange(intercepted, 'plain')).toBe('echo:plain');
    expect(snis).toEqual(['skip.localhost', 'localhost']);
    expect(proxy.stats.passthrough).toBe(1);
    skipped.destroy();
    intercepted.destroy();
    upstream.close();
  });

  it('a hook that throws fails its flow alone (ERR_PROXY_HOOK, counted); the other flows go on', async () => {
    const { server: upstream, port } = await nodeTlsEcho({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM });
    const errors: { code: string; flow: Flow }[] = [];
    await using proxy = await startProxy(port, {
      addons: [
        {
          tlsClienthello(data: { clientHello: { sni: string | null } }) {
            if (data.clientHello.sni === 'boom.localhost') throw new Error('boom');
          },
          tcpMessage(flow: TcpFlow) {
            if (Buffer.from(flow.message!.content).toString() === 'crash') throw new Error('crash');
          },
        },
      ],
    });
    proxy.on('flowError', (err: { code: string }, flow: Flow) => errors.push({ code: err.code, flow }));
    const good = await nodeClient(portOf(proxy));
    const refused = tlsConnect({ host: '127.0.0.1', port: portOf(proxy), servername: 'boom.localhost', ca });
    const [err] = (await once(refused, 'error').catch((e: unknown) => [e])) as [Error];
    expect(err).toBeInstanceOf(Error);
    const crashing = await nodeClient(portOf(proxy));
    crashing.write('crash');
    await once(crashing, 'close');
    expect(await exchange(good, 'still here')).toBe('echo:still here');
    await waitUntil(() => errors.length === 2, 'two flow errors');
    expect(errors.map((e) => e.code)).toEqual(['ERR_PROXY_HOOK', 'ERR_PROXY_HOOK']);
    expect(errors[0]!.flow.client.error).toBe('Addon hook tlsClienthello failed: boom');
    expect(errors[1]!.flow.error).toBe('Addon hook tcpMessage failed: crash');
    expect(proxy.stats.hookErrors).toEqual({ tlsClienthello: 1, tcpMessage: 1 });
    expect(proxy.stats.flowErrors).toMatchObject({ ERR_PROXY_HOOK: 2 });
    good.destroy();
    upstream.close();
  });

  it('garbage instead of a ClientHello: the flow fails with the parse error on its Client, counted; the next flow is fine', async () => {
    const { server: upstream, port } = await nodeTlsEcho({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM });
    const hooks = hookRecorder();
    await using proxy = await startProxy(port, { addons: [hooks.addon] });
    const seen = watchModels(proxy);
    const raw = connect(portOf(proxy), '127.0.0.1');
    raw.on('error', () => undefined);
    raw.write('GET / HTTP/1.1\r\n\r\n');
    await once(raw, 'close');
    await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
    expect(hooks.log).toEqual([
      'clientConnected',
      'serverConnect',
      'serverConnected',
      'serverDisconnected',
      'clientDisconnected',
    ]);
    expect(seen.clients[0]!.error).toMatch(/^Cannot parse ClientHello: 474554/);
    expect(proxy.stats.flowErrors).toEqual({ ERR_TLS_CLIENT_HELLO: 1 });
    const socket = await nodeClient(portOf(proxy));
    expect(await exchange(socket, 'fine')).toBe('echo:fine');
    socket.destroy();
    upstream.close();
  });

  it('connection strategy lazy: the server is dialed once the client leg is up; no ALPN mirrored', async () => {
    const { server: upstream, port } = await nodeTlsEcho({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM });
    const hooks = hookRecorder();
    await using proxy = await startProxy(port, { addons: [hooks.addon], connectionStrategy: 'lazy' });
    const socket = await nodeClient(portOf(proxy), { ALPNProtocols: ['h2'] });
    expect(socket.alpnProtocol).toBe(false);
    expect(await exchange(socket, 'lazy')).toBe('echo:lazy');
    socket.end();
    await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
    expect(hooks.log.filter((h) => h !== 'tcpMessage')).toEqual([
      'clientConnected',
      'tlsClienthello',
      'tlsStartClient',
      'tlsEstablishedClient',
      'serverConnect',
      'serverConnected',
      'tlsStartServer',
      'tlsEstablishedServer',
      'tcpStart',
      'tcpEnd',
      'serverDisconnected',
      'clientDisconnected',
    ]);
    upstream.close();
  });

  it('an upstream that refuses: serverConnectError, the client is dropped; a serverConnect veto likewise', async () => {
    const hooks = hookRecorder();
    {
      // port 1: nothing listens
      await using proxy = await startProxy(1, { addons: [hooks.addon] });
      const seen = watchModels(proxy);
      const socket = tlsConnect({ host: '127.0.0.1', port: portOf(proxy), servername: 'localhost', ca });
      const [err] = (await once(socket, 'error')) as [Error];
      expect(err.message).toMatch(/socket disconnected|ECONNRESET/);
      await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
      expect(hooks.log).toEqual([
        'clientConnected',
        'serverConnect',
        'serverConnectError',
        'clientDisconnected',
      ]);
      expect(seen.servers[0]!.error).toMatch(/^Connection refused \(connect ECONNREFUSED 127\.0\.0\.1:1\)/);
    }
    {
      const { server: upstream, port } = await nodeTlsEcho({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM });
      let accepted = 0;
      upstream.on('connection', () => accepted++);
      await using proxy = await startProxy(port, {
        addons: [
          {
            serverConnect(d: { server: Server }) {
              d.server.error = 'not today';
            },
          },
        ],
      });
      const socket = tlsConnect({ host: '127.0.0.1', port: portOf(proxy), servername: 'localhost', ca });
      await once(socket, 'error');
      expect(proxy.stats.flowErrors).toEqual({ ERR_PROXY_VETO: 1 });
      expect(accepted).toBe(0);
      upstream.close();
    }
  });
});
