/**
 * The interception matrix's runs (shared by the matrix tests in test/proxy/ and `wirelayer bench
 * intercept`): real peers on both sides of the proxy, its link impaired, what arrived compared
 * byte for byte with what was sent.
 *
 * QUIC: `gtlsclient` (ngtcp2) -> proxy -> `gtlsserver`, HTTP/3 fetches of files the server
 * serves. Certificates are made here (a leaf for localhost and 127.0.0.1 from a fresh CA, which
 * the proxy trusts upstream), so nothing depends on the test fixtures.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../src/certs/index.js';
import type { Client, Connection, Server } from '../src/connection/index.js';
import type { StreamRecord } from '../src/proxy/layers/tcp.js';
import { type ProxyOptions, type ProxyStats, Proxy as WirelayerProxy } from '../src/proxy/proxy.js';

const HOST = '127.0.0.1';

/** A peer process with its output collected. */
export interface Peer {
  child: ChildProcess;
  output(): string;
  /** Resolves once the output matches, rejects at the deadline or when the peer exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves once it has exited (on its own). */
  exited(): Promise<void>;
  /** Kills it (if still running) and waits for the exit. */
  stop(): Promise<void>;
}

/** Spawns a peer; stdin stays an open pipe (openssl's s_client/s_server quit on stdin EOF). */
export function peer(command: string, args: readonly string[], cwd?: string): Peer {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd });
  let text = '';
  const append = (chunk: Buffer): void => {
    text += chunk.toString('latin1');
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  child.on('error', (err) => {
    text += `\nspawn error: ${err.message}`;
  });
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => text,
    async waitFor(pattern, timeoutMs = 10_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const m = text.match(pattern);
        if (m) return m;
        if (child.exitCode !== null || child.signalCode !== null || performance.now() > deadline)
          throw new Error(
            `${command} did not print ${pattern} (exit ${child.exitCode}):\n${text.slice(-2000)}`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    exited: () => exit,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exit;
      }
    },
  };
}

/** A certificate for localhost and 127.0.0.1 from a fresh CA, as files, and the CA to trust. */
export interface PeerCertificate {
  certFile: string;
  keyFile: string;
  caPem: string;
}

/** Files to serve (random bytes) and fresh directories to download into. */
export interface Site {
  htdocs: string;
  files: Map<string, Buffer>;
  certificate: PeerCertificate;
  /** The proxies' configuration directory: one wirelayer CA for every run of the site. */
  confdir: string;
  /** The wirelayer CA's certificate file there (made by the first proxy), for clients to trust. */
  proxyCaFile: string;
  /** The peers' CA as a file, for clients that go to the server directly. */
  caFile: string;
  /** A fresh directory, for one client's downloads. */
  dir(): string;
  remove(): void;
}

