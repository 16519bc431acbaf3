/**
 * `keylog` of the proxy: both legs' secrets in one file, and tshark decrypts both legs of a
 * capture with it (the HTTP request seen on the client leg and again on the server leg).
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, connect as tlsConnect } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { startLoopbackCapture } from '../helpers/capture.js';
import { RSA_CERT_PEM, RSA_KEY_PEM } from '../helpers/certs.js';
import { tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();
afterAll(() => conf.remove());

describe('the proxy key log', () => {
  it('decrypts both legs of an intercepted TLS flow with tshark', async () => {
    const keylog = join(conf.dir, 'keys.log');
    const pcap = join(conf.dir, 'both-legs.pcapng');
    const upstream = createServer(
      { cert: RSA_CERT_PEM, key: RSA_KEY_PEM, ALPNProtocols: ['http/1.1'] },
      (s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello')),
    );
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const upstreamPort = (upstream.address() as { port: number }).port;
    await using proxy = await WirelayerProxy.start({
      modes: [`reverse:tls://127.0.0.1:${upstreamPort}`],
      confdir: conf.dir,
      upstreamCa: RSA_CERT_PEM,
      keylog,
    });
    const proxyPort = proxy.listening[0]!.address[1];
    const capture = await startLoopbackCapture(`tcp port ${proxyPort} or tcp port ${upstreamPort}`, pcap);
    try {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: proxyPort,
        servername: 'localhost',
        ca: readFileSync(conf.caFile, 'utf8'),
        ALPNProtocols: ['http/1.1'],
      });
      await once(socket, 'secureConnect');
      socket.write('GET /both-legs HTTP/1.1\r\nHost: localhost\r\n\r\n');
      socket.resume();
      await once(socket, 'end');
      socket.destroy();
    } finally {
      await capture.stop();
      upstream.close();
    }
    const decoded = execFileSync(
      'tshark',
      [
        '-r',
        pcap,
        '-o',
        `tls.keylog_file:${keylog}`,
        '-d',
        `tcp.port==${proxyPort},tls`,
        '-d',
        `tcp.port==${upstreamPort},tls`,
        '-Y',
        'http.request',
        '-T',
        'fields',
        '-e',
        'tcp.dstport',
        '-e',
        'http.request.uri',
      ],
      { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const requests = decoded
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(requests).toContainEqual([String(proxyPort), '/both-legs']);
    expect(requests).toContainEqual([String(upstreamPort), '/both-legs']);
  });
});
