/**
 * Key logs (SSLKEYLOGFILE format) that Wireshark can use: a capture on loopback is decrypted
 * by tshark with the file our client wrote, and not without it.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/connection/index.js';
import { quic } from '../../src/transport/quic/index.js';
import type { QuicSession } from '../../src/transport/quic/session.js';
import { startLoopbackCapture } from '../helpers/capture.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';

const dir = mkdtempSync(join(tmpdir(), 'wirelayer-quic-keylog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The hex of every decrypted STREAM frame's data in a capture. */
function streamData(capture: string, keylog?: string): string[] {
  const args = ['-r', capture, '-Y', 'quic.stream_data', '-T', 'fields', '-e', 'quic.stream_data'];
  if (keylog) args.unshift('-o', `tls.keylog_file:${keylog}`);
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    .split('\n')
    .filter((l) => l.length > 0);
}

describe('QUIC key log', () => {
  it('writes lines tshark decrypts a capture with; the callback form gets the same secrets', async () => {
    const serverLines: string[] = [];
    await using listener = await quic.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      keylog: (line) => serverLines.push(line.toString()),
    });
    const port = listener.address[1];
    const capture = join(dir, 'quic.pcapng');
    const keylog = join(dir, 'keys.log');
    const tshark = await startLoopbackCapture(`udp port ${port}`, capture);
    try {
      const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
      const out = await quic.connect({ host: '127.0.0.1', port, ca: EC_CERT_PEM, keylog });
      const [inbound] = await accepted;
      inbound.stream.pipe(inbound.stream);
      const secret = 'a secret only the key log reveals';
      out.stream.write(secret);
      await once(out.stream, 'data');
      await out.close();
      await tshark.stop();

      const lines = readFileSync(keylog, 'utf8').trim().split('\n');
      const labels = lines.map((l) => l.split(' ')[0]);
      for (const label of [
        'CLIENT_HANDSHAKE_TRAFFIC_SECRET',
        'SERVER_HANDSHAKE_TRAFFIC_SECRET',
        'CLIENT_TRAFFIC_SECRET_0',
        'SERVER_TRAFFIC_SECRET_0',
      ]) {
        expect(labels).toContain(label);
      }
      expect(serverLines.map((l) => l.trim()).sort()).toEqual([...lines].sort());

      const hex = Buffer.from(secret).toString('hex');
      expect(streamData(capture, keylog)).toContain(hex);
      expect(streamData(capture)).not.toContain(hex);
    } finally {
      await tshark.stop();
    }
  });
});
