/**
 * The native datagram socket (native/udp/) on loopback, against itself and against node:dgram:
 * what arrives (bytes, boundaries, senders, the local address it arrived on), batches, GSO and
 * GRO, truncation, ICMP errors, one flooded socket beside a quiet one, and the error shapes
 * node:dgram gives. The same socket interface over node:dgram is checked where it can be.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { formatIpv6 } from '../../src/transport/datagram/address.js';
import {
  type DatagramBackend,
  type DatagramSocket,
  datagramAddonPath,
  datagramBackend,
  NativeDatagramSocket,
  openDatagramSocket,
  type ReceiveInfo,
} from '../../src/transport/datagram/index.js';
import { freeUdpPort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait.js';

interface Received {
  data: Buffer;
  address: string;
  port: number;
  localAddress: string | null;
  segment: number;
}

const open: DatagramSocket[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function socket(
  options: Partial<Parameters<typeof openDatagramSocket>[0]> & { backend?: DatagramBackend } = {},
): Promise<{ socket: DatagramSocket; received: Received[] }> {
  const s = await openDatagramSocket({ family: 4, address: '127.0.0.1', backend: 'native', ...options });
  open.push(s);
  const received: Received[] = [];
  s.onMessage((data: Buffer, address: string, port: number, info: ReceiveInfo) =>
    received.push({
      data: Buffer.from(data),
      address,
      port,
      localAddress: info.localAddress,
      segment: info.segment,
    }),
  );
  return { socket: s, received };
}

async function dgramSocket(host = '127.0.0.1'): Promise<Socket> {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.bind(0, host);
  await once(s, 'listening');
  return s;
}

const closeDgram = (s: Socket): Promise<void> => new Promise((r) => s.close(() => r()));

describe('native datagram socket', () => {
  it('is the backend here (Linux, the addon built), loaded from build/Release in the clone', () => {
    expect(datagramAddonPath()).toMatch(/build\/Release\/wirelayer_udp\.node$/);
    expect(datagramBackend()).toBe(process.env.WIRELAYER_DATAGRAM === 'dgram' ? 'dgram' : 'native');
  });

  for (const host of ['127.0.0.1', '::1'] as const) {
    it(`carries datagrams both ways, boundaries, empty and 65,507-byte ones included, with node:dgram (${host})`, async () => {
      const family = host.includes(':') ? 6 : 4;
      const { socket: a, received } = await socket({ family, address: host });
      const peer = await dgramSocket(host);
      try {
        const sizes = [0, 1, 1200, family === 4 ? 65_507 : 65_527, 0, 7];
        for (const [i, n] of sizes.entries()) peer.send(Buffer.alloc(n, i + 1), a.address().port, host);
        await waitUntil(() => received.length === sizes.length, 'the datagrams');
        expect(received.map((r) => r.data.length)).toEqual(sizes);
        for (const [i, r] of received.entries()) {
          expect(r.data.equals(Buffer.alloc(sizes[i]!, i + 1))).toBe(true);
          expect([r.address, r.port]).toEqual([host, peer.address().port]);
        }
        const back: Buffer[] = [];
        peer.on('message', (m: Buffer) => back.push(m));
        for (const [i, n] of sizes.entries()) a.send(Buffer.alloc(n, i + 7), peer.address().port, host);
        await waitUntil(() => back.length === sizes.length, 'the answers');
        expect(back.map((b) => b.length)).toEqual(sizes);
        expect(back[2]!.equals(Buffer.alloc(1200, 9))).toBe(true);
        expect(a.stats).toMatchObject({ received: sizes.length, sent: sizes.length, truncated: 0 });
      } finally {
        await closeDgram(peer);
      }
    });
  }

  it('a connected pair: only the peer gets through, addresses as getsockname/getpeername say', async () => {
    const { socket: server, received } = await socket();
    const client = await openDatagramSocket({
      family: 4,
      backend: 'native',
      connect: { address: '127.0.0.1', port: server.address().port },
    });
    open.push(client);
    expect(client.connected).toBe(true);
    expect(client.address().address).toBe('127.0.0.1');
    expect(client.remoteAddress()).toEqual({
      address: '127.0.0.1',
      family: 'IPv4',
      port: server.address().port,
    });
    expect(() => server.remoteAddress()).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' }),
    );
    client.send(Buffer.from('hello'));
    await waitUntil(() => received.length === 1, 'hello');
    expect(received[0]).toMatchObject({ address: '127.0.0.1', port: client.address().port });
    // a stranger's datagram never reaches the connected client
    const got: Buffer[] = [];
    client.onMessage((d) => got.push(Buffer.from(d)));
    const stranger = await dgramSocket();
    stranger.send('stranger', client.address().port, '127.0.0.1');
    server.send(Buffer.from('answer'), received[0]!.port, received[0]!.address);
    await waitUntil(() => got.length === 1, 'the answer');
    await new Promise((r) => setTimeout(r, 30));
    expect(got.map(String)).toEqual(['answer']);
    await closeDgram(stranger);
  });

  it('sends a turn of equal-size datagrams as GSO runs and the receiver splits the GRO trains back, in order', async () => {
    // room for the whole turn (600 KB) at once
    const { socket: rx, received } = await socket({ recvBufferSize: 4 << 20 });
    const { socket: tx } = await socket();
    const port = rx.address().port;
    const n = 500;
    for (let i = 0; i < n; i++) {
      const d = Buffer.alloc(1200, i & 255);
      d.writeUInt32BE(i, 0);
      tx.send(d, port, '127.0.0.1');
    }
    // and a short one closing the last run
    tx.send(Buffer.from('end'), port, '127.0.0.1');
    await waitUntil(() => received.length === n + 1, 'every datagram', { timeoutMs: 5000 });
    expect(received.slice(0, n).map((r) => r.data.readUInt32BE(0))).toEqual([...Array(n).keys()]);
    expect(received.every((r, i) => i === n || r.data.length === 1200)).toBe(true);
    expect(String(received[n]!.data)).toBe('end');
    const sent = tx.stats;
    expect(sent.sent).toBe(n + 1);
    // 64 segments per message at most: 500 datagrams of one size to one peer take a handful
    expect(sent.gsoSends).toBeGreaterThanOrEqual(Math.ceil(n / 64));
    expect(sent.gsoSends).toBeLessThan(20);
    // loopback hands a GSO message to a GRO socket whole: the receiver split it
    expect(rx.stats.groSegments).toBeGreaterThan(0);
    expect(received.some((r) => r.segment === 1200)).toBe(true);
  });

  it('drops a datagram larger than maxDatagramSize (counted, never delivered cut short) and goes on', async () => {
    const { socket: rx, received } = await socket({ maxDatagramSize: 100 });
    const tx = await dgramSocket();
    const port = rx.address().port;
    tx.send(Buffer.alloc(101, 1), port, '127.0.0.1');
    tx.send(Buffer.alloc(100, 2), port, '127.0.0.1');
    tx.send(Buffer.alloc(5000, 3), port, '127.0.0.1');
    tx.send(Buffer.alloc(0), port, '127.0.0.1');
    await waitUntil(() => received.length === 2, 'the two that fit');
    await waitUntil(() => rx.stats.truncated === 2, 'two truncations counted');
    expect(received.map((r) => r.data.length)).toEqual([100, 0]);
    expect(received[0]!.data.equals(Buffer.alloc(100, 2))).toBe(true);
    await closeDgram(tx);
  });

  it('a wildcard socket with packetInfo reports the local address of each datagram and answers from it', async () => {
    const { socket: server, received } = await socket({ address: '0.0.0.0', packetInfo: true });
    const port = server.address().port;
    expect(server.address().address).toBe('0.0.0.0');
    // clients connected to 127.0.0.2 and 127.0.0.3: an answer from any other source is dropped
    const clients = await Promise.all(
      ['127.0.0.2', '127.0.0.3'].map((to) =>
        openDatagramSocket({ family: 4, backend: 'native', connect: { address: to, port } }),
      ),
    );
    open.push(...clients);
    const answers: string[][] = [[], []];
    for (const [i, c] of clients.entries()) {
      c.onMessage((d) => {
        answers[i]!.push(String(d));
      });
    }
    clients[0]!.send(Buffer.from('to .2'));
    clients[1]!.send(Buffer.from('to .3'));
    await waitUntil(() => received.length === 2, 'both');
    const byText = Object.fromEntries(received.map((r) => [String(r.data), r.localAddress]));
    expect(byText).toEqual({ 'to .2': '127.0.0.2', 'to .3': '127.0.0.3' });
    for (const r of received) server.send(Buffer.from(`re ${r.data}`), r.port, r.address, r.localAddress);
    await waitUntil(() => answers[0]!.length === 1 && answers[1]!.length === 1, 'the answers');
    expect(answers).toEqual([['re to .2'], ['re to .3']]);
    // without `from` the kernel picks the source by route (127.0.0.1): the connected client drops it
    server.send(Buffer.from('wrong source'), received[0]!.port, received[0]!.address);
    clients[0]!.send(Buffer.from('again'));
    await waitUntil(() => received.length === 3, 'again');
    server.send(
      Buffer.from('right source'),
      received[2]!.port,
      received[2]!.address,
      received[2]!.localAddress,
    );
    await waitUntil(() => answers[0]!.length === 2, 'the second answer');
    expect(answers[0]).toEqual(['re to .2', 'right source']);
  });

  it('IPv6 wildcard, dual stack: IPv4 peers as ::ffff:a.b.c.d, local addresses both ways', async () => {
    const { socket: server, received } = await socket({ family: 6, address: '::', packetInfo: true });
    const port = server.address().port;
    const v4 = await dgramSocket('127.0.0.1');
    const v6 = await dgramSocket('::1');
    v4.send('four', port, '127.0.0.1');
    v6.send('six', port, '::1');
    await waitUntil(() => received.length === 2, 'both');
    const byText = Object.fromEntries(received.map((r) => [String(r.data), [r.address, r.localAddress]]));
    expect(byText).toEqual({ four: ['::ffff:127.0.0.1', '::ffff:127.0.0.1'], six: ['::1', '::1'] });
    const got: string[] = [];
    v4.on('message', (m: Buffer) => got.push(String(m)));
    const four = received.find((r) => String(r.data) === 'four')!;
    server.send(Buffer.from('back'), four.port, four.address, four.localAddress);
    // an IPv4 literal to a dual-stack socket goes as v4-mapped
    server.send(Buffer.from('back4'), v4.address().port, '127.0.0.1');
    await waitUntil(() => got.length === 2, 'the answers');
    expect(got.sort()).toEqual(['back', 'back4']);
    await Promise.all([closeDgram(v4), closeDgram(v6)]);
  });

  it('ICMP port unreachable: a connected socket gets recvmsg ECONNREFUSED as node:dgram does; an unconnected one reports the peer, no error', async () => {
    const closedPort = await freeUdpPort('127.0.0.1');
    const connected = await openDatagramSocket({
      family: 4,
      backend: 'native',
      connect: { address: '127.0.0.1', port: closedPort },
    });
    open.push(connected);
    const failed = once(connected, 'error') as Promise<[NodeJS.ErrnoException]>;
    connected.send(Buffer.from('anyone?'));
    const [err] = await failed;
    expect(err).toMatchObject({
      message: 'recvmsg ECONNREFUSED',
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'recvmsg',
    });
    // the same as node:dgram's
    const d = createSocket('udp4');
    const dgramFailed = once(d, 'error') as Promise<[NodeJS.ErrnoException]>;
    d.connect(closedPort, '127.0.0.1', () => d.send('anyone?'));
    const [dgramErr] = await dgramFailed;
    expect({ message: err.message, code: err.code, errno: err.errno, syscall: err.syscall }).toEqual({
      message: dgramErr.message,
      code: dgramErr.code,
      errno: dgramErr.errno,
      syscall: dgramErr.syscall,
    });
    await closeDgram(d);

    const { socket: loose, received } = await socket();
    const unreachable: [string | undefined, string, number][] = [];
    loose.onUnreachable((e, address, port) => unreachable.push([e.code, address, port]));
    loose.on('error', (e) => unreachable.push(['error event', String(e), 0]));
    loose.send(Buffer.from('x'), closedPort, '127.0.0.1');
    await waitUntil(() => unreachable.length === 1, 'the ICMP error');
    expect(unreachable).toEqual([['ECONNREFUSED', '127.0.0.1', closedPort]]);
    expect(loose.stats.icmpErrors).toBe(1);
    // it still sends and receives
    const peer = await dgramSocket();
    peer.on('message', (m: Buffer, r) => peer.send(m, r.port, r.address));
    loose.send(Buffer.from('echo me'), peer.address().port, '127.0.0.1');
    await waitUntil(() => received.length === 1, 'the echo');
    expect(String(received[0]!.data)).toBe('echo me');
    await closeDgram(peer);
  });

  it('an ICMP storm (datagrams to 200 closed ports): every error counted, none thrown, the socket goes on', async () => {
    const { socket: loose, received } = await socket();
    let reported = 0;
    loose.onUnreachable(() => {
      reported++;
    });
    const errors: Error[] = [];
    loose.on('error', (e: Error) => errors.push(e));
    const ports = await Promise.all(Array.from({ length: 20 }, () => freeUdpPort('127.0.0.1')));
    for (let round = 0; round < 10; round++) {
      for (const port of ports)
        for (let k = 0; k < 10; k++) loose.send(Buffer.from('x'), port + k, '127.0.0.1');
      await new Promise((r) => setImmediate(r));
    }
    // the kernel rate-limits its ICMP errors (a burst of 50, then 1000/s): some come back, all counted
    await waitUntil(() => reported > 0, 'ICMP errors');
    await new Promise((r) => setTimeout(r, 50));
    expect(loose.stats.icmpErrors).toBe(reported);
    expect(reported).toBeLessThanOrEqual(2000);
    expect(errors).toEqual([]);
    const peer = await dgramSocket();
    peer.on('message', (m: Buffer, r) => peer.send(m, r.port, r.address));
    loose.send(Buffer.from('still here'), peer.address().port, '127.0.0.1');
    await waitUntil(() => received.length === 1, 'the echo');
    expect(String(received[0]!.data)).toBe('still here');
    await closeDgram(peer);
  });

  it('a socket flooded by another process does not starve a quiet one: it gets its turn within a batch', async () => {
    const { socket: flooded } = await socket({ recvBufferSize: 1 << 20 });
    const { socket: quiet } = await socket();
    let floodedSeen = 0;
    // a slow handler keeps the flooded socket's kernel queue full
    flooded.onMessage(() => {
      floodedSeen++;
      const until = performance.now() + 0.02;
      while (performance.now() < until);
    });
    const flooder = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:dgram').createSocket('udp4'); const b = Buffer.alloc(64);
         const go = () => { for (let i = 0; i < 200; i++) s.send(b, ${flooded.address().port}, '127.0.0.1'); setImmediate(go); };
         s.bind(0, '127.0.0.1', go);`,
      ],
      { stdio: 'ignore' },
    );
    children.push(flooder);
    await waitUntil(() => floodedSeen > 2000, 'the flood to be going', { timeoutMs: 10_000 });
    let seenWhenQuietArrived = -1;
    quiet.onMessage(() => {
      seenWhenQuietArrived = floodedSeen;
    });
    const from = await dgramSocket();
    const before = floodedSeen;
    from.send('me too', quiet.address().port, '127.0.0.1');
    await waitUntil(() => seenWhenQuietArrived >= 0, 'the quiet socket', { timeoutMs: 5000 });
    // at most a turn's share of the flooded socket (64) went before it, twice (the turn that was
    // running when it arrived, and the next): never the whole kernel queue of the flood
    expect(seenWhenQuietArrived - before).toBeLessThanOrEqual(2 * 64 + 8);
    expect(flooder.exitCode).toBeNull();
    await closeDgram(from);
  });

  it('a handler that closes its socket mid-batch gets nothing more; one that throws does not stop the others', async () => {
    const { socket: a } = await socket();
    const { socket: b, received: bGot } = await socket();
    const aGot: number[] = [];
    a.onMessage((d) => {
      aGot.push(d[0]!);
      if (aGot.length === 3) void a.close();
    });
    const tx = await dgramSocket();
    for (let i = 0; i < 10; i++) tx.send(Buffer.from([i]), a.address().port, '127.0.0.1');
    await waitUntil(() => a.closed, 'a to close');
    expect(aGot).toEqual([0, 1, 2]);

    let thrown = 0;
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => {
      uncaught.push(e);
    };
    process.on('uncaughtException', onUncaught);
    try {
      const { socket: c } = await socket();
      c.onMessage(() => {
        thrown++;
        throw new Error('handler bug');
      });
      for (let i = 0; i < 5; i++) {
        tx.send('c', c.address().port, '127.0.0.1');
        tx.send('b', b.address().port, '127.0.0.1');
      }
      await waitUntil(() => bGot.length === 5 && thrown === 5, 'every datagram of both');
      await waitUntil(() => uncaught.length > 0, 'the throw to surface');
      expect((uncaught[0] as Error).message).toBe('handler bug');
    } finally {
      process.off('uncaughtException', onUncaught);
      await closeDgram(tx);
    }
  });

  it('fails as node:dgram does: bind EADDRINUSE, a send to the wrong family, an oversize datagram', async () => {
    const { socket: a } = await socket();
    const port = a.address().port;
    const taken = openDatagramSocket({ family: 4, address: '127.0.0.1', port, backend: 'native' });
    await expect(taken).rejects.toMatchObject({
      message: `bind EADDRINUSE 127.0.0.1:${port}`,
      code: 'EADDRINUSE',
      errno: -98,
      syscall: 'bind',
      address: '127.0.0.1',
      port,
    });
    const errors: string[] = [];
    a.on('error', (e: Error) => errors.push(e.message));
    a.send(Buffer.from('x'), 9, '::1');
    a.send(Buffer.alloc(70_000), 9, '127.0.0.1');
    a.send(Buffer.alloc(65_508), 9, '127.0.0.1');
    await waitUntil(() => errors.length === 3, 'three errors');
    expect(errors.sort()).toEqual([
      'send EINVAL ::1:9',
      'send EMSGSIZE 127.0.0.1:9',
      'send EMSGSIZE 127.0.0.1:9',
    ]);
    expect(a.stats.sendErrors).toBe(1);
  });

  it('buffer sizes are settable and read back as the kernel has them (doubled, as getsockopt gives)', async () => {
    const { socket: a } = await socket({ recvBufferSize: 256 * 1024, sendBufferSize: 128 * 1024 });
    expect(a.getRecvBufferSize()).toBe(512 * 1024);
    expect(a.getSendBufferSize()).toBe(256 * 1024);
    a.setRecvBufferSize(64 * 1024);
    expect(a.getRecvBufferSize()).toBe(128 * 1024);
  });

  it('sends queued in a turn go before close(); nothing is sent or delivered after', async () => {
    const { socket: rx, received } = await socket();
    const { socket: tx } = await socket();
    for (let i = 0; i < 10; i++) tx.send(Buffer.from([i]), rx.address().port, '127.0.0.1');
    await tx.close();
    tx.send(Buffer.from('late'), rx.address().port, '127.0.0.1');
    await waitUntil(() => received.length === 10, 'the ten');
    expect(received.map((r) => r.data[0])).toEqual([...Array(10).keys()]);
    expect(tx.stats.sent).toBe(10);
    expect(tx.closed).toBe(true);
  });

  it('formats IPv6 addresses as inet_ntop does', () => {
    const f = (text: string): string => {
      const words = Buffer.alloc(16);
      const groups = text.split(':');
      // only full 8-group forms here
      for (let i = 0; i < 8; i++) words.writeUInt16BE(Number.parseInt(groups[i]!, 16), i * 2);
      return formatIpv6(
        words.readInt32BE(0),
        words.readInt32BE(4),
        words.readInt32BE(8),
        words.readInt32BE(12),
      );
    };
    expect(f('0:0:0:0:0:0:0:0')).toBe('::');
    expect(f('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(f('fe80:0:0:0:0:0:0:0')).toBe('fe80::');
    expect(f('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(f('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(f('0:0:0:0:0:ffff:7f00:1')).toBe('::ffff:127.0.0.1');
    expect(f('0:0:0:0:0:0:a00:1')).toBe('::10.0.0.1');
    expect(f('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(f('abcd:ef01:0:0:0:0:0:ffff')).toBe('abcd:ef01::ffff');
  });
});

describe('the node:dgram backend behind the same interface', () => {
  it('carries datagrams, reports senders, and has no packet info', async () => {
    const { socket: a, received } = await socket({ backend: 'dgram', address: '0.0.0.0', packetInfo: true });
    expect(a.backend).toBe('dgram');
    const { socket: b } = await socket({ backend: 'dgram' });
    b.send(Buffer.from('hi'), a.address().port, '127.0.0.1');
    await waitUntil(() => received.length === 1, 'hi');
    expect(received[0]).toMatchObject({ address: '127.0.0.1', port: b.address().port, localAddress: null });
    expect(NativeDatagramSocket).toBeDefined();
  });
});
