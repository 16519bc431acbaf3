/**
 * socks5 mode, CONNECT: Debian's curl (`--socks5`: curl resolves, `--socks5-hostname`: we do)
 * through the proxy to an HTTPS server of ours, the TLS intercepted (curl trusting the wirelayer
 * CA) or passed through (`ignoreHosts`, curl trusting the upstream itself); plain TCP relayed.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection, Server } from '../../src/connection/index.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { fixturePath, RSA_CERT, RSA_CERT_PEM, RSA_KEY_PEM } from '../helpers/certs.js';
import { waitUntil } from '../helpers/wait.js';
import { hookRecorder, tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();
let upstream: HttpsServer;
let upstreamPort: number;

beforeAll(async () => {
  // the CA is made once, before the tests that hand it to curl
  await (await WirelayerProxy.start({ modes: ['socks5@0'], confdir: conf.dir })).close();
  upstream = createHttpsServer(
    { cert: RSA_CERT_PEM, key: RSA_KEY_PEM, ALPNProtocols: ['http/1.1'] },
    (req, res) => {
      res.end(`hello from upstream: ${req.method} ${req.url}`);
    },
  );
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  upstreamPort = (upstream.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((r) => upstream.close(r));
  conf.remove();
});

function startProxy(options: Partial<ProxyOptions> = {}): Promise<WirelayerProxy> {
  return WirelayerProxy.start({
    modes: ['socks5'],
    listenPort: 0,
    confdir: conf.dir,
    upstreamCa: RSA_CERT_PEM,
    ...options,
  });
}

/** Runs curl (bounded); resolves with its exit code and output. */
function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The legs the proxy reported, last of each kind. */
function legs(proxy: WirelayerProxy): { client: () => Client; server: () => Server; servers: Server[] } {
  let client: Client | undefined;
  const servers: Server[] = [];
  proxy.on('model', (_e: string, conn: Connection) => {
    if (conn.constructor.name === 'Client') client = conn as Client;
    else if (!servers.includes(conn as Server)) servers.push(conn as Server);
  });
  return { client: () => client!, server: () => servers.at(-1)!, servers };
}

describe('socks5 CONNECT with curl', () => {
  it('curl --socks5 (curl resolves): TLS intercepted with a leaf of our CA, models filled, hooks in reverse:tls order', async () => {
    const hooks = hookRecorder();
    await using proxy = await startProxy({ addons: [hooks.addon] });
    const seen = legs(proxy);
    const port = proxy.listening[0]!.address[1];
    const r = await curl([
      '--socks5',
      `127.0.0.1:${port}`,
      '--resolve',
      `localhost:${upstreamPort}:127.0.0.1`,
      '--cacert',
      conf.caFile,
      `https://localhost:${upstreamPort}/intercepted`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello from upstream: GET /intercepted');
    await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
    const client = seen.client();
    const server = seen.server();
    expect(client.proxyMode).toBe('socks5');
    expect(client.sni).toBe('localhost');
    expect(client.tlsVersion).toBe('TLSv1.3');
    expect(client.mitmcert!.subjectAltName).toContain('DNS:localhost');
    expect(client.mitmcert!.issuer).toMatch(/CN=wirelayer/);
    // the request's address (ATYP 1: curl resolved it), dialed as such
    expect(server.address).toEqual(['127.0.0.1', upstreamPort]);
    expect(server.peername).toEqual(['127.0.0.1', upstreamPort]);
    expect(server.certificateList[0]!.fingerprint256).toBe(RSA_CERT.fingerprint256);
    expect(server.sni).toBe('localhost');
    expect(hooks.log.filter((h) => h !== 'tcpMessage')).toEqual([
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
    ]);
    expect(proxy.stats.socks5).toMatchObject({ connections: 1, connects: 1, refusals: {} });
  });

  it('curl --socks5-hostname (we resolve): the name stays the server address host', async () => {
    await using proxy = await startProxy();
    const seen = legs(proxy);
    const port = proxy.listening[0]!.address[1];
    const r = await curl([
      '--socks5-hostname',
      `127.0.0.1:${port}`,
      '--cacert',
      conf.caFile,
      `https://localhost:${upstreamPort}/by-name`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello from upstream: GET /by-name');
    await waitUntil(
      () => seen.servers.length > 0 && seen.server().timestampEnd !== null,
      'the server leg to close',
    );
    const server = seen.server();
    expect(server.address).toEqual(['localhost', upstreamPort]);
    expect(server.peername).toEqual(['127.0.0.1', upstreamPort]);
    expect(server.sni).toBe('localhost');
  });

  it('ignoreHosts: the TLS is passed through (curl sees and verifies the upstream certificate itself)', async () => {
    const hooks = hookRecorder();
    await using proxy = await startProxy({ addons: [hooks.addon], ignoreHosts: ['^localhost:'] });
    const seen = legs(proxy);
    const port = proxy.listening[0]!.address[1];
    const r = await curl([
      '--socks5-hostname',
      `127.0.0.1:${port}`,
      '--cacert',
      fixturePath('rsa-cert.pem'),
      `https://localhost:${upstreamPort}/passed`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello from upstream: GET /passed');
    await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
    expect(proxy.stats.passthrough).toBe(1);
    const client = seen.client();
    expect(client.mitmcert).toBeNull();
    expect(client.sni).toBe('localhost');
    expect(client.tlsVersion).toBe('TLSv1.3');
    expect(hooks.log).toEqual([
      'clientConnected',
      'serverConnect',
      'serverConnected',
      'tlsClienthello',
      'serverDisconnected',
      'clientDisconnected',
    ]);
  });

  it('plain TCP after CONNECT: relayed as reverse:tcp (tcp hooks), the server model without TLS', async () => {
    const echo = createTcpServer((s) => s.once('data', (d) => s.end(`echo:${d}`)));
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const echoPort = (echo.address() as { port: number }).port;
    const hooks = hookRecorder();
    await using proxy = await startProxy({ addons: [hooks.addon] });
    const seen = legs(proxy);
    const port = proxy.listening[0]!.address[1];
    try {
      // curl speaks plain HTTP to a server that answers with an echo of the request line
      const r = await curl([
        '--socks5',
        `127.0.0.1:${port}`,
        '--http0.9',
        `http://127.0.0.1:${echoPort}/plain`,
      ]);
      expect(r.stdout).toMatch(/^echo:GET \/plain HTTP\/1\.1/);
      await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
      expect(seen.server().tls).toBe(false);
      expect(seen.client().tls).toBe(false);
      expect(hooks.log.filter((h) => h !== 'tcpMessage')).toEqual([
        'clientConnected',
        'serverConnect',
        'serverConnected',
        'tcpStart',
        'tcpEnd',
        'serverDisconnected',
        'clientDisconnected',
      ]);
    } finally {
      echo.close();
    }
  });
});
