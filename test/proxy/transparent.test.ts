/**
 * `wirelayer proxy --mode transparent` in three network namespaces this test makes and removes:
 * a client, a router where the proxy runs, and a server. The client dials the server's own
 * address; nftables rules in the router bring the flows to the proxy's one port (TPROXY for TCP
 * on 443 and 7000, for UDP on 5353, 4444 and 4433; REDIRECT for TCP on 9000). The proxy dials the
 * address each client dialed, so every flow reaches the real server through it:
 *
 * - TLS (TPROXY): node's tls -> proxy (intercepted) -> openssl s_server -rev;
 * - plain TCP by REDIRECT (SO_ORIGINAL_DST) and by TPROXY -> socat PIPE;
 * - raw UDP (TPROXY) -> socat echo, the answer from the server's address (a connected client
 *   drops any other);
 * - DTLS (TPROXY): openssl s_client -dtls1_2 -> proxy (intercepted) -> openssl s_server -dtls1_2;
 * - QUIC (TPROXY) -> gtlsclient -> proxy (intercepted) -> gtlsserver, a file over HTTP/3.
 *
 * Runs as root; the proxy is the built CLI, started in the router with `ip netns exec`.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/certs.js';
import { Namespaces, netnsId } from '../helpers/netns.js';
import type { PeerProcess } from '../helpers/peer.js';

const REPO = resolve(import.meta.dirname, '../..');
const MAIN = join(REPO, 'dist', 'src', 'cli', 'main.js');
const ID = netnsId();
const CLIENT = `wtc${ID}`;
const ROUTER = `wtr${ID}`;
const SERVER = `wts${ID}`;
const TO_CLIENT = `wra${ID}`;
const CLIENT_DEV = `wca${ID}`;
const TO_SERVER = `wrb${ID}`;
const SERVER_DEV = `wsb${ID}`;
const PROXY_PORT = 15080;

/** Each family's addresses: the client's, the server's (what the client dials), the router's two. */
const FAMILIES = [
  {
    family: 4,
    client: '10.71.0.2',
    server: '10.72.0.2',
    routerToClient: '10.71.0.1',
    routerToServer: '10.72.0.1',
    prefix: 24,
  },
  {
    family: 6,
    client: 'fd71::2',
    server: 'fd72::2',
    routerToClient: 'fd71::1',
    routerToServer: 'fd72::1',
    prefix: 64,
  },
] as const;
const bracket = (host: string): string => (host.includes(':') ? `[${host}]` : host);

const ns = new Namespaces();
const peers: PeerProcess[] = [];
let dir: string;
let proxy: PeerProcess;
const dtlsServers = new Map<number, PeerProcess>();

type Row = Record<string, unknown>;

/** The proxy's JSON records so far. */
const records = (): Row[] =>
  proxy
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Row);

/** Waits until the proxy printed a record matching `match`. */
async function recordWhere(match: (r: Row) => boolean, timeoutMs = 10_000): Promise<Row> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const found = records().find(match);
    if (found) return found;
    if (performance.now() > deadline)
      throw new Error(`no such record from the proxy; it printed:\n${proxy.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs a node script in the client namespace to its end; its JSON lines. Asynchronously: the
 * test's own event loop must go on reading the proxy's output meanwhile (a full pipe stops it).
 */
async function clientScript(name: string, body: string): Promise<Row[]> {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, body);
  const script = ns.spawn(CLIENT, process.execPath, [file]);
  const [code] = (await once(script.child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${name}.mjs exited ${code}: ${script.output()}`);
  return script
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Row);
}

