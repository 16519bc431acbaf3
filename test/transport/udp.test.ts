import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ConnectionState } from '../../src/connection/index.js';
import { ConnectError } from '../../src/transport/errors.js';
import {
  connectUdp,
  DEFAULT_QUEUE_BYTES,
  type UdpFlowSession,
  UdpListener,
} from '../../src/transport/udp/index.js';
import { freeUdpPort } from '../helpers/ports.js';

const HOSTS = ['127.0.0.1', '::1'] as const;

async function boundSocket(host: string): Promise<Socket> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.bind(0, host);
  await once(socket, 'listening');
  return socket;
}

const closeSocket = (s: Socket): Promise<void> => new Promise((r) => s.close(() => r()));

describe('udp driver', () => {
  for (const host of HOSTS) {
    it(`keeps datagram boundaries, empty and 65,507-byte datagrams included, both ways (${host})`, async () => {
      await using listener = await UdpListener.listen({ host });
      const accepted = once(listener, 'session') as Promise<[UdpFlowSession]>;
      const out = await connectUdp({ host, port: listener.address[1] });
      const sizes = [0, 1, 1200, 65_507, 0, 7];
      const payloads = sizes.map((n, i) => Buffer.alloc(n, i + 1));
      for (const p of payloads) out.datagrams.send(p);
      const [inbound] = await accepted;
      const received: Uint8Array[] = [];
      for await (const d of inbound.datagrams) {
        received.push(d);
        if (received.length === payloads.length) break;
      }
      expect(received.map((d) => d.byteLength)).toEqual(sizes);
      for (const [i, d] of received.entries()) expect(Buffer.from(d).equals(payloads[i]!)).toBe(true);

      const back: Uint8Array[] = [];
      out.datagrams.on('datagram', (d: Uint8Array) => back.push(d));
      for (const p of payloads) inbound.datagrams.send(p);
      while (back.length < payloads.length) await once(out.datagrams, 'datagram');
      expect(back.map((d) => d.byteLength)).toEqual(sizes);
      expect(inbound.datagrams.received).toBe(sizes.length);
      expect(inbound.datagrams.sent).toBe(sizes.length);
      expect(listener.stats.bytesIn).toBe(sizes.reduce((a, b) => a + b, 0));
      await out.close();
    });
  }

  it('closes an idle flow: CLOSED, timestampEnd, no error, counted; a later datagram opens a new flow', async () => {
    await using listener = await UdpListener.listen({ idleTimeout: 100 });
    const client = await boundSocket('127.0.0.1');
    try {
      const accepted = once(listener, 'session') as Promise<[UdpFlowSession]>;
      client.send('one', listener.address[1], '127.0.0.1');
      const [first] = await accepted;
      const t0 = Date.now();
      await first.whenClosed();
      const idleMs = Date.now() - t0;
      expect(idleMs).toBeGreaterThanOrEqual(90);
      expect(idleMs).toBeLessThan(1000);
      expect(first.conn.state).toBe(ConnectionState.CLOSED);
      expect(first.conn.error).toBeNull();
      expect(first.conn.timestampEnd! - first.conn.timestampStart).toBeGreaterThanOrEqual(0.09);
      expect(listener.stats).toMatchObject({ flows: 0, flowsOpened: 1, idleTimeouts: 1 });

      const again = once(listener, 'session') as Promise<[UdpFlowSession]>;
      client.send('two', listener.address[1], '127.0.0.1');
      const [second] = await again;
      expect(second).not.toBe(first);
      expect(second.conn.id).not.toBe(first.conn.id);
      expect(second.conn.peername).toEqual(first.conn.peername);
    } finally {
      await closeSocket(client);
    }
  });

  it('keeps a flow that is active in either direction open past the idle timeout', async () => {
    await using listener = await UdpListener.listen({ idleTimeout: 150 });
    const client = await boundSocket('127.0.0.1');
    try {
      const accepted = once(listener, 'session') as Promise<[UdpFlowSession]>;
      client.send('hello', listener.address[1], '127.0.0.1');
      const [flow] = await accepted;
      // only our side sends: the flow stays up as long as it does
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, 50));
        flow.datagrams.send(Buffer.from('tick'));
      }
      expect(flow.closed).toBe(false);
      await flow.whenClosed();
      expect(listener.stats.idleTimeouts).toBe(1);
    } finally {
      await closeSocket(client);
    }
  });

  it('bounds the receive queue of a session nobody reads: drops are counted, memory stays flat', async () => {
    await using listener = await UdpListener.listen({ receiveQueue: { datagrams: 64 } });
    const client = await boundSocket('127.0.0.1');
    try {
      const accepted = once(listener, 'session') as Promise<[UdpFlowSession]>;
      const payload = Buffer.alloc(1200, 0x42);
      const before = process.memoryUsage().arrayBuffers;
      const total = 5000;
      for (let i = 0; i < total; i++) {
        client.send(payload, listener.address[1], '127.0.0.1');
        if (i % 100 === 99) await new Promise((r) => setImmediate(r));
      }
      const [flow] = await accepted;
      // wait until the kernel has handed over all it kept
      let last = -1;
      while (listener.stats.datagramsIn !== last) {
        last = listener.stats.datagramsIn;
        await new Promise((r) => setTimeout(r, 50));
      }
      const { datagrams } = flow;
      expect(datagrams.queued).toBe(64);
      expect(datagrams.queuedBytes).toBe(64 * 1200);
      expect(datagrams.received).toBe(listener.stats.datagramsIn);
      expect(datagrams.dropped).toBe(datagrams.received - datagrams.queued);
      expect(listener.stats.drops).toBe(datagrams.dropped);
      expect(datagrams.received).toBeGreaterThan(1000);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);

      // the byte bound too: 256 KiB by default, always room for one largest datagram
      expect(DEFAULT_QUEUE_BYTES).toBeGreaterThanOrEqual(65_507);
      // a reader now gets the queued datagrams, oldest first, then live ones
      const iterator = datagrams[Symbol.asyncIterator]();
      expect(((await iterator.next()).value as Uint8Array).byteLength).toBe(1200);
      expect(datagrams.queued).toBe(63);
      await iterator.return?.();
      expect(datagrams.queued).toBe(0);
    } finally {
      await closeSocket(client);
    }
  });

  it("does not queue what 'datagram' listeners take (only the iterator or nobody queues)", async () => {
    await using listener = await UdpListener.listen();
    const client = await boundSocket('127.0.0.1');
    try {
      const seen: number[] = [];
      listener.on('session', (s: UdpFlowSession) =>
        s.datagrams.on('datagram', (d: Uint8Array) => seen.push(d.byteLength)),
      );
      for (let i = 1; i <= 20; i++) client.send(Buffer.alloc(i), listener.address[1], '127.0.0.1');
      while (seen.length < 20) await new Promise((r) => setTimeout(r, 10));
      const [flow] = [...listener.sessions];
      expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(flow!.datagrams.queued).toBe(0);
    } finally {
      await closeSocket(client);
    }
  });

  it('connect without a probe resolves at once; a later ICMP port-unreachable closes it with error', async () => {
    const port = await freeUdpPort('127.0.0.1');
    const out = await connectUdp({ host: '127.0.0.1', port });
    expect(out.conn.state).toBe(ConnectionState.OPEN);
    expect(out.conn.timestampTcpSetup).toBeNull();
    expect(out.conn.peername).toEqual(['127.0.0.1', port]);
    const closed = once(out, 'close');
    out.datagrams.send(Buffer.from('anyone?'));
    const [hadError] = (await closed) as [boolean];
    expect(hadError).toBe(true);
    expect(out.conn.state).toBe(ConnectionState.CLOSED);
    expect(out.conn.error).toMatch(/^Connection refused \(recvmsg ECONNREFUSED\)/);
    expect(out.conn.timestampEnd).not.toBeNull();
    // sending on a closed session is a counted drop, not a throw
    out.datagrams.send(Buffer.from('late'));
    expect(out.datagrams.dropped).toBe(1);
  });

  it('a probe nobody answers times out with ETIMEDOUT; one answered resolves with the answer queued', async () => {
    const silent = await boundSocket('127.0.0.1');
    const echo = await boundSocket('127.0.0.1');
    echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('re:'), m]), r.port, r.address));
    try {
      const t0 = Date.now();
      const err = (await connectUdp({
        host: '127.0.0.1',
        port: silent.address().port,
        probe: Buffer.from('ping'),
        connectTimeout: 200,
      }).catch((e: unknown) => e)) as ConnectError;
      expect(err).toBeInstanceOf(ConnectError);
      expect(err.code).toBe('ETIMEDOUT');
      expect(err.conn.error).toMatch(/^Connection timed out \(no answer to the probe/);
      expect(err.conn.state).toBe(ConnectionState.CLOSED);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(190);

      const out = await connectUdp({
        host: '127.0.0.1',
        port: echo.address().port,
        probe: Buffer.from('ping'),
      });
      const { value } = await out.datagrams[Symbol.asyncIterator]().next();
      expect(Buffer.from(value as Uint8Array).toString()).toBe('re:ping');
      await out.close();
    } finally {
      await Promise.all([closeSocket(silent), closeSocket(echo)]);
    }
  });

  it('fails a connect the OS refuses at once (local port in use) with the OS message', async () => {
    const taken = await boundSocket('127.0.0.1');
    try {
      const err = (await connectUdp({
        host: '127.0.0.1',
        port: 9,
        localAddress: '127.0.0.1',
        localPort: taken.address().port,
      }).catch((e: unknown) => e)) as ConnectError;
      expect(err).toBeInstanceOf(ConnectError);
      expect(err.code).toBe('EADDRINUSE');
      expect(err.conn.error).toMatch(/^Address already in use/);
      expect(err.conn.state).toBe(ConnectionState.CLOSED);
    } finally {
      await closeSocket(taken);
    }
  });

  it('fails a connect to a name that does not resolve (bounded by the timeout)', async () => {
    const err = (await connectUdp({ host: 'no-such-host.invalid', port: 9, connectTimeout: 3000 }).catch(
      (e: unknown) => e,
    )) as ConnectError;
    expect(err).toBeInstanceOf(ConnectError);
    // ENOTFOUND where a resolver answers; EAI_AGAIN or ETIMEDOUT where none does
    expect(['ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT']).toContain(err.code);
    expect(err.conn.error).toBe(err.message);
    expect(err.conn.state).toBe(ConnectionState.CLOSED);
    expect(err.conn.address).toEqual(['no-such-host.invalid', 9]);
  });

  it('closes the connected session on a late abort', async () => {
    await using listener = await UdpListener.listen();
    const ac = new AbortController();
    const out = await connectUdp({ host: '127.0.0.1', port: listener.address[1], signal: ac.signal });
    ac.abort();
    await out.whenClosed();
    expect(out.conn.error).toBe('Aborted');
  });

  it('gives every client flow the Client model of the first datagram', async () => {
    await using listener = await UdpListener.listen({ host: '::1', proxyMode: 'reverse:udp://[::1]:53' });
    const client = await boundSocket('::1');
    try {
      const accepted = once(listener, 'session') as Promise<[UdpFlowSession]>;
      const before = Date.now() / 1000;
      client.send('x', listener.address[1], '::1');
      const [flow] = await accepted;
      expect(flow.conn.peername).toEqual(['::1', client.address().port]);
      expect(flow.conn.sockname).toEqual(['::1', listener.address[1]]);
      expect(flow.conn.transportProtocol).toBe('udp');
      expect(flow.conn.proxyMode).toBe('reverse:udp://[::1]:53');
      expect(flow.conn.timestampStart).toBeGreaterThanOrEqual(before - 0.01);
      expect(String(flow.conn)).toBe(`Client([::1]:${client.address().port}, state=open)`);
      await listener.close();
      expect(flow.conn.state).toBe(ConnectionState.CLOSED);
      expect(flow.conn.error).toBeNull();
    } finally {
      await closeSocket(client);
    }
  });

  for (const [wildcard, targets] of [
    ['0.0.0.0', ['127.0.0.2', '127.0.0.3']],
    ['::', ['::1', '127.0.0.4']],
  ] as const) {
    it(`a listener on ${wildcard}: each Client's sockname is the address its peer reached, answered from (native); the wildcard on node:dgram`, async () => {
      await using listener = await UdpListener.listen({ host: wildcard });
      const port = listener.address[1];
      expect(listener.address).toEqual([wildcard, port]);
      const native = listener.datagramBackend === 'native';
      expect(listener.datagramBackend).toBe(process.env.WIRELAYER_DATAGRAM === 'dgram' ? 'dgram' : 'native');
      for (const to of targets) {
        const accepted = once(listener, 'session') as Promise<[UdpFlowSession]>;
        // connected to `to`: the kernel drops an answer from any other source address
        const out = await connectUdp({ host: to, port });
        out.datagrams.send(Buffer.from(`to ${to}`));
        const [inbound] = await accepted;
        const reached = wildcard === '::' && !to.includes(':') ? `::ffff:${to}` : to;
        expect(inbound.conn.sockname).toEqual(native ? [reached, port] : [wildcard, port]);
        if (native) {
          const back = once(out.datagrams, 'datagram') as Promise<[Uint8Array]>;
          inbound.datagrams.send(Buffer.from(`from ${to}`));
          expect(String(Buffer.from((await back)[0]))).toBe(`from ${to}`);
        }
        await out.close();
      }
    });
  }
});
