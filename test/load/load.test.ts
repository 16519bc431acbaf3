/**
 * load() against real listeners of every driver on loopback, served by serve() (what
 * `wirelayer listen --echo | --discard | --source` runs): the counts the generator reports must
 * match what the server saw, for each scheme and mode, and for a session per request.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '../../src/connection/index.js';
import { load } from '../../src/load/index.js';
import { type ServeBehaviour, serve } from '../../src/load/serve.js';
import { type LoadOptions, planLoad } from '../../src/load/spec.js';
import { drivers } from '../../src/transport/index.js';
import type { AnySession, Listener, Scheme } from '../../src/transport/types.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import { waitUntil } from '../helpers/wait.js';

/** What the server received, counted beside the behaviour serving it. */
interface Seen {
  sessions: number;
  bytes: number;
  datagrams: number;
}

let listener: Listener | null = null;

afterEach(async () => {
  await listener?.close();
  listener = null;
});

function countStream(stream: NodeJS.ReadableStream, seen: Seen): void {
  stream.on('data', (chunk: Buffer) => {
    seen.bytes += chunk.length;
  });
}

async function server(scheme: Scheme, behaviour: ServeBehaviour): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { sessions: 0, bytes: 0, datagrams: 0 };
  listener = await drivers[scheme]!.listen({
    host: '127.0.0.1',
    port: 0,
    cert: EC_CERT_PEM,
    key: EC_KEY_PEM,
  });
  listener.on('session', (session: AnySession<Client>) => {
    seen.sessions++;
    serve(session, behaviour);
    if ('stream' in session) {
      countStream(session.stream, seen);
      if (scheme === 'quic') session.on('stream', (s: NodeJS.ReadableStream) => countStream(s, seen));
    }
    if ('datagrams' in session)
      session.datagrams.on('datagram', () => {
        seen.datagrams++;
      });
  });
  return { port: listener.address[1], seen };
}

const client = (scheme: Scheme, port: number, o: Partial<LoadOptions>): LoadOptions => ({
  scheme,
  host: '127.0.0.1',
  port,
  rejectUnauthorized: false,
  timeout: 3000,
  ...o,
});

/** Each scheme as the generator sees it: a stream of bytes, or datagrams. */
const CASES: { name: string; scheme: Scheme; extra: Partial<LoadOptions> }[] = [
  { name: 'tcp', scheme: 'tcp', extra: {} },
  { name: 'tls', scheme: 'tls', extra: {} },
  { name: 'udp', scheme: 'udp', extra: {} },
  { name: 'dtls', scheme: 'dtls', extra: {} },
  { name: 'quic, 3 streams', scheme: 'quic', extra: { streams: 3 } },
  { name: 'quic DATAGRAM frames', scheme: 'quic', extra: { datagrams: true } },
];
const N = 300;
const SIZE = 200;

/**
 * QUIC DATAGRAM frames sent in the first milliseconds after connect() resolves are sometimes
 * lost when the machine is busy (seen with the driver alone, no load code: the client's queue
 * empty, the server's session up, nothing delivered; never a later datagram). Unreliable by
 * design (RFC 9221), so over QUIC the counts must agree with each other, and at most the first
 * few may be missing.
 */
function lossAllowed(scheme: Scheme, extra: Partial<LoadOptions>, sent: number): number {
  return scheme === 'quic' && extra.datagrams ? Math.ceil(sent * 0.05) : 0;
}

