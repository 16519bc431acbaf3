/**
 * The PROXY protocol v2 from the command line (the built CLI, in child processes):
 * `wirelayer listen udp|dtls|quic://... --proxy-protocol-from` behind a balancer (node:dgram
 * sockets that put a header in front of each datagram, real openssl s_client and gtlsclient
 * behind it), and `wirelayer proxy --proxy-protocol-from --proxy-protocol-upstream`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProxyHeader } from '../../src/transport/datagram/proxy-v2.js';
import { udpProxyHeader } from '../../src/transport/udp/proxy-protocol.js';
import { CLI, jsonLines, runCli } from '../cli/run.js';
import { fixturePath } from '../helpers/certs.js';
import type { PeerProcess } from '../helpers/peer.js';
import { ProxyV2Balancer } from '../helpers/proxy-v2-balancer.js';
import { waitUntil } from '../helpers/wait.js';
import { sClient } from './dtls-peers.js';
import { ngtcp2Report, runGtlsClient } from './quic-peers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** SIGINT, then the exit code. */
  stop: () => Promise<number | null>;
}

/** Starts the CLI, waits for its `listening on SCHEME://ADDR:PORT` line; returns it and the port. */
async function start(args: readonly string[]): Promise<Running & { port: number }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c;
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c;
  });
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      await exited;
    }
    return child.exitCode;
  };
  cleanups.push(() => void stop());
  await waitUntil(
    () => /listening on \w+:\/\/\S+:\d+/.test(err) || child.exitCode !== null,
    'the CLI to listen',
    {
      timeoutMs: 15_000,
    },
  );
  const port = Number(/listening on \w+:\/\/\S+:(\d+)/.exec(err)?.[1]);
  if (!(port > 0)) throw new Error(`the CLI did not listen:\n${err}`);
  return { child, stdout: () => out, stderr: () => err, stop, port };
}

async function bound(host: string): Promise<Socket> {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.bind(0, host);
  await once(s, 'listening');
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

const peers: PeerProcess[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.stop()));
});

const records = (text: string, event: string): Record<string, unknown>[] =>
  jsonLines(text).filter((r) => r.event === event);

