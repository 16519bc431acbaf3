/**
 * reverse:tcp through the proxy: a Node net server upstream, Node and socat clients, bytes both
 * ways with half-close kept, backpressure from a slow reader, mitmproxy's hook order, and a
 * `-s`-style addon that rewrites.
 */
import { once } from 'node:events';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Client, Connection, Server } from '../../src/connection/index.js';
import type { TcpFlow } from '../../src/proxy/hooks.js';
import type { StreamRecord } from '../../src/proxy/layers/tcp.js';
import { Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { waitUntil } from '../helpers/wait.js';
import { hookRecorder } from './proxy-peers.js';

async function listen(handler: (s: Socket) => void): Promise<{ server: NetServer; port: number }> {
  const server = createServer({ allowHalfOpen: true }, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

async function dial(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

/** Reads a socket to its end. */
async function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  return Buffer.concat(chunks);
}

describe('reverse:tcp', () => {
  it('relays both ways with half-close: the client FINs, the server still answers; hooks in order; models; stream record', async () => {
    // upstream: reads everything, then answers with its length and closes
    const { server: upstream, port } = await listen((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => s.end(`got ${Buffer.concat(chunks).length} bytes`));
    });
    const hooks = hookRecorder();
    await using proxy = await WirelayerProxy.start({
      modes: [`reverse:tcp://127.0.0.1:${port}`],
      addons: [hooks.addon],
    });
    const models: [string, Connection][] = [];
    const streams: StreamRecord[] = [];
    proxy.on('model', (e: string, c: Connection) => models.push([e, c]));
    proxy.on('stream', (r: StreamRecord) => streams.push(r));
    const socket = await dial(proxy.listening[0]!.address[1]);
    const localPort = socket.localPort;
    const reply = readAll(socket);
    const payload = Buffer.alloc(3 * 1024 * 1024, 7);
    socket.end(payload);
    expect((await reply).toString()).toBe(`got ${payload.length} bytes`);
    await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
    expect(hooks.log.filter((h) => h !== 'tcpMessage')).toEqual([
      'clientConnected',
      'serverConnect',
      'serverConnected',
      'tcpStart',
      'tcpEnd',
      'serverDisconnected',
      'clientDisconnected',
    ]);
    const client = models.find(([, c]) => c.constructor.name === 'Client')![1] as Client;
    const server = models.find(([, c]) => c.constructor.name === 'Server')![1] as Server;
    expect(models.map(([e, c]) => `${e}:${c.constructor.name}`)).toEqual([
      'start:Client',
      'up:Client',
      'start:Server',
      'up:Server',
      'closed:Server',
      'closed:Client',
    ]);
    expect(client.peername).toEqual(['127.0.0.1', localPort]);
    expect(client.proxyMode).toBe(`reverse:tcp://127.0.0.1:${port}`);
    expect(server.peername).toEqual(['127.0.0.1', port]);
    expect(server.timestampTcpSetup).toBeGreaterThanOrEqual(server.timestampStart!);
    expect(streams).toEqual([
      {
        event: 'stream',
        flow: client.id,
        client_stream_id: null,
        server_stream_id: null,
        bytes_from_client: payload.length,
        bytes_from_server: `got ${payload.length} bytes`.length,
        end: 'fin',
      },
    ]);
    upstream.close();
  });

  it('backpressure: a client that does not read pauses the upstream (no unbounded buffer in the proxy)', async () => {
    let written = 0;
    let paused = false;
    const { server: upstream, port } = await listen((s) => {
      const chunk = Buffer.alloc(64 * 1024);
      const pump = (): void => {
        while (written < 256 * 1024 * 1024) {
          written += chunk.length;
          if (!s.write(chunk)) {
            paused = true;
            s.once('drain', pump);
            return;
          }
        }
      };
      pump();
      s.on('error', () => undefined);
    });
    await using proxy = await WirelayerProxy.start({ modes: [`reverse:tcp://127.0.0.1:${port}`] });
    const socket = await dial(proxy.listening[0]!.address[1]);
    socket.pause();
    await waitUntil(() => paused, 'the upstream to see backpressure');
    // the first full write is not the end: kernel buffers along the way still grow (autotuning)
    // for a while; the upstream must come to a standstill, and stay there
    let last = -1;
    await waitUntil(
      () => {
        const still = written === last;
        last = written;
        return still;
      },
      'the upstream to stop writing',
      { timeoutMs: 10_000, intervalMs: 300 },
    );
    const stalled = written;
    await new Promise((r) => setTimeout(r, 300));
    // held back: kernel buffers and stream high-water marks, a few MiB at most, not the 256 MiB on offer
    expect(written).toBe(stalled);
    expect(written).toBeLessThan(32 * 1024 * 1024);
    socket.destroy();
    upstream.close();
  });

  it('a client reset ends the flow with tcpError and a reset stream record', async () => {
    const { server: upstream, port } = await listen((s) => s.on('error', () => undefined));
    const hooks = hookRecorder();
    await using proxy = await WirelayerProxy.start({
      modes: [`reverse:tcp://127.0.0.1:${port}`],
      addons: [hooks.addon],
    });
    const streams: StreamRecord[] = [];
    proxy.on('stream', (r: StreamRecord) => streams.push(r));
    const socket = await dial(proxy.listening[0]!.address[1]);
    socket.write('x');
    await waitUntil(() => hooks.log.includes('tcpStart'), 'tcpStart');
    socket.resetAndDestroy();
    await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
    expect(hooks.log).toContain('tcpError');
    expect(hooks.log).not.toContain('tcpEnd');
    expect(streams[0]!.end).toMatch(/^reset E/);
    upstream.close();
  });

  it('a tcpMessage hook sees each chunk with its direction and may rewrite it', async () => {
    const { server: upstream, port } = await listen((s) => s.on('data', (d: Buffer) => s.write(d)));
    const directions: boolean[] = [];
    await using proxy = await WirelayerProxy.start({
      modes: [`reverse:tcp://127.0.0.1:${port}`],
      addons: [
        {
          tcpMessage(flow: TcpFlow) {
            const m = flow.message!;
            directions.push(m.fromClient);
            m.content = Buffer.from(Buffer.from(m.content).toString().toUpperCase());
          },
        },
      ],
    });
    const socket = await dial(proxy.listening[0]!.address[1]);
    socket.write('shout');
    const [reply] = await once(socket, 'data');
    expect(String(reply)).toBe('SHOUT');
    expect(directions).toEqual([true, false]);
    socket.destroy();
    // the upstream never closes its half of the flow: closing the proxy ends it after a grace
    const closing = performance.now();
    await proxy.close();
    expect(performance.now() - closing).toBeGreaterThan(1000);
    upstream.close();
  });
});