/** Makes the files (name -> size) and the peers' certificate in a temporary directory. */
export function makeSite(sizes: Readonly<Record<string, number>>): Site {
  const root = mkdtempSync(join(tmpdir(), 'wirelayer-intercept-'));
  const htdocs = join(root, 'htdocs');
  mkdirSync(htdocs);
  const files = new Map<string, Buffer>();
  for (const [name, size] of Object.entries(sizes)) {
    const body = randomBytes(size);
    writeFileSync(join(htdocs, name), body);
    files.set(name, body);
  }
  const ca = CertificateAuthority.create({ type: 'ec' });
  const leaf = ca.issue('localhost', { altNames: [HOST] });
  const certificate = { certFile: join(root, 'cert.pem'), keyFile: join(root, 'key.pem'), caPem: ca.certPem };
  writeFileSync(certificate.certFile, leaf.certPem);
  writeFileSync(certificate.keyFile, leaf.keyPem);
  const caFile = join(root, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  const confdir = join(root, 'wirelayer');
  mkdirSync(confdir);
  let n = 0;
  return {
    htdocs,
    files,
    certificate,
    confdir,
    proxyCaFile: join(confdir, 'wirelayer-ca-cert.pem'),
    caFile,
    dir() {
      const dir = join(root, `d${n++}`);
      mkdirSync(dir);
      return dir;
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** A free UDP port on loopback (bound, read, released). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, HOST, r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves once something is bound to UDP `port` (asked of the kernel with `ss`). */
export async function boundUdp(port: number, p: Peer, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (execFileSync('ss', ['-Hunl', `sport = :${port}`], { encoding: 'utf8' }).trim() === '') {
    if (performance.now() > deadline || p.child.exitCode !== null)
      throw new Error(`nothing bound to UDP port ${port}:\n${p.output().slice(-1000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The models of a flow's legs, as the proxy's `model` events left them (the last flow's). */
export interface Legs {
  client: Client | null;
  server: Server | null;
}

export function watchLegs(proxy: WirelayerProxy): Legs {
  const legs: Legs = { client: null, server: null };
  proxy.on('model', (_event: string, conn: Connection) => {
    if (conn.constructor.name === 'Client') legs.client = conn as Client;
    else legs.server = conn as Server;
  });
  return legs;
}

/** What one QUIC run saw. */
export interface QuicRun {
  /** Per client, the files that arrived whole (byte for byte), in the order asked. */
  intact: string[][];
  /** Per client, the cipher suite it negotiated (GnuTLS's name) and its exit code. */
  ciphers: (string | null)[];
  exitCodes: (number | null)[];
  /** null: the run was direct, without the proxy. */
  legs: Legs | null;
  stats: ProxyStats | null;
  streams: StreamRecord[];
  /** From the clients' start to the last one's exit, ms. */
  elapsedMs: number;
  /** Per client, from its start to its "handshake has completed" (its own log clock), ms. */
  handshakeMs: (number | null)[];
  outputs: string[];
  /** Flows the proxy reported failed (`flowError`): code and message. */
  flowErrors: string[];
  /** Every source gtlsserver received datagrams from (`host:port`, as it logs them). */
  serverSaw: Set<string>;
}

/** Options of `quicRun`. */
export interface QuicRunOptions {
  site: Site;
  /** Per client (all run at once, one connection each): the files it fetches on that connection. */
  fetches: readonly (readonly string[])[];
  /** false: the clients go to gtlsserver directly (a baseline). Default true. */
  proxied?: boolean;
  impair?: string;
  proxy?: Partial<ProxyOptions>;
  clientArgs?: readonly string[];
  serverArgs?: readonly string[];
  /** gtlsclient's idle timeout, s (default 5); a run is bounded by three times it. */
  timeoutS?: number;
}

/**
 * From gtlsclient's start to its handshake's completion, ms, on its own log clock (`I00001234`
 * leads each log line: ms since it started), so process start-up does not count.
 */
function handshakeMs(output: string): number | null {
  const done = output.indexOf('QUIC handshake has completed');
  if (done === -1) return null;
  const stamps = output.slice(0, done).match(/^I(\d{8}) /gm);
  return stamps === null ? null : Number(stamps.at(-1)!.slice(1, 9));
}

/**
 * Runs the fetches through a fresh proxy (or directly) to a fresh gtlsserver, and checks every
 * download against the site. Every process it starts is stopped before it returns.
 */
export async function quicRun(options: QuicRunOptions): Promise<QuicRun> {
  const { site } = options;
  const serverPort = await freeUdpPort();
  const upstream = peer('gtlsserver', [
    '--no-http-dump',
    '--no-quic-dump',
    '--timeout=5s',
    `--htdocs=${site.htdocs}`,
    ...(options.serverArgs ?? []),
    HOST,
    String(serverPort),
    site.certificate.keyFile,
    site.certificate.certFile,
  ]);
  const clients: Peer[] = [];
  let proxy: WirelayerProxy | null = null;
  try {
    await boundUdp(serverPort, upstream);
    let legs: Legs | null = null;
    const streams: StreamRecord[] = [];
    const flowErrors: string[] = [];
    let port = serverPort;
    if (options.proxied !== false) {
      proxy = await WirelayerProxy.start({
        modes: [`reverse:quic://${HOST}:${serverPort}`],
        confdir: site.confdir,
        upstreamCa: site.certificate.caPem,
        ...(options.impair !== undefined ? { impair: options.impair } : {}),
        ...options.proxy,
      });
      legs = watchLegs(proxy);
      proxy.on('stream', (r: StreamRecord) => streams.push(r));
      proxy.on('flowError', (err: Error & { code?: string }) =>
        flowErrors.push(`${err.code}: ${err.message}`),
      );
      port = proxy.listening[0]!.address[1];
    }
    const timeoutS = options.timeoutS ?? 5;
    const dirs = options.fetches.map(() => site.dir());
    const start = performance.now();
    for (const [i, names] of options.fetches.entries()) {
      clients.push(
        peer('gtlsclient', [
          '--no-http-dump',
          '--no-quic-dump',
          `--timeout=${timeoutS}s`,
          `--download=${dirs[i]}`,
          '--exit-on-all-streams-close',
          ...(options.clientArgs ?? []),
          HOST,
          String(port),
          ...names.map((name) => `https://${HOST}:${port}/${name}`),
        ]),
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `gtlsclient still running after ${timeoutS * 3} s:\n${clients[0]!.output().slice(-1500)}`,
            ),
          ),
        timeoutS * 3000,
      );
    });
    try {
      await Promise.race([Promise.all(clients.map((c) => c.exited())), deadline]);
    } finally {
      clearTimeout(timer);
    }
    const elapsedMs = performance.now() - start;
    const intact = options.fetches.map((names, i) =>
      names.filter((name) => {
        try {
          return readFileSync(join(dirs[i]!, name)).equals(site.files.get(name)!);
        } catch {
          return false;
        }
      }),
    );
    let stats: ProxyStats | null = null;
    if (proxy !== null) {
      await proxy.close();
      stats = proxy.stats;
    }
    return {
      intact,
      ciphers: clients.map((c) => /Negotiated cipher suite is (\S+)/.exec(c.output())?.[1] ?? null),
      exitCodes: clients.map((c) => c.child.exitCode),
      legs,
      stats,
      streams,
      elapsedMs,
      handshakeMs: clients.map((c) => handshakeMs(c.output())),
      outputs: clients.map((c) => c.output()),
      flowErrors,
      serverSaw: new Set(
        [...upstream.output().matchAll(/^Received packet: local=\S+ remote=\[([^\]]+)\]:(\d+)/gm)].map(
          (m) => `${m[1]}:${m[2]}`,
        ),
      ),
    };
  } finally {
    await proxy?.close();
    await Promise.all(clients.map((c) => c.stop()));
    await upstream.stop();
  }
}