describe('wirelayer listen --proxy-protocol-from', () => {
  it('udp://: each client named by a header is a Client with that peername; drops counted in the last record', async () => {
    const cli = await start([
      'listen',
      'udp://127.0.0.1:0',
      '--json',
      '--proxy-protocol-from',
      '127.0.0.0/8',
    ]);
    const balancer = await bound('127.0.0.1');
    const replies: string[] = [];
    balancer.on('message', (m: Buffer) => replies.push(String(m)));
    const to = ['127.0.0.1', cli.port] as const;
    balancer.send(
      Buffer.concat([udpProxyHeader(['198.51.100.1', 1001], to), Buffer.from('one')]),
      cli.port,
      to[0],
    );
    balancer.send(
      Buffer.concat([udpProxyHeader(['198.51.100.2', 1002], to), Buffer.from('two')]),
      cli.port,
      to[0],
    );
    balancer.send(Buffer.from('no header'), cli.port, to[0]);
    const truncated = udpProxyHeader(['198.51.100.3', 1003], to).subarray(0, 20);
    balancer.send(truncated, cli.port, to[0]);
    await waitUntil(() => replies.length === 2, 'the echoes');
    expect(replies.sort()).toEqual(['one', 'two']);
    await waitUntil(() => records(cli.stdout(), 'up').length === 2, 'two up records');
    expect(records(cli.stdout(), 'up').map((r) => r.peername)).toEqual([
      ['198.51.100.1', 1001],
      ['198.51.100.2', 1002],
    ]);
    expect(await cli.stop()).toBe(0);
    const [stats] = records(cli.stdout(), 'stats');
    expect(stats).toMatchObject({
      driver: 'udp',
      proxy_protocol: { proxied: 2, missing: 1, malformed: 1, untrusted: 0 },
    });
  });

  it('dtls://: openssl s_client behind the balancer is the Client its header names', async () => {
    const cli = await start([
      'listen',
      'dtls://127.0.0.1:0',
      '--json',
      '--cert',
      fixturePath('ec-cert.pem'),
      '--key',
      fixturePath('ec-key.pem'),
      '--proxy-protocol-from',
      '127.0.0.1',
    ]);
    const balancer = await ProxyV2Balancer.start('127.0.0.1', ['127.0.0.1', cli.port], (c) => [
      '203.0.113.77',
      c.port,
    ]);
    cleanups.push(() => balancer.stop());
    const { peer } = await sClient('127.0.0.1', balancer.port, ['-dtls1_2', '-verify_hostname', 'localhost']);
    peers.push(peer);
    peer.child.stdin?.write('echoed through the balancer\n');
    await peer.waitFor(/echoed through the balancer/);
    const clientPort = Number(/\|(\d+)$/.exec(balancer.sessionKeys[0]!)![1]);
    await waitUntil(() => records(cli.stdout(), 'up').length === 1, 'the up record');
    expect(records(cli.stdout(), 'up')[0]).toMatchObject({
      driver: 'dtls',
      peername: ['203.0.113.77', clientPort],
      tls_version: 'DTLSv1.2',
    });
  });

  it('quic://[::1]: gtlsclient behind the balancer is the Client its header names', async () => {
    const cli = await start([
      'listen',
      'quic://[::1]:0',
      '--json',
      '--cert',
      fixturePath('ec-cert.pem'),
      '--key',
      fixturePath('ec-key.pem'),
      '--proxy-protocol-from',
      '::1',
    ]);
    const balancer = await ProxyV2Balancer.start('::1', ['::1', cli.port], (c) => ['2001:db8::77', c.port]);
    cleanups.push(() => balancer.stop());
    const client = runGtlsClient('::1', balancer.port);
    peers.push(client);
    await ngtcp2Report(client);
    const clientPort = Number(/\|(\d+)$/.exec(balancer.sessionKeys[0]!)![1]);
    await waitUntil(() => records(cli.stdout(), 'up').length === 1, 'the up record');
    expect(records(cli.stdout(), 'up')[0]).toMatchObject({
      driver: 'quic',
      peername: ['2001:db8::77', clientPort],
      tls_version: 'QUICv1',
    });
  });

  it('refuses it for stream schemes and bad address lists (exit 2)', async () => {
    for (const args of [
      ['listen', 'tcp://127.0.0.1:0', '--proxy-protocol-from', '127.0.0.1'],
      ['listen', 'udp://127.0.0.1:0', '--proxy-protocol-from', '10.0.0.0/33'],
      ['proxy', '--mode', 'reverse:udp://127.0.0.1:9', '--proxy-protocol-from', 'balancer.test'],
    ]) {
      const { code, stderr } = await runCli(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toMatch(/--proxy-protocol-from/);
    }
  });
});

describe('wirelayer proxy --proxy-protocol-from --proxy-protocol-upstream', () => {
  it('takes the client from the balancer header and names it in the header upstream', async () => {
    const upstream = await bound('127.0.0.1');
    const headers: ReturnType<typeof parseProxyHeader>[] = [];
    upstream.on('message', (d: Buffer, r) => {
      const header = parseProxyHeader(d);
      headers.push(header);
      upstream.send(d.subarray(header.length), r.port, r.address);
    });
    const cli = await start([
      'proxy',
      '--mode',
      `reverse:udp://127.0.0.1:${upstream.address().port}`,
      '--json',
      '--proxy-protocol-from',
      '127.0.0.1',
      '--proxy-protocol-upstream',
    ]);
    const balancer = await bound('127.0.0.1');
    const replies: string[] = [];
    balancer.on('message', (m: Buffer) => replies.push(String(m)));
    balancer.send(
      Buffer.concat([udpProxyHeader(['192.0.2.44', 4444], ['127.0.0.1', cli.port]), Buffer.from('hello')]),
      cli.port,
      '127.0.0.1',
    );
    await waitUntil(() => replies.length === 1, 'the reply');
    expect(replies).toEqual(['hello']);
    expect(headers[0]!.addresses).toMatchObject({
      source: '192.0.2.44',
      sourcePort: 4444,
      destinationPort: cli.port,
    });
    expect(records(cli.stdout(), 'start').find((r) => r.role === 'client')).toMatchObject({
      peername: ['192.0.2.44', 4444],
    });
    expect(await cli.stop()).toBe(0);
    expect(records(cli.stdout(), 'stats')[0]).toMatchObject({ proxy_protocol: { proxied: 1, missing: 0 } });
  });
});
