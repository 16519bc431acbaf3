/**
 * Key log: both roles write NSS key log lines, and Wireshark (tshark) decrypts a capture of the
 * session with them.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Client, Connection } from '../../src/connection/index.js';
import { type TlsSession, tls } from '../../src/transport/tls/index.js';
import { startLoopbackCapture } from '../helpers/capture.js';
import { RSA_CERT_PEM, RSA_KEY_PEM } from '../helpers/certs.js';

const HOST = '127.0.0.1';
const dir = mkdtempSync(join(tmpdir(), 'wirelayer-keylog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('key log', () => {
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`${version}: lines from both roles, and tshark decrypts the HTTP inside`, async () => {
      const keylogFile = join(dir, `keys-${version}.log`);
      const pcap = join(dir, `session-${version}.pcapng`);
      const clientLines: string[] = [];
      const conns = new Set<Connection>();
      await using listener = await tls.listen({
        host: HOST,
        cert: RSA_CERT_PEM,
        key: RSA_KEY_PEM,
        ALPNProtocols: ['http/1.1'],
        keylog: keylogFile,
      });
      const port = listener.address[1];
      const capture = await startLoopbackCapture(`tcp port ${port}`, pcap);
      try {
        listener.once('session', (s: TlsSession<Client>) => {
          s.stream.once('data', () =>
            s.stream.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello'),
          );
        });
        const session = await tls.connect({
          host: HOST,
          port,
          ca: RSA_CERT_PEM,
          servername: 'localhost',
          ALPNProtocols: ['http/1.1'],
          maxVersion: version,
          keylog: (line, conn) => {
            clientLines.push(line.toString());
            conns.add(conn);
          },
        });
        expect(session.conn.tlsVersion).toBe(version);
        session.stream.write('GET /secret HTTP/1.1\r\nHost: localhost\r\n\r\n');
        session.stream.resume();
        await once(session.stream, 'end');
        await session.close();
        expect([...conns]).toEqual([session.conn]);
      } finally {
        await capture.stop();
      }
      const fileLines = readFileSync(keylogFile, 'utf8').split('\n').filter(Boolean);
      const expectedLabels =
        version === 'TLSv1.2'
          ? ['CLIENT_RANDOM']
          : [
              'CLIENT_HANDSHAKE_TRAFFIC_SECRET',
              'CLIENT_TRAFFIC_SECRET_0',
              'EXPORTER_SECRET',
              'SERVER_HANDSHAKE_TRAFFIC_SECRET',
              'SERVER_TRAFFIC_SECRET_0',
            ];
      expect([...new Set(fileLines.map((l) => l.split(' ')[0]))].sort()).toEqual(expectedLabels);
      // the server's lines (file) and the client's (callback) carry the same secrets
      expect(clientLines.map((l) => l.trim()).sort()).toEqual([...fileLines].sort());

      const decoded = execFileSync(
        'tshark',
        [
          '-r',
          pcap,
          '-o',
          `tls.keylog_file:${keylogFile}`,
          '-d',
          `tcp.port==${port},tls`,
          '-Y',
          'http',
          '-T',
          'fields',
          '-e',
          'http.request.uri',
          '-e',
          'http.response.code',
        ],
        { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] },
      );
      expect(decoded).toContain('/secret');
      expect(decoded).toMatch(/\b200\b/);
      // without the key log nothing decrypts
      const blind = execFileSync('tshark', ['-r', pcap, '-d', `tcp.port==${port},tls`, '-Y', 'http'], {
        encoding: 'utf8',
        timeout: 20_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      expect(blind.trim()).toBe('');
    });
  }
});