describe.each(CASES)('load $name', ({ scheme, extra }) => {
  const datagram = planLoad(client(scheme, 1, extra)).datagram;

  it('echo: every message comes back, each round trip timed', async () => {
    const { port, seen } = await server(scheme, 'echo');
    const intervals: unknown[] = [];
    const r = await load(
      client(scheme, port, {
        ...extra,
        count: N,
        size: SIZE,
        window: 4,
        onInterval: (i) => intervals.push(i),
      }),
    );
    const missing = N - r.received!;
    expect(missing).toBeLessThanOrEqual(lossAllowed(scheme, extra, N));
    expect(r).toMatchObject({
      event: 'summary',
      scheme,
      messages: N - missing,
      sent: N,
      handshakes: 1,
      errors: {},
    });
    expect(r.loss).toBe(datagram ? Math.round((missing / N) * 1e6) / 1e6 : null);
    expect(r.latency_ms.p50).toBeGreaterThan(0);
    expect(r.latency_ms.max).toBeGreaterThanOrEqual(r.latency_ms.p999!);
    expect(r.bytes_per_s).toBeGreaterThan(0);
    expect(intervals.length).toBeGreaterThanOrEqual(1);
    if (datagram) expect(seen.datagrams).toBe(N - missing);
    else expect(seen.bytes).toBe(N * SIZE);
  });

  it('send: every message reaches a discard server', async () => {
    const { port, seen } = await server(scheme, 'discard');
    // datagrams have no flow control: paced, so none is dropped by a receive buffer
    const pace = datagram ? { rate: 5000 } : {};
    const r = await load(client(scheme, port, { ...extra, mode: 'send', count: N, size: SIZE, ...pace }));
    expect(r).toMatchObject({ messages: N, sent: N, received: null, loss: null, errors: {} });
    expect(r.latency_ms.p50).toBeNull();
    expect(r.bytes_per_s).toBeGreaterThan(0);
    const allowed = lossAllowed(scheme, extra, N);
    if (datagram)
      await waitUntil(
        () => seen.datagrams >= N - allowed,
        `${N} datagrams at the server (${seen.datagrams})`,
      );
    else await waitUntil(() => seen.bytes === N * SIZE, `${N * SIZE} bytes at the server (${seen.bytes})`);
  });

  it('receive: messages from a source, as many as asked for', async () => {
    const { port, seen } = await server(scheme, 'source');
    const r = await load(client(scheme, port, { ...extra, mode: 'receive', count: N, size: SIZE }));
    const missing = N - r.received!;
    expect(missing).toBeLessThanOrEqual(lossAllowed(scheme, extra, N));
    expect(r).toMatchObject({ messages: N - missing, errors: {} });
    expect(r.bytes_per_s).toBeGreaterThan(0);
    if (datagram) {
      // one small request per answer, each answer `size` bytes and timed
      expect(r).toMatchObject({ sent: N, loss: Math.round((missing / N) * 1e6) / 1e6 });
      expect(r.latency_ms.p50).toBeGreaterThan(0);
      expect(seen.datagrams).toBe(N - missing);
    } else {
      expect(r).toMatchObject({ sent: null, loss: null });
      expect(r.latency_ms.p50).toBeNull();
    }
  });

  it('handshakes: a session per request, each counted at both ends', async () => {
    const { port, seen } = await server(scheme, 'echo');
    const r = await load(client(scheme, port, { ...extra, handshakes: true, count: 12, connections: 3 }));
    const missing = 12 - r.received!;
    expect(missing).toBeLessThanOrEqual(lossAllowed(scheme, extra, 12) + 2);
    expect(r).toMatchObject({ handshakes: 12, messages: 12 - missing, sent: 12, errors: {} });
    expect(r.handshake_ms.p50).toBeGreaterThan(0);
    expect(r.latency_ms.p50).toBeGreaterThan(0);
    await waitUntil(() => seen.sessions === 12, `12 sessions at the server (${seen.sessions})`);
  });
});

describe('load, bounded', () => {
  it('stops at its duration with the rate it was given (open loop)', async () => {
    const { port } = await server('udp', 'echo');
    const records: number[] = [];
    const r = await load(
      client('udp', port, {
        rate: 1000,
        duration: 1.5,
        interval: 500,
        onInterval: (i) => records.push(i.sent ?? -1),
      }),
    );
    expect(r.sent).toBe(1500);
    expect(r.received).toBe(1500);
    expect(r.loss).toBe(0);
    expect(r.seconds).toBeGreaterThan(1.4);
    expect(records.reduce((a, b) => a + b, 0)).toBe(1500);
    expect(records.length).toBeGreaterThanOrEqual(3);
  });

  it('an abort ends the run early with a summary', async () => {
    const { port } = await server('tcp', 'echo');
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    const began = performance.now();
    const r = await load(client('tcp', port, { duration: 30, window: 2, signal: stop.signal }));
    expect(performance.now() - began).toBeLessThan(5000);
    expect(r.messages).toBeGreaterThan(0);
    expect(r.received).toBe(r.sent);
  });

  it('rejects bad options before dialing anything', async () => {
    await expect(load(client('tcp', 9, { rate: -5 }))).rejects.toMatchObject({
      code: 'ERR_LOAD_OPTION',
      option: 'rate',
    });
  });
});
