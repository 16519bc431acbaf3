/**
 * Peer streams that become readable out of order (quiche lists readable streams in no order):
 * a stream the peer opened below the highest one seen is still announced and read, in ID order
 * (RFC 9000 3.2: opening stream N opens the lower ones of its type). HTTP/3's QPACK streams
 * depend on it; the intercepting proxy found it.
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Client } from '../../src/connection/index.js';
import { quic } from '../../src/transport/quic/index.js';
import type { QuicSession } from '../../src/transport/quic/session.js';
import type { QuicStream } from '../../src/transport/quic/stream.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import { waitUntil } from '../helpers/wait.js';

async function readAll(stream: QuicStream): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await once(stream, 'end');
  return Buffer.concat(chunks).toString();
}

describe('peer streams seen out of order', () => {
  it('a unidirectional stream written before two lower ones: all three announced in ID order, each read whole', async () => {
    await using listener = await quic.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      ALPNProtocols: ['x'],
    });
    const announced: QuicStream[] = [];
    listener.on('session', (s: QuicSession<Client>) =>
      s.on('stream', (st: QuicStream) => announced.push(st)),
    );
    await using session = await quic.connect({
      host: '127.0.0.1',
      port: listener.address[1],
      rejectUnauthorized: false,
      ALPNProtocols: ['x'],
    });
    const [a, b, c] = [0, 1, 2].map(() => session.openStream({ bidirectional: false }));
    c!.end('third');
    await waitUntil(() => announced.length === 3, 'three streams announced');
    expect(announced.map((s) => s.id)).toEqual([2, 6, 10]);
    const reads = announced.map(readAll);
    a!.end('first');
    b!.end('second');
    expect(await Promise.all(reads)).toEqual(['first', 'second', 'third']);
  });
});