/** What one DTLS run saw. */
export interface DtlsRun {
  /** null: direct, without the proxy. */
  legs: Legs | null;
  stats: ProxyStats | null;
  /** From the client's start to its handshake report, ms (process start-up included). */
  handshakeMs: number;
  /** How many times each line sent by the client appeared at the server, and back. */
  atServer: number[];
  atClient: number[];
  /** How many times each of `upDropped` appeared at the server. */
  droppedAtServer: number[];
  clientOutput: string;
  serverOutput: string;
  flowErrors: string[];
}

/** Options of `dtlsRun`. */
export interface DtlsRunOptions {
  site: Site;
  impair?: string;
  /** `openssl s_client -dtls1_2` or `gnutls-cli --udp`, verifying the proxy's CA. */
  client: 'openssl' | 'gnutls';
  /** false: the client goes to s_server directly (a baseline). Default true. */
  proxied?: boolean;
  clientArgs?: readonly string[];
  /** Lines the client sends, then lines the server sends (each must be unique in the output). */
  up?: readonly string[];
  down?: readonly string[];
  /** How long the handshake and each line may take, ms (default 20000). */
  timeoutMs?: number;
  /**
   * Send each line again every `resendMs` until it arrives (DTLS does not retransmit records: a
   * lossy link loses lines, so an application that must get them through sends again); off by default.
   */
  resendMs?: number;
  /**
   * Lines the client sends first that the impairment is to drop (one datagram each): each is
   * awaited as a drop toward the server, so the next line goes in a record of its own.
   */
  upDropped?: readonly string[];
  proxy?: Partial<ProxyOptions>;
}

const count = (text: string, line: string): number => text.split(line).length - 1;

/**
 * `openssl s_server -dtls1_2` upstream, the proxy (`reverse:dtls`) in front of it, and a client;
 * once the client reports its handshake, the lines go up one by one (each awaited at the
 * server), then down. Every process it starts is stopped before it returns.
 */
