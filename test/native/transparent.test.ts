/**
 * Transparent UDP on the native datagram socket, in two network namespaces this test makes and
 * removes: a client namespace whose default route is a proxy namespace, where an nftables
 * `tproxy` rule steers datagrams for 10.99.0.5:5353 (an address nobody has) to a socket bound
 * with IP_TRANSPARENT on 0.0.0.0:15353. That socket learns each datagram's original destination
 * (IP_ORIGDSTADDR) and answers from a transparent socket bound to it, so the client, connected
 * to 10.99.0.5:5353, takes the answer as the server's. Every address lives inside the namespaces.
 *
 * Runs as root (ip netns, nft; both provisioned by test/setup/peers.ts); the proxy and the client
 * are child processes started in their namespace with `ip netns exec`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Namespaces, netnsId, sh } from '../helpers/netns.js';

const REPO = resolve(import.meta.dirname, '../..');
const ID = netnsId();
const CLIENT_NS = `wlc${ID}`;
const PROXY_NS = `wlp${ID}`;
const VETH_CLIENT = `wvc${ID}`;
const VETH_PROXY = `wvp${ID}`;
const ORIGINAL = { address: '10.99.0.5', port: 5353 };
const PROXY_PORT = 15353;

let dir: string;
const children: ChildProcess[] = [];

const ns = new Namespaces();

/** JSON lines of a child's stdout, as they come. */
function records(child: ChildProcess): { next(timeoutMs: number): Promise<Record<string, unknown>> } {
  const queue: Record<string, unknown>[] = [];
  let waiting: ((r: Record<string, unknown>) => void) | null = null;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const record = JSON.parse(line) as Record<string, unknown>;
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(record);
    } else queue.push(record);
  });
  return {
    next: (timeoutMs) =>
      queue.length > 0
        ? Promise.resolve(queue.shift()!)
        : new Promise((res, rej) => {
            const timer = setTimeout(() => rej(new Error('no record from the child in time')), timeoutMs);
            waiting = (r) => {
              clearTimeout(timer);
              res(r);
            };
          }),
  };
}

function inNamespace(ns: string, script: string): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wirelayer-tproxy-'));
  ns.add(CLIENT_NS);
  ns.add(PROXY_NS);
  ns.link(
    { ns: CLIENT_NS, dev: VETH_CLIENT, address: '10.77.0.2/24' },
    { ns: PROXY_NS, dev: VETH_PROXY, address: '10.77.0.1/24' },
  );
  sh(['ip', '-n', CLIENT_NS, 'route', 'add', 'default', 'via', '10.77.0.1']);
  // TPROXY's two halves: the rule marks and steers the datagram to our socket, and the marked
  // datagram is routed to this host (any address is local in table 100)
  sh(['ip', '-n', PROXY_NS, 'rule', 'add', 'fwmark', '1', 'lookup', '100']);
  sh(['ip', '-n', PROXY_NS, 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100']);
  sh(
    ['ip', 'netns', 'exec', PROXY_NS, 'nft', '-f', '-'],
    `table ip wirelayer {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    udp dport ${ORIGINAL.port} meta mark set 1 tproxy to :${PROXY_PORT} accept
  }
}
`,
  );
  const datagram = JSON.stringify(join(REPO, 'dist', 'src', 'transport', 'datagram', 'index.js'));
  writeFileSync(
    join(dir, 'proxy.mjs'),
    `const { openDatagramSocket } = await import(${datagram});
const listener = await openDatagramSocket({ family: 4, address: '0.0.0.0', port: ${PROXY_PORT},
  transparent: true, originalDestination: true, packetInfo: true, backend: 'native' });
const upstreams = new Map();
listener.onMessage((d, address, port, info) => {
  const original = [info.originalAddress, info.originalPort];
  console.log(JSON.stringify({ event: 'datagram', from: [address, port], original, local: info.localAddress, text: String(d) }));
  const answer = (s) => s.send(Buffer.from('answer to ' + d), port, address);
  const key = original.join(':');
  const open = upstreams.get(key);
  if (open) return answer(open);
  // the answer comes from the original destination: a transparent socket bound there
  openDatagramSocket({ family: 4, address: original[0], port: original[1], transparent: true,
    reuseAddr: true, backend: 'native' }).then((s) => { upstreams.set(key, s); answer(s); },
    (e) => console.log(JSON.stringify({ event: 'error', message: e.message })));
});
console.log(JSON.stringify({ event: 'listening', port: listener.address().port }));
`,
  );
  writeFileSync(
    join(dir, 'client.mjs'),
    `import { createSocket } from 'node:dgram';
const s = createSocket('udp4');
s.on('message', (m, r) => {
  console.log(JSON.stringify({ event: 'answer', text: String(m), from: [r.address, r.port], local: s.address() }));
  process.exit(0);
});
s.on('error', (e) => console.log(JSON.stringify({ event: 'error', message: e.message })));
// connected to the original destination: an answer from any other address is dropped
s.connect(${ORIGINAL.port}, '${ORIGINAL.address}', () => {
  s.send('hello');
  setInterval(() => s.send('hello'), 250);
});
setTimeout(() => process.exit(3), 5000);
`,
  );
});

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  ns.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('transparent UDP (TPROXY) on the native socket, in network namespaces', () => {
  it('the proxy gets each datagram with its original destination, and answers from it', async () => {
    const proxy = inNamespace(PROXY_NS, join(dir, 'proxy.mjs'));
    const fromProxy = records(proxy);
    expect(await fromProxy.next(10_000)).toEqual({ event: 'listening', port: PROXY_PORT });
    const client = inNamespace(CLIENT_NS, join(dir, 'client.mjs'));
    const fromClient = records(client);
    const seen = await fromProxy.next(5000);
    expect(seen).toMatchObject({
      event: 'datagram',
      original: [ORIGINAL.address, ORIGINAL.port],
      local: ORIGINAL.address,
      text: 'hello',
    });
    expect((seen.from as [string, number])[0]).toBe('10.77.0.2');
    const answer = await fromClient.next(5000);
    expect(answer).toMatchObject({
      event: 'answer',
      text: 'answer to hello',
      from: [ORIGINAL.address, ORIGINAL.port],
    });
    // the client saw the server it addressed; the proxy saw the client as it is
    expect((answer.local as { port: number }).port).toBe((seen.from as [string, number])[1]);
  });

  it('the namespaces, their veth pair and rules exist only inside this test', () => {
    const namespaces = sh(['ip', 'netns', 'list']);
    expect(namespaces).toContain(CLIENT_NS);
    expect(namespaces).toContain(PROXY_NS);
    // nothing of ours in the host's own namespace
    expect(sh(['ip', 'link', 'show'])).not.toContain(VETH_CLIENT);
    expect(sh(['ip', 'route', 'show', 'table', 'all'])).not.toContain(ORIGINAL.address);
  });
});
