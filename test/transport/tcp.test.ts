import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type Client, ConnectionState } from '../../src/connection/index.js';
import { ConnectError } from '../../src/transport/errors.js';
import { connectTcp, TcpListener, type TcpSession } from '../../src/transport/tcp/index.js';
import { freeTcpPort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait.js';

describe('tcp driver', () => {
  it('half-close: the peer FIN clears CAN_READ, ours clears CAN_WRITE, both then CLOSED', async () => {
    await using listener = await TcpListener.listen({ allowHalfOpen: true });
    const accepted = once(listener, 'session') as Promise<[TcpSession<Client>]>;
    const out = await connectTcp({ host: '127.0.0.1', port: listener.address[1], allowHalfOpen: true });
    const [inbound] = await accepted;
    inbound.stream.resume();
    out.stream.resume();

    inbound.stream.end();
    await once(out.stream, 'end');
    await waitUntil(
      () => inbound.conn.state === ConnectionState.CAN_READ,
      "the peer's FIN to clear CAN_READ",
    );
    expect(inbound.conn.state).toBe(ConnectionState.CAN_READ);
    expect(out.conn.state).toBe(ConnectionState.CAN_WRITE);
    expect(out.conn.connected).toBe(false);
    expect(String(out.conn)).toMatch(/^Server\(127\.0\.0\.1:\d+, state=can_write, src_port=\d+\)$/);
    expect(String(inbound.conn)).toMatch(/^Client\(127\.0\.0\.1:\d+, state=can_read\)$/);

    await out.close();
    await inbound.whenClosed();
    expect(out.conn.state).toBe(ConnectionState.CLOSED);
    expect(inbound.conn.state).toBe(ConnectionState.CLOSED);
    expect(inbound.conn.error).toBeNull();
  });

  it('without allowHalfOpen a peer FIN closes both directions, as in node:net', async () => {
    await using listener = await TcpListener.listen();
    const accepted = once(listener, 'session') as Promise<[TcpSession<Client>]>;
    const out = await connectTcp({ host: '127.0.0.1', port: listener.address[1] });
    const [inbound] = await accepted;
    inbound.stream.resume();
    out.stream.end();
    await inbound.whenClosed();
    await out.whenClosed();
    expect(inbound.conn.state).toBe(ConnectionState.CLOSED);
    expect(out.conn.error).toBeNull();
  });

  it('records the OS message on a refused connect', async () => {
    const port = await freeTcpPort('127.0.0.1');
    const err = (await connectTcp({ host: '127.0.0.1', port }).catch((e: unknown) => e)) as ConnectError;
    expect(err).toBeInstanceOf(ConnectError);
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.conn.error).toBe(`Connection refused (connect ECONNREFUSED 127.0.0.1:${port})`);
  });

  it('times out a connect that gets no answer', async () => {
    // a listening socket with a full accept queue that never accepts: further SYNs are dropped
    const py = spawn('python3', [
      '-c',
      'import socket,sys,time\ns=socket.socket();s.bind(("127.0.0.1",0));s.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)',
    ]);
    try {
      const [line] = (await once(py.stdout, 'data')) as [Buffer];
      const port = Number(line.toString().trim());
      const fillers = [
        netConnect(port, '127.0.0.1'),
        netConnect(port, '127.0.0.1'),
        netConnect(port, '127.0.0.1'),
      ];
      for (const f of fillers) f.on('error', () => undefined);
      await new Promise((r) => setTimeout(r, 100));
      const t0 = Date.now();
      const err = (await connectTcp({ host: '127.0.0.1', port, connectTimeout: 300 }).catch(
        (e: unknown) => e,
      )) as ConnectError;
      expect(err).toBeInstanceOf(ConnectError);
      expect(err.code).toBe('ETIMEDOUT');
      expect(err.conn.error).toMatch(/^Connection timed out/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      for (const f of fillers) f.destroy();
    } finally {
      py.kill();
    }
  });

  it('cancels a connect in flight on abort', async () => {
    const ac = new AbortController();
    const pending = connectTcp({ host: '127.0.0.1', port: 9, signal: ac.signal });
    ac.abort();
    const err = (await pending.catch((e: unknown) => e)) as ConnectError;
    expect(err.code).toBe('ABORT_ERR');
    expect(err.conn.error).toBe('Connect aborted');
  });

  it('survives peers that reset or send garbage, and keeps accepting', async () => {
    await using listener = await TcpListener.listen();
    const port = listener.address[1];
    // a reader on every session, as a user has: a socket nobody reads never notices a reset
    listener.on('session', (s: TcpSession<Client>) => s.stream.resume());
    const resets: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      const s = netConnect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('connect', () => {
        s.write(Buffer.from([0xff, 0x00, 0x16, 0x03]));
        s.resetAndDestroy();
      });
      resets.push(once(s, 'close'));
    }
    await Promise.all(resets);
    // accepted in queue order: once this one is up on the listener, every reset peer was handled
    const accepted = once(listener, 'session') as Promise<[TcpSession<Client>]>;
    const out = await connectTcp({ host: '127.0.0.1', port });
    const [inbound] = await accepted;
    expect(inbound.conn.peername).toEqual(out.conn.sockname);
    await waitUntil(() => listener.sessions.size === 1, "the reset peers' sessions to end");
    expect(out.conn.connected).toBe(true);
    await out.close();
  });
});