export async function dtlsRun(options: DtlsRunOptions): Promise<DtlsRun> {
  const { site } = options;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const serverPort = await freeUdpPort();
  const server = peer('openssl', [
    's_server',
    '-dtls1_2',
    '-accept',
    `${HOST}:${serverPort}`,
    '-cert',
    site.certificate.certFile,
    '-key',
    site.certificate.keyFile,
    // non-blocking: a blocking s_server that reads a record DTLS discards (a duplicate, a
    // retransmitted flight) waits in recvfrom for the next datagram and stops reading its stdin
    '-nbio',
  ]);
  let client: Peer | null = null;
  let proxy: WirelayerProxy | null = null;
  try {
    await server.waitFor(/ACCEPT/);
    let legs: Legs | null = null;
    const flowErrors: string[] = [];
    let port = serverPort;
    if (options.proxied !== false) {
      proxy = await WirelayerProxy.start({
        modes: [`reverse:dtls://${HOST}:${serverPort}`],
        confdir: site.confdir,
        upstreamCa: site.certificate.caPem,
        ...(options.impair !== undefined ? { impair: options.impair } : {}),
        ...options.proxy,
      });
      legs = watchLegs(proxy);
      proxy.on('flowError', (err: Error & { code?: string }) =>
        flowErrors.push(`${err.code}: ${err.message}`),
      );
      port = proxy.listening[0]!.address[1];
    }
    const caFile = options.proxied === false ? site.caFile : site.proxyCaFile;
    const start = performance.now();
    client =
      options.client === 'openssl'
        ? peer('openssl', [
            's_client',
            '-dtls1_2',
            '-connect',
            `${HOST}:${port}`,
            '-servername',
            'localhost',
            '-CAfile',
            caFile,
            '-verify_return_error',
            '-nbio',
            ...(options.clientArgs ?? []),
          ])
        : peer('gnutls-cli', [
            '--udp',
            '--port',
            String(port),
            '--x509cafile',
            caFile,
            ...(options.clientArgs ?? []),
            'localhost',
          ]);
    await client.waitFor(
      options.client === 'openssl' ? /Verify return code: 0 \(ok\)/ : /- Handshake was completed/,
      timeoutMs,
    );
    const handshakeMs = performance.now() - start;
    const upDropped = (): number => proxy?.stats.impair?.up.dropped ?? 0;
    for (const line of options.upDropped ?? []) {
      const before = upDropped();
      client.child.stdin!.write(`${line}\n`);
      const deadline = performance.now() + timeoutMs;
      while (upDropped() === before) {
        if (performance.now() > deadline)
          throw new Error(`the impairment did not drop "${line.slice(0, 40)}"`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    const deliver = async (line: string, from: Peer, to: Peer): Promise<void> => {
      from.child.stdin!.write(`${line}\n`);
      const resend =
        options.resendMs === undefined
          ? undefined
          : setInterval(() => from.child.stdin!.write(`${line}\n`), options.resendMs);
      try {
        await to.waitFor(new RegExp(line), timeoutMs);
      } finally {
        clearInterval(resend);
      }
    };
    for (const line of options.up ?? []) await deliver(line, client, server);
    for (const line of options.down ?? []) await deliver(line, server, client);
    await proxy?.close();
    return {
      legs,
      stats: proxy?.stats ?? null,
      handshakeMs,
      atServer: (options.up ?? []).map((l) => count(server.output(), l)),
      atClient: (options.down ?? []).map((l) => count(client!.output(), l)),
      droppedAtServer: (options.upDropped ?? []).map((l) => count(server.output(), l)),
      clientOutput: client.output(),
      serverOutput: server.output(),
      flowErrors,
    };
  } finally {
    await client?.stop();
    await proxy?.close();
    await server.stop();
  }
}

/** What one stream (TLS or TCP) run saw. */
export interface StreamRun {
  /** The file arrived whole. */
  intact: boolean;
  /** curl's own times, ms: TLS (or TCP) set up, and the whole transfer. */
  setupMs: number;
  totalMs: number;
  /** curl's "SSL connection using VERSION / CIPHER" (TLS). */
  clientVersion: string | null;
  clientCipher: string | null;
  /** null: direct, without the proxy. */
  legs: Legs | null;
  stats: ProxyStats | null;
  flowErrors: string[];
}

/** Options of `streamRun`. */
export interface StreamRunOptions {
  site: Site;
  /** A file of the site, fetched by curl over HTTP/1 (TLS: from `openssl s_server -WWW`). */
  file: string;
  scheme: 'tls' | 'tcp';
  /** false: curl goes to the server directly (a baseline). Default true. */
  proxied?: boolean;
  impair?: string;
  timeoutMs?: number;
}

/** A minimal HTTP/1.0 file server (the TCP case's upstream): GET /NAME answers the file and closes. */
async function httpFileServer(site: Site): Promise<{ port: number; close(): Promise<void> }> {
  const { createServer } = await import('node:net');
  const server = createServer((socket) => {
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const m = /^GET \/(\S+) HTTP\/1\.[01]\r\n[\s\S]*?\r\n\r\n/.exec(head);
      if (m === null) return;
      socket.removeAllListeners('data');
      const body = site.files.get(m[1]!);
      if (body === undefined) socket.end('HTTP/1.0 404 Not Found\r\n\r\n');
      else
        socket.end(
          Buffer.concat([Buffer.from(`HTTP/1.0 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]),
        );
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, HOST, r));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * curl fetches `file` through a fresh proxy (`reverse:tls` or `reverse:tcp`), or directly, from
 * `openssl s_server -WWW` (TLS) or a small HTTP/1.0 file server (TCP).
 */
export async function streamRun(options: StreamRunOptions): Promise<StreamRun> {
  const { site, scheme } = options;
  const timeoutMs = options.timeoutMs ?? 20_000;
  let upstream: Peer | null = null;
  let http: { port: number; close(): Promise<void> } | null = null;
  let proxy: WirelayerProxy | null = null;
  let curl: Peer | null = null;
  try {
    let upstreamPort: number;
    if (scheme === 'tls') {
      const { createServer } = await import('node:net');
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, HOST, r));
      upstreamPort = (probe.address() as { port: number }).port;
      await new Promise<void>((r) => probe.close(() => r()));
      upstream = peer(
        'openssl',
        [
          's_server',
          '-WWW',
          '-accept',
          `${HOST}:${upstreamPort}`,
          '-cert',
          site.certificate.certFile,
          '-key',
          site.certificate.keyFile,
        ],
        site.htdocs,
      );
      await upstream.waitFor(/ACCEPT/);
    } else {
      http = await httpFileServer(site);
      upstreamPort = http.port;
    }
    let port = upstreamPort;
    let legs: Legs | null = null;
    const flowErrors: string[] = [];
    if (options.proxied !== false) {
      proxy = await WirelayerProxy.start({
        modes: [`reverse:${scheme}://${HOST}:${upstreamPort}`],
        confdir: site.confdir,
        upstreamCa: site.certificate.caPem,
        ...(options.impair !== undefined ? { impair: options.impair } : {}),
      });
      legs = watchLegs(proxy);
      proxy.on('flowError', (err: Error & { code?: string }) =>
        flowErrors.push(`${err.code}: ${err.message}`),
      );
      port = proxy.listening[0]!.address[1];
    }
    const caFile = options.proxied === false ? site.caFile : site.proxyCaFile;
    const out = join(site.dir(), options.file);
    const url = `${scheme === 'tls' ? 'https' : 'http'}://localhost:${port}/${options.file}`;
    curl = peer('curl', [
      '-sS',
      '-v',
      '--http1.1',
      '--resolve',
      `localhost:${port}:${HOST}`,
      ...(scheme === 'tls' ? ['--cacert', caFile] : []),
      '-o',
      out,
      '-w',
      'times %{time_appconnect} %{time_connect} %{time_total}\n',
      '--max-time',
      String(timeoutMs / 1000),
      url,
    ]);
    await curl.exited();
    const times = /times (\S+) (\S+) (\S+)/.exec(curl.output());
    if (times === null || curl.child.exitCode !== 0)
      throw new Error(`curl failed:\n${curl.output().slice(-1500)}`);
    const tlsLine = /SSL connection using (\S+) \/ (\S+)/.exec(curl.output());
    let intact = false;
    try {
      intact = readFileSync(out).equals(site.files.get(options.file)!);
    } catch {
      intact = false;
    }
    let stats: ProxyStats | null = null;
    if (proxy !== null) {
      await proxy.close();
      stats = proxy.stats;
    }
    return {
      intact,
      setupMs: Number(times[scheme === 'tls' ? 1 : 2]) * 1000,
      totalMs: Number(times[3]) * 1000,
      clientVersion: tlsLine?.[1] ?? null,
      clientCipher: tlsLine?.[2] ?? null,
      legs,
      stats,
      flowErrors,
    };
  } finally {
    await curl?.stop();
    await proxy?.close();
    await upstream?.stop();
    await http?.close();
  }
}