/** An address as the model has it, without the IPv4-mapped prefix a dual-stack socket gives IPv4 peers. */
const plain = (host: string | undefined): string | undefined => host?.replace(/^::ffff:/, '');
const serverAddress = (r: Row): unknown => r.address;
/** A client leg's address pair, unmapped. */
const pair = (a: unknown): unknown => {
  const [host, port] = a as [string, number];
  return [plain(host), port];
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wirelayer-transparent-'));
  ns.add(CLIENT);
  ns.add(ROUTER);
  ns.add(SERVER);
  ns.link(
    { ns: CLIENT, dev: CLIENT_DEV, address: '10.71.0.2/24' },
    { ns: ROUTER, dev: TO_CLIENT, address: '10.71.0.1/24' },
  );
  ns.link(
    { ns: ROUTER, dev: TO_SERVER, address: '10.72.0.1/24' },
    { ns: SERVER, dev: SERVER_DEV, address: '10.72.0.2/24' },
  );
  // IPv6 beside, without duplicate address detection (a tentative address cannot be bound)
  for (const [n, dev, address] of [
    [CLIENT, CLIENT_DEV, 'fd71::2/64'],
    [ROUTER, TO_CLIENT, 'fd71::1/64'],
    [ROUTER, TO_SERVER, 'fd72::1/64'],
    [SERVER, SERVER_DEV, 'fd72::2/64'],
  ] as const)
    ns.exec(n, ['ip', '-6', 'addr', 'add', address, 'dev', dev, 'nodad']);
  for (const f of FAMILIES) {
    const ip = `-${f.family}`;
    ns.exec(CLIENT, ['ip', ip, 'route', 'add', 'default', 'via', f.routerToClient]);
    ns.exec(SERVER, ['ip', ip, 'route', 'add', 'default', 'via', f.routerToServer]);
    // TPROXY's two halves: the rule marks and steers to our socket; marked packets are local (table 100)
    ns.exec(ROUTER, ['ip', ip, 'rule', 'add', 'fwmark', '1', 'lookup', '100']);
    ns.exec(ROUTER, [
      'ip',
      ip,
      'route',
      'add',
      'local',
      f.family === 4 ? '0.0.0.0/0' : '::/0',
      'dev',
      'lo',
      'table',
      '100',
    ]);
  }
  ns.exec(ROUTER, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  ns.exec(
    ROUTER,
    ['nft', '-f', '-'],
    `table inet wirelayer {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    iifname "${TO_CLIENT}" tcp dport { 443, 7000 } meta mark set 1 tproxy to :${PROXY_PORT} accept
    iifname "${TO_CLIENT}" udp dport { 4433, 4444, 5353 } meta mark set 1 tproxy to :${PROXY_PORT} accept
  }
  chain nat {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "${TO_CLIENT}" tcp dport 9000 redirect to :${PROXY_PORT}
  }
}
`,
  );
  const started = (p: PeerProcess): PeerProcess => {
    peers.push(p);
    return p;
  };
  const htdocs = join(dir, 'htdocs');
  mkdirSync(htdocs);
  writeFileSync(join(htdocs, 'file.bin'), randomBytes(100_000));
  const tlsServers: PeerProcess[] = [];
  for (const { family, server } of FAMILIES) {
    const cert = ['-cert', fixturePath('ec-cert.pem'), '-key', fixturePath('ec-key.pem')];
    tlsServers.push(
      started(
        ns.spawn(SERVER, 'openssl', ['s_server', '-accept', `${bracket(server)}:443`, ...cert, '-rev']),
      ),
    );
    const socat = family === 4 ? 'TCP4' : 'TCP6';
    for (const port of [7000, 9000])
      started(
        ns.spawn(SERVER, 'socat', [`${socat}-LISTEN:${port},bind=${bracket(server)},fork,reuseaddr`, 'PIPE']),
      );
    started(
      ns.spawn(SERVER, 'socat', [
        '-T',
        '5',
        `UDP${family}-RECVFROM:5353,bind=${bracket(server)},fork`,
        'PIPE',
      ]),
    );
    dtlsServers.set(
      family,
      started(
        ns.spawn(SERVER, 'openssl', ['s_server', '-dtls1_2', '-accept', `${bracket(server)}:4444`, ...cert]),
      ),
    );
    started(
      ns.spawn(SERVER, 'gtlsserver', [
        '--no-http-dump',
        '--no-quic-dump',
        `--htdocs=${htdocs}`,
        server,
        '4433',
        fixturePath('ec-key.pem'),
        fixturePath('ec-cert.pem'),
      ]),
    );
  }
  proxy = started(
    ns.spawn(ROUTER, process.execPath, [
      MAIN,
      'proxy',
      '--mode',
      // one dual-stack socket per protocol takes both families
      `transparent@[::]:${PROXY_PORT}`,
      '--insecure',
      '--json',
    ]),
  );
  await proxy.waitFor(/listening on transparent:\/\/\S+:15080/, 15_000);
  for (const server of [...tlsServers, ...dtlsServers.values()]) await server.waitFor(/ACCEPT/, 10_000);
}, 60_000);

afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop()));
  ns.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.for(FAMILIES)(
  'wirelayer proxy --mode transparent, IPv$family (TPROXY and REDIRECT, in network namespaces)',
  (f) => {
    /** A record of this family's flows (to this family's server). */
    const ours = (r: Row): boolean => plain((r.address as [string, number] | null)?.[0]) === f.server;

    it('TLS by TPROXY: intercepted, the server leg dialed to the address the client dialed', async () => {
      const [answer] = await clientScript(
        'tls',
        `import { connect } from 'node:tls';
const s = connect({ host: '${f.server}', port: 443, servername: 'upstream.test', rejectUnauthorized: false }, () => {
  s.write('hello\\n');
});
let text = '';
s.on('data', (d) => { text += d; if (text.includes('\\n')) {
  console.log(JSON.stringify({ reply: text.trim(), issuer: s.getPeerCertificate().issuer?.O ?? null, local: s.localAddress }));
  s.destroy();
} });
s.on('error', (e) => console.log(JSON.stringify({ error: e.message })));
setTimeout(() => process.exit(3), 8000).unref();
`,
      );
      // s_server -rev answers each line reversed: the bytes went to the real server and back
      expect(answer).toMatchObject({ reply: 'olleh' });
      expect(String(answer!.issuer)).toMatch(/wirelayer/i);
      const server = await recordWhere(
        (r) => r.role === 'server' && r.event === 'up' && r.driver === 'tls' && ours(r),
      );
      expect(serverAddress(server)).toEqual([f.server, 443]);
      expect(server.tls_version).toMatch(/^TLSv1\.[23]$/);
      const client = await recordWhere(
        (r) => r.role === 'client' && r.event === 'up' && r.flow === server.flow,
      );
      expect(pair(client.peername)).toEqual([f.client, expect.any(Number)]);
      // TPROXY: the accepted socket's own address is the one the client dialed
      expect(pair(client.sockname)).toEqual([f.server, 443]);
      expect(client.proxy_mode).toBe(`transparent@[::]:${PROXY_PORT}`);
    });

    it('plain TCP by REDIRECT (SO_ORIGINAL_DST) and by TPROXY: relayed to the original destination', async () => {
      const answers = await clientScript(
        'tcp',
        `import { connect } from 'node:net';
for (const port of [9000, 7000]) {
  await new Promise((done) => {
    const s = connect({ host: '${f.server}', port }, () => s.write('ping ' + port));
    s.on('data', (d) => { console.log(JSON.stringify({ port, reply: String(d) })); s.destroy(); done(); });
    s.on('error', (e) => { console.log(JSON.stringify({ port, error: e.message })); done(); });
  });
}
`,
      );
      expect(answers).toEqual([
        { port: 9000, reply: 'ping 9000' },
        { port: 7000, reply: 'ping 7000' },
      ]);
      for (const port of [9000, 7000]) {
        const server = await recordWhere(
          (r) => r.role === 'server' && r.driver === 'tcp' && ours(r) && (r.address as unknown[])[1] === port,
        );
        expect(serverAddress(server)).toEqual([f.server, port]);
      }
      // REDIRECT rewrote the destination: the client leg's socket is the proxy's own
      const redirected = await recordWhere(
        (r) =>
          r.role === 'client' &&
          r.driver === 'tcp' &&
          (r.sockname as unknown[])[1] === PROXY_PORT &&
          plain((r.peername as string[])[0]) === f.client,
      );
      expect(pair(redirected.peername)).toEqual([f.client, expect.any(Number)]);
    });

    it('raw UDP by TPROXY: the answer comes from the address the client sent to', async () => {
      const [answer] = await clientScript(
        'udp',
        `import { createSocket } from 'node:dgram';
const s = createSocket('udp${f.family}');
// connected: an answer from any other source is dropped by the kernel
s.connect(5353, '${f.server}', () => { s.send('ping'); setInterval(() => s.send('ping'), 300).unref(); });
s.on('message', (m, r) => { console.log(JSON.stringify({ reply: String(m), from: [r.address, r.port] })); process.exit(0); });
setTimeout(() => process.exit(3), 5000);
`,
      );
      expect(answer).toEqual({ reply: 'ping', from: [f.server, 5353] });
      const server = await recordWhere((r) => r.role === 'server' && r.driver === 'udp' && ours(r));
      const client = await recordWhere(
        (r) => r.role === 'client' && r.driver === 'udp' && r.flow === server.flow,
      );
      expect(pair(client.peername)).toEqual([f.client, expect.any(Number)]);
      expect(pair(client.sockname)).toEqual([f.server, 5353]);
      expect(serverAddress(server)).toEqual([f.server, 5353]);
    });

    it('DTLS by TPROXY: openssl s_client -> proxy (intercepted) -> openssl s_server, records both ways', async () => {
      const client = ns.spawn(CLIENT, 'openssl', [
        's_client',
        '-dtls1_2',
        '-connect',
        `${bracket(f.server)}:4444`,
        '-servername',
        'dtls.test',
      ]);
      peers.push(client);
      await client.waitFor(/Cipher\s*: \S+/);
      // the leaf the client got is the proxy's
      expect(client.output()).toMatch(/issuer=.*wirelayer/i);
      client.child.stdin!.write('to the server\n');
      await dtlsServers.get(f.family)!.waitFor(/to the server/);
      dtlsServers.get(f.family)!.child.stdin!.write('to the client\n');
      await client.waitFor(/to the client/);
      const server = await recordWhere(
        (r) => r.role === 'server' && r.event === 'up' && r.driver === 'dtls' && ours(r),
      );
      expect(serverAddress(server)).toEqual([f.server, 4444]);
      expect(server).toMatchObject({ tls_version: 'DTLSv1.2', sni: 'dtls.test' });
      const leg = await recordWhere((r) => r.role === 'client' && r.event === 'up' && r.flow === server.flow);
      expect(pair(leg.peername)).toEqual([f.client, expect.any(Number)]);
      expect(pair(leg.sockname)).toEqual([f.server, 4444]);
      await client.stop();
    });

    it('QUIC by TPROXY: gtlsclient fetches a file from gtlsserver through the intercepting proxy', async () => {
      const download = join(dir, `download${f.family}`);
      mkdirSync(download, { recursive: true });
      const client = ns.spawn(CLIENT, 'gtlsclient', [
        '--no-http-dump',
        '--no-quic-dump',
        '--timeout=5s',
        `--download=${download}`,
        '--exit-on-all-streams-close',
        f.server,
        '4433',
        `https://${bracket(f.server)}:4433/file.bin`,
      ]);
      peers.push(client);
      await new Promise<void>((done) => client.child.once('exit', () => done()));
      expect(readFileSync(join(download, 'file.bin'))).toEqual(readFileSync(join(dir, 'htdocs', 'file.bin')));
      const server = await recordWhere(
        (r) => r.role === 'server' && r.event === 'up' && r.driver === 'quic' && ours(r),
      );
      expect(serverAddress(server)).toEqual([f.server, 4433]);
      expect(server.tls_version).toBe('QUICv1');
      const leg = await recordWhere((r) => r.role === 'client' && r.event === 'up' && r.flow === server.flow);
      expect(pair(leg.peername)).toEqual([f.client, expect.any(Number)]);
      expect(pair(leg.sockname)).toEqual([f.server, 4433]);
      expect(leg.alpn).toBe('h3');
    });
  },
);
