/**
 * `wirelayer load` against `wirelayer listen` (both ends as users run them), socat's UDP echo
 * and `openssl s_server -rev`: the JSON records, the open-loop rate, the Markdown table, errors
 * counted against a closed TCP port and silent UDP and DTLS ports within the deadline, and usage
 * errors that name the bad term.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { LoadRecord } from '../../src/load/report.js';
import { CLI, jsonLines, runCli } from '../cli/run.js';
import { fixturePath } from '../helpers/certs.js';
import { type PeerProcess, spawnPeer } from '../helpers/peer.js';
import { freeTcpPort, freeUdpPort, waitForTcpPort } from '../helpers/ports.js';

const peers: PeerProcess[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.stop()));
  for (const s of sockets.splice(0)) s.close();
});

/** `wirelayer listen URL --BEHAVIOUR`, resolved with its bound port. */
async function listen(scheme: string, behaviour: string): Promise<number> {
  const peer = spawnPeer(process.execPath, [CLI, 'listen', `${scheme}://127.0.0.1:0`, `--${behaviour}`]);
  peers.push(peer);
  const m = await peer.waitFor(new RegExp(`listening on ${scheme}://127\\.0\\.0\\.1:(\\d+)`), 20_000);
  return Number(m[1]);
}

const records = (stdout: string): LoadRecord[] => jsonLines(stdout) as unknown as LoadRecord[];

const KEYS = [
  'event',
  'scheme',
  'seconds',
  'messages',
  'messages_per_s',
  'bytes_per_s',
  'sent',
  'received',
  'loss',
  'latency_ms',
  'handshakes',
  'handshake_ms',
  'errors',
  'cpu_percent',
];

