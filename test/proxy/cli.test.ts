/**
 * `wirelayer proxy` and `wirelayer bench udp` end to end: the built CLI in a child process
 * (the build runs first, once).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/connection/index.js';
import { CLIENT_STATE_KEYS, SERVER_STATE_KEYS } from '../../src/connection/index.js';
import { quic } from '../../src/transport/quic/index.js';
import type { QuicSession } from '../../src/transport/quic/session.js';
import type { QuicStream } from '../../src/transport/quic/stream.js';
import { fixturePath } from '../helpers/certs.js';
import { Socks5Association, udpHeader } from '../helpers/socks5-udp.js';
import { startOpensslServer } from '../transport/tls-peers.js';
import { opensslClient, tempConfdir } from './proxy-peers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const main = `${root}dist/src/cli/main.js`;

function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { child: ChildProcess; stdout: () => string; stderr: () => string } {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  return { child, stdout: () => out, stderr: () => err };
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

const closeSocket = (s: Socket): Promise<void> => new Promise((r) => s.close(() => r()));

beforeAll(() => {
  execFileSync(
    process.execPath,
    [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.build.json`],
    {
      stdio: 'inherit',
      timeout: 60_000,
    },
  );
}, 90_000);

describe('wirelayer proxy (built CLI, child process)', () => {
  it('relays each client flow and prints JSON records for its Client and its Server', async () => {
    const echo = await bound();
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    const upstream = echo.address().port;
    const cli = runCli([
      'proxy',
      '--mode',
      `reverse:udp://127.0.0.1:${upstream}`,
      '--json',
      '--idle-timeout',
      '0.2',
    ]);
    const clients = [await bound(), await bound()];
    try {
      await until(() => /listening on udp:\/\//.test(cli.stderr()), 'the listening line');
      const port = Number(
        /listening on udp:\/\/127\.0\.0\.1:(\d+) \(reverse:udp:\/\/127\.0\.0\.1:\d+\)/.exec(cli.stderr())![1],
      );
      for (const [i, c] of clients.entries()) {
        const reply = once(c, 'message');
        c.send(`hello ${i}`, port, '127.0.0.1');
        expect(((await reply)[0] as Buffer).toString()).toBe(`hello ${i}`);
      }
      // idle timeout: each flow's Client and Server close
      await until(() => (cli.stdout().match(/"event":"closed"/g) ?? []).length === 4, 'four closed records');
      const exited = once(cli.child, 'exit');
      cli.child.kill('SIGTERM');
      const [code] = (await exited) as [number];
      expect(code).toBe(0);

      const records = cli
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const c of clients) {
        const clientPort = c.address().port;
        const mine = records.filter(
          (r) => r.role === 'client' && (r.peername as [string, number])[1] === clientPort,
        );
        expect(mine.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
        for (const r of mine) {
          expect(Object.keys(r)).toEqual(['event', 'driver', 'role', 'flow', ...CLIENT_STATE_KEYS]);
          expect(r.flow).toBe(r.id);
          expect(r).toMatchObject({
            driver: 'udp',
            transport_protocol: 'udp',
            proxy_mode: `reverse:udp://127.0.0.1:${upstream}`,
            sockname: ['127.0.0.1', port],
            error: null,
          });
        }
        // its Server: the upstream socket whose records carry the same id from start to closed
        const ids = new Set(records.filter((r) => r.role === 'server').map((r) => r.id));
        expect(ids.size).toBe(2);
      }
      const servers = records.filter((r) => r.role === 'server');
      for (const id of new Set(servers.map((r) => r.id))) {
        const mine = servers.filter((r) => r.id === id);
        expect(mine.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
        for (const r of mine) {
          expect(Object.keys(r)).toEqual(['event', 'driver', 'role', 'flow', ...SERVER_STATE_KEYS]);
          // the flow is its Client's id
          expect(records.some((c) => c.role === 'client' && c.id === r.flow)).toBe(true);
          expect(r).toMatchObject({
            address: ['127.0.0.1', upstream],
            timestamp_tcp_setup: null,
            error: null,
          });
        }
        expect(mine[1]!.peername).toEqual(['127.0.0.1', upstream]);
        expect(mine[2]!.timestamp_end).toBeTypeOf('number');
      }
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      await Promise.all([...clients, echo].map(closeSocket));
    }
  });

  it('reverse:tls with -s ADDON and --keylog: s_client -> proxy -> s_server, both legs and a stream record per flow', async () => {
    const conf = tempConfdir();
    const keylog = `${conf.dir}/keys.log`;
    const upstream = await startOpensslServer(
      '127.0.0.1',
      ['-cert', fixturePath('rsa-cert.pem'), '-key', fixturePath('rsa-key.pem'), '-alpn', 'h2'],
      { brief: false },
    );
    const cli = runCli(
      [
        'proxy',
        '--mode',
        `reverse:tls://127.0.0.1:${upstream.port}`,
        '--upstream-ca',
        fixturePath('rsa-cert.pem'),
        '-s',
        `${root}test/proxy/fixtures/rewrite-addon.mjs`,
        '--keylog',
        keylog,
        '--json',
      ],
      { ...process.env, WIRELAYER_CONFDIR: conf.dir },
    );
    try {
      await until(() => /listening on tls:\/\//.test(cli.stderr()), 'the listening line');
      const port = Number(/listening on tls:\/\/127\.0\.0\.1:(\d+)/.exec(cli.stderr())![1]);
      const { peer, report } = await opensslClient(port, [
        '-servername',
        'localhost',
        '-alpn',
        'h2',
        '-CAfile',
        conf.caFile,
        '-verify_return_error',
      ]);
      try {
        expect(report).toMatchObject({ verifyCode: 0, alpn: 'h2' });
        peer.child.stdin!.write('ping pong\n');
        await upstream.peer.waitFor(/PING pong/);
        upstream.peer.child.stdin!.write('reply\n');
        await peer.waitFor(/reply/);
      } finally {
        await peer.stop();
      }
      await until(() => /"event":"stream"/.test(cli.stdout()), 'the stream record');
      await until(() => (cli.stdout().match(/"event":"closed"/g) ?? []).length === 2, 'both legs closed');
      const exited = once(cli.child, 'exit');
      cli.child.kill('SIGTERM');
      expect(((await exited) as [number])[0]).toBe(0);
      const records = cli
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const client = records.filter((r) => r.role === 'client');
      const server = records.filter((r) => r.role === 'server');
      const flow = client[0]!.id;
      expect(client.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
      expect(server.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
      for (const r of [...client, ...server]) {
        expect(r).toMatchObject({ driver: 'tls', flow });
        expect(Object.keys(r)).toEqual([
          'event',
          'driver',
          'role',
          'flow',
          ...(r.role === 'client' ? CLIENT_STATE_KEYS : SERVER_STATE_KEYS),
        ]);
      }
      // each leg's handshake, from its own engine
      expect(client[1]).toMatchObject({
        tls_version: 'TLSv1.3',
        alpn: 'h2',
        sni: 'localhost',
        cipher: report.cipher,
      });
      expect(client[1]!.mitmcert).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(server[1]).toMatchObject({
        tls_version: 'TLSv1.3',
        alpn: 'h2',
        sni: 'localhost',
        alpn_offers: ['h2'],
      });
      expect(server[1]!.certificate_list).toEqual([readFileSync(fixturePath('rsa-cert.pem'), 'utf8')]);
      const stream = records.find((r) => r.event === 'stream');
      expect(stream).toEqual({
        event: 'stream',
        flow,
        client_stream_id: null,
        server_stream_id: null,
        bytes_from_client: 'ping pong\n'.length,
        bytes_from_server: 'reply\n'.length,
        end: expect.stringMatching(/^(fin|reset \w+)$/),
      });
      expect(cli.stderr()).toMatch(new RegExp(`addon: flow ${flow} localhost: 10 B up, 6 B down`));
      // both legs' secrets: two TLS 1.3 handshakes, two client randoms
      const randoms = new Set(
        readFileSync(keylog, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0 '))
          .map((l) => l.split(' ')[1]),
      );
      expect(randoms.size).toBe(2);
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      await upstream.stop();
      conf.remove();
    }
  });

  it('several --mode: one listener each (tcp and udp here), every flow relayed by its own mode', async () => {
    const echo = await bound();
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    const tcpEcho = createServer((s) => s.pipe(s));
    tcpEcho.listen(0, '127.0.0.1');
    await once(tcpEcho, 'listening');
    const tcpPort = (tcpEcho.address() as { port: number }).port;
    const cli = runCli([
      'proxy',
      '--mode',
      `reverse:tcp://127.0.0.1:${tcpPort}`,
      '--mode',
      `reverse:udp://127.0.0.1:${echo.address().port}`,
      '--json',
    ]);
    const client = await bound();
    try {
      await until(() => (cli.stderr().match(/listening on/g) ?? []).length === 2, 'two listening lines');
      const tcpProxy = Number(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/.exec(cli.stderr())![1]);
      const udpProxy = Number(/listening on udp:\/\/127\.0\.0\.1:(\d+)/.exec(cli.stderr())![1]);
      const reply = once(client, 'message');
      client.send('over udp', udpProxy, '127.0.0.1');
      expect(String((await reply)[0])).toBe('over udp');
      const socket = connect(tcpProxy, '127.0.0.1');
      socket.write('over tcp');
      const [data] = await once(socket, 'data');
      expect(String(data)).toBe('over tcp');
      socket.destroy();
      await until(() => /"event":"stream"/.test(cli.stdout()), 'the tcp stream record');
      const drivers = new Set(
        cli
          .stdout()
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { driver?: string }).driver)
          .filter((d) => d !== undefined),
      );
      expect([...drivers].sort()).toEqual(['tcp', 'udp']);
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      tcpEcho.close();
      await Promise.all([client, echo].map(closeSocket));
    }
  });

  it('reverse:quic: a stream through the proxy, both legs printed as QUIC models', async () => {
    const conf = tempConfdir();
    const upstream = await quic.listen({
      host: '127.0.0.1',
      cert: readFileSync(fixturePath('ec-cert.pem'), 'utf8'),
      key: readFileSync(fixturePath('ec-key.pem'), 'utf8'),
      ALPNProtocols: ['x'],
    });
    upstream.on('session', (s: QuicSession<Client>) => s.on('stream', (st: QuicStream) => st.pipe(st)));
    const cli = runCli(
      [
        'proxy',
        '--mode',
        `reverse:quic://127.0.0.1:${upstream.address[1]}`,
        '--upstream-ca',
        fixturePath('ec-cert.pem'),
        '--quic-timeout',
        '30',
        '--json',
      ],
      { ...process.env, WIRELAYER_CONFDIR: conf.dir },
    );
    try {
      await until(() => /listening on quic:\/\//.test(cli.stderr()), 'the listening line');
      const port = Number(/listening on quic:\/\/127\.0\.0\.1:(\d+)/.exec(cli.stderr())![1]);
      await using session = await quic.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(conf.caFile, 'utf8'),
        ALPNProtocols: ['x'],
      });
      const stream = session.openStream();
      stream.end('through the CLI');
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('through the CLI');
      await until(() => /"event":"stream"/.test(cli.stdout()), 'the stream record');
      const ups = cli
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event: string; driver?: string; role?: string; tls_version?: string })
        .filter((r) => r.event === 'up');
      expect(ups.map((r) => [r.driver, r.role, r.tls_version]).sort()).toEqual([
        ['quic', 'client', 'QUICv1'],
        ['quic', 'server', 'QUICv1'],
      ]);
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      await upstream.close();
      conf.remove();
    }
  });

  it('--mode socks5 with --proxyauth and --socks5-advertise: a UDP association, JSON records of its flow', async () => {
    const echo = await bound();
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    const cli = runCli([
      'proxy',
      '--mode',
      'socks5',
      '--listen-port',
      '0',
      '--proxyauth',
      'alice:pw',
      '--socks5-advertise',
      '192.0.2.9',
      '--json',
    ]);
    try {
      await until(() => /listening on socks5:\/\//.test(cli.stderr()), 'the listening line');
      const port = Number(/listening on socks5:\/\/127\.0\.0\.1:(\d+) \(socks5\)/.exec(cli.stderr())![1]);
      await expect(Socks5Association.open('127.0.0.1', port)).rejects.toMatchObject({ method: 0xff });
      const assoc = await Socks5Association.open('127.0.0.1', port, {
        auth: { username: 'alice', password: 'pw' },
      });
      expect(assoc.bound.host).toBe('192.0.2.9');
      // the advertised address is for clients behind NAT: here the relay port is reached on loopback
      const reply = once(assoc, 'datagram');
      assoc.udp.send(
        Buffer.concat([udpHeader('127.0.0.1', echo.address().port), Buffer.from('via cli')]),
        assoc.bound.port,
        '127.0.0.1',
      );
      expect(String(((await reply)[0] as { data: Buffer }).data)).toBe('via cli');
      await until(() => /"driver":"udp"/.test(cli.stdout()), 'the UDP flow records');
      const udpRecord = cli
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((r) => r.driver === 'udp' && r.role === 'client')!;
      expect(udpRecord).toMatchObject({ proxy_mode: 'socks5', transport_protocol: 'udp' });
      await assoc.close();
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      await closeSocket(echo);
    }
  });

  it('exits 2 on bad usage', async () => {
    for (const args of [
      ['proxy'],
      ['proxy', '--mode', 'udp://127.0.0.1:53'],
      ['proxy', '--mode', 'reverse:ftp://127.0.0.1:21'],
      ['proxy', '--mode', 'reverse:tls://127.0.0.1:443', '--connection-strategy', 'sometimes'],
      ['proxy', '--mode', 'reverse:tls://127.0.0.1:443', '--ignore-hosts', '('],
      ['proxy', '--mode', 'reverse:tls://127.0.0.1:443', '-s', '/nonexistent/addon.js'],
      ['proxy', '--mode', 'reverse:udp://127.0.0.1:53', '--listen-port', '70000'],
      ['proxy', '--mode', 'socks4'],
      ['proxy', '--mode', 'socks5', '--proxyauth', 'no-colon'],
      ['bench', 'nope'],
    ]) {
      const cli = runCli(args);
      const [code] = (await once(cli.child, 'exit')) as [number];
      expect(code, args.join(' ')).toBe(2);
      expect(cli.stderr()).toMatch(/^wirelayer (proxy|bench): /);
    }
  });
});

describe('wirelayer proxy --impair (built CLI, child process)', () => {
  it('impairs the relay and prints the counters in a last stats record on SIGTERM', async () => {
    const echo = await bound();
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    const cli = runCli([
      'proxy',
      '--mode',
      `reverse:udp://127.0.0.1:${echo.address().port}`,
      '--impair',
      'up:drop=2,down:duplicate=1,seed=7',
      '--json',
    ]);
    const client = await bound();
    try {
      await until(() => /listening on udp:\/\//.test(cli.stderr()), 'the listening line');
      expect(cli.stderr()).toMatch(/impairing with seed 7/);
      const port = Number(/listening on udp:\/\/127\.0\.0\.1:(\d+)/.exec(cli.stderr())![1]);
      const back: string[] = [];
      client.on('message', (m: Buffer) => back.push(m.toString()));
      for (const text of ['one', 'two', 'three']) client.send(text, port, '127.0.0.1');
      await until(() => back.length === 4, 'datagrams 1 and 3, each twice');
      expect(back.sort()).toEqual(['one', 'one', 'three', 'three']);
      const exited = once(cli.child, 'exit');
      cli.child.kill('SIGTERM');
      expect(((await exited) as [number])[0]).toBe(0);
      const last = JSON.parse(cli.stdout().trim().split('\n').at(-1)!) as Record<string, unknown>;
      expect(last).toMatchObject({
        event: 'stats',
        flows: 1,
        live_flows: 0,
        impair: {
          seed: 7,
          up: { dropped: 1, reordered: 0, duplicated: 0, corrupted: 0, delayed: 0, rebound: 0 },
          down: { dropped: 0, reordered: 0, duplicated: 2, corrupted: 0, delayed: 0, rebound: 0 },
        },
      });
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      await Promise.all([client, echo].map(closeSocket));
    }
  });

  it('exits 2 on a bad spec, naming the term', async () => {
    for (const [mode, spec, term] of [
      ['reverse:udp://127.0.0.1:53', 'loss=2', 'loss=2'],
      ['reverse:udp://127.0.0.1:53', 'delay=5,jitter=-1', 'jitter=-1'],
      ['reverse:dtls://127.0.0.1:53', 'loss=0.1,explode=1', 'explode=1'],
      ['reverse:tcp://127.0.0.1:80', 'delay=5,loss=0.1', 'loss'],
    ] as const) {
      const cli = runCli(['proxy', '--mode', mode, '--impair', spec]);
      const [code] = (await once(cli.child, 'exit')) as [number];
      expect(code, spec).toBe(2);
      expect(cli.stderr()).toContain(`wirelayer proxy: --impair: bad term "${term}"`);
    }
  });
});

describe('wirelayer bench udp (built CLI, child process)', () => {
  it('measures every relay beside the node baseline and prints the result', async () => {
    const cli = runCli([
      'bench',
      'udp',
      '--rounds',
      '1',
      '--duration',
      '100',
      '--sizes',
      '64',
      '--flows',
      '1,20',
      '--json',
    ]);
    const [code] = (await once(cli.child, 'exit')) as [number];
    expect(code, cli.stderr()).toBe(0);
    expect(cli.stderr()).toMatch(/round 1\/1 {2}64 B x 20 flows: /);
    const result = JSON.parse(cli.stdout()) as {
      cases: {
        size: number;
        flows: number;
        rate: Record<string, number | null>;
        ratio: Record<string, number | null>;
      }[];
      relays: string[];
      backend: string | null;
    };
    expect(result.relays).toEqual(['wirelayer', 'wirelayer-dgram', 'node', 'socat', 'direct']);
    expect(result.backend).toBe('native');
    expect(result.cases.map((c) => [c.size, c.flows])).toEqual([
      [64, 1],
      [64, 20],
    ]);
    for (const c of result.cases) {
      for (const relay of result.relays)
        expect(c.rate[relay], `${relay}\n${cli.stderr()}`).toBeGreaterThan(0);
      expect(c.ratio.wirelayer).toBeGreaterThan(0);
      expect(c.ratio['wirelayer-dgram']).toBeGreaterThan(0);
    }
    // nothing left behind: every bench process of this checkout is gone (others may run benches)
    const ours = execFileSync('ps', ['-e', '-o', 'args'])
      .toString()
      .split('\n')
      .filter((line) => line.includes(`${root}dist/bench/`));
    expect(ours.filter((line) => /udp-peer|udp-relays\.js/.test(line))).toEqual([]);
  }, 60_000);
});