describe('wirelayer load against wirelayer listen', () => {
  it('--rate 2000 --duration 2 --json: ~4000 sent on schedule, one record per second and a summary', async () => {
    const port = await listen('tcp', 'echo');
    const r = await runCli(
      ['load', `tcp://127.0.0.1:${port}`, '--rate', '2000', '--duration', '2', '--json'],
      30_000,
    );
    expect(r.code, r.stderr).toBe(0);
    // stderr is not a terminal here: no progress line
    expect(r.stderr).not.toContain('wirelayer load:');
    const all = records(r.stdout);
    for (const rec of all) {
      expect(Object.keys(rec)).toEqual(KEYS);
      expect(Object.keys(rec.latency_ms)).toEqual(['p50', 'p90', 'p99', 'p999', 'max']);
      expect(Object.keys(rec.handshake_ms)).toEqual(['p50', 'p90', 'p99', 'p999', 'max']);
      expect(rec.scheme).toBe('tcp');
      expect(rec.loss).toBeNull(); // a stream loses nothing
    }
    const summary = all.at(-1)!;
    const intervals = all.slice(0, -1);
    expect(summary.event).toBe('summary');
    expect(intervals.length).toBeGreaterThanOrEqual(2);
    expect(intervals.every((rec) => rec.event === 'interval')).toBe(true);
    expect(summary.sent).toBeGreaterThanOrEqual(3900);
    expect(summary.sent).toBeLessThanOrEqual(4000);
    expect(summary.received).toBe(summary.sent);
    expect(summary.messages_per_s).toBeGreaterThan(1800);
    expect(summary.messages_per_s).toBeLessThan(2200);
    expect(summary.seconds).toBeGreaterThan(1.9);
    expect(summary.bytes_per_s).toBeCloseTo(summary.messages_per_s * 64, -3);
    expect(summary.latency_ms.p50).toBeGreaterThan(0);
    expect(summary.handshakes).toBe(1);
    expect(summary.errors).toEqual({});
    expect(summary.cpu_percent).toBeGreaterThan(0);
    expect(intervals.reduce((n, rec) => n + rec.messages, 0)).toBe(summary.messages);
  });

  it('the Markdown table: a row per interval and the summary', async () => {
    const port = await listen('udp', 'source');
    const r = await runCli([
      'load',
      `udp://127.0.0.1:${port}`,
      '--mode',
      'receive',
      '--count',
      '500',
      '--window',
      '8',
      '--size',
      '1200',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\| event \| s \| messages \| msg\/s \| MB\/s \| sent \| received \| loss \|/);
    expect(lines[1]).toMatch(/^\|---\|/);
    const summary = lines
      .at(-1)!
      .split('|')
      .map((c) => c.trim());
    expect(summary[1]).toBe('summary');
    expect(summary[3]).toBe('500'); // messages
    expect(summary[7]).toBe('500'); // received
    expect(summary[8]).toBe('0.00%'); // loss
  });

  it('quic --handshakes: a session per request', async () => {
    const port = await listen('quic', 'echo');
    const r = await runCli([
      'load',
      `quic://127.0.0.1:${port}`,
      '--insecure',
      '--handshakes',
      '--count',
      '10',
      '--connections',
      '2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = records(r.stdout).at(-1)!;
    expect(summary).toMatchObject({
      event: 'summary',
      handshakes: 10,
      messages: 10,
      received: 10,
      errors: {},
    });
    expect(summary.handshake_ms.p50).toBeGreaterThan(0);
  });

  it('dtls --mode send against --discard', async () => {
    const port = await listen('dtls', 'discard');
    const r = await runCli([
      'load',
      `dtls://127.0.0.1:${port}`,
      '--insecure',
      '--mode',
      'send',
      '--rate',
      '4000',
      '--count',
      '400',
      '--size',
      '1K',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = records(r.stdout).at(-1)!;
    expect(summary).toMatchObject({ messages: 400, sent: 400, received: null, loss: null, errors: {} });
    expect(summary.bytes_per_s).toBeGreaterThan(0);
  });
});

describe('wirelayer load against other peers', () => {
  // one in flight: socat's PIPE can join two waiting datagrams into one answer
  it('udp against a socat echo', async () => {
    const port = await freeUdpPort('127.0.0.1');
    const peer = spawnPeer('socat', [
      '-d',
      '-d',
      '-T',
      '10',
      `UDP4-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`,
      'PIPE',
    ]);
    peers.push(peer);
    await peer.waitFor(/listening on/);
    const r = await runCli(['load', `udp://127.0.0.1:${port}`, '--count', '1000', '--size', '512', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(records(r.stdout).at(-1)).toMatchObject({ sent: 1000, received: 1000, loss: 0, errors: {} });
  });

  it('tls against openssl s_server -rev (each line reversed: as many bytes back)', async () => {
    const port = await freeTcpPort('127.0.0.1');
    const peer = spawnPeer('openssl', [
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-cert',
      fixturePath('ec-cert.pem'),
      '-key',
      fixturePath('ec-key.pem'),
      '-rev',
      '-quiet',
    ]);
    peers.push(peer);
    await waitForTcpPort('127.0.0.1', port);
    const r = await runCli([
      'load',
      `tls://127.0.0.1:${port}`,
      '--insecure',
      '--count',
      '500',
      '--window',
      '4',
      '--size',
      '100',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = records(r.stdout).at(-1)!;
    expect(summary).toMatchObject({ sent: 500, received: 500, messages: 500, handshakes: 1, errors: {} });
    expect(summary.latency_ms.p99).toBeGreaterThan(0);
  });
});

describe('wirelayer load when nothing answers', () => {
  it('a closed TCP port: connects refused, counted, exit 1 at the deadline', async () => {
    const port = await freeTcpPort('127.0.0.1');
    const began = performance.now();
    const r = await runCli(['load', `tcp://127.0.0.1:${port}`, '--duration', '1', '--json']);
    expect(performance.now() - began).toBeLessThan(10_000);
    expect(r.code).toBe(1);
    const summary = records(r.stdout).at(-1)!;
    expect(summary).toMatchObject({ event: 'summary', messages: 0, sent: 0, handshakes: 0 });
    // the first dial and the redials over the second
    expect(summary.errors.ECONNREFUSED).toBeGreaterThanOrEqual(2);
  });

  /** A UDP socket that reads and never answers. */
  async function silentUdpPort(): Promise<number> {
    const socket = createSocket('udp4');
    sockets.push(socket);
    socket.on('message', () => {});
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    return socket.address().port;
  }

  it('a silent UDP port: every datagram lost, within the deadline', async () => {
    const port = await silentUdpPort();
    const began = performance.now();
    const r = await runCli([
      'load',
      `udp://127.0.0.1:${port}`,
      '--rate',
      '200',
      '--duration',
      '1',
      '--timeout',
      '300',
      '--json',
    ]);
    expect(performance.now() - began).toBeLessThan(10_000);
    expect(r.code).toBe(0); // the socket came up; nothing came back
    const summary = records(r.stdout).at(-1)!;
    expect(summary).toMatchObject({ sent: 200, received: 0, loss: 1, messages: 0 });
    expect(summary.latency_ms.p50).toBeNull();
  });

  it('a silent DTLS port: handshakes time out, counted, exit 1 at the deadline', async () => {
    const port = await silentUdpPort();
    const began = performance.now();
    const r = await runCli([
      'load',
      `dtls://127.0.0.1:${port}`,
      '--duration',
      '1',
      '--connect-timeout',
      '300',
      '--connections',
      '2',
      '--json',
    ]);
    expect(performance.now() - began).toBeLessThan(10_000);
    expect(r.code).toBe(1);
    const summary = records(r.stdout).at(-1)!;
    expect(summary.handshakes).toBe(0);
    expect(summary.errors.ETIMEDOUT).toBeGreaterThanOrEqual(2);
  });
});

describe('wirelayer load: bad usage', () => {
  it.each([
    [['--rate', '0'], '--rate'],
    [['--rate', 'fast'], '--rate'],
    [['--rate', '10', '--window', '2'], '--window'],
    [['--duration', '1', '--count', '5'], '--count'],
    [['--streams', '2'], '--streams'],
    [['--datagrams'], '--datagrams'],
    [['--mode', 'sideways'], '--mode'],
    [['--size', '10Q'], '--size'],
    [['--connections', '0'], '--connections'],
    [['--connect-timeout', '-1'], '--connect-timeout'],
    [['--bogus'], "'--bogus'"],
  ])('%j is a usage error naming %s (exit 2)', async (args, term) => {
    const r = await runCli(['load', 'tcp://127.0.0.1:9', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(term);
    expect(r.stdout).toBe('');
  });

  it('a bad target or scheme', async () => {
    for (const target of ['tcp://127.0.0.1', 'sctp://127.0.0.1:9', 'tcp://127.0.0.1:0']) {
      const r = await runCli(['load', target]);
      expect(r.code, target).toBe(2);
    }
    const datagram = await runCli(['load', 'udp://127.0.0.1:9', '--size', '8']);
    expect(datagram.code).toBe(2);
    expect(datagram.stderr).toContain('--size');
  });

  it('listen takes one behaviour', async () => {
    const r = await runCli(['listen', 'tcp://127.0.0.1:0', '--echo', '--source']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--echo --source');
  });
});
