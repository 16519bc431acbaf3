/**
 * The two paths `bench/socks5.ts` compares, each a `Proxy` in its own process (forked by it),
 * with the same options and no addons (the hot path):
 *
 *   node socks5-relays.js reverse ECHO_PORT   mode reverse:udp://127.0.0.1:ECHO_PORT
 *   node socks5-relays.js socks5 ECHO_PORT    mode socks5 (clients associate, then address the echo)
 *
 * Both relay through the same UDP layer (`UdpRelay` over a `UdpListener`), their sockets made
 * alike (`createUdpSocket`, the listener's 2 MiB receive buffer); the SOCKS5 path adds what the
 * protocol costs: the header's check per datagram, and its prepend per reply. Each sends {port}
 * once listening, answers {cmd: 'stats'} with {stats}, and exits on disconnect.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Proxy as WirelayerProxy } from '../src/proxy/proxy.js';

async function main(kind: string, echoPort: number): Promise<void> {
  const mode =
    kind === 'socks5' ? 'socks5' : kind === 'reverse' ? `reverse:udp://127.0.0.1:${echoPort}` : null;
  if (mode === null) throw new Error(`unknown relay ${kind}`);
  const proxy = await WirelayerProxy.start({
    modes: [mode],
    listenPort: 0,
    // a CA of its own: the SOCKS5 mode opens one (its flows may be TLS)
    confdir: mkdtempSync(join(tmpdir(), 'wirelayer-bench-socks5-')),
    udpTimeout: 300_000,
    maxFlows: 100_000,
    socks5: { maxAssociations: 100_000, maxAssociationsPerClient: 100_000 },
  });
  process.on('disconnect', () => void proxy.close().then(() => process.exit(0)));
  process.on('message', (message: { cmd?: string }) => {
    if (message.cmd === 'stats') process.send?.({ stats: proxy.stats });
  });
  process.send?.({ port: proxy.listening[0]!.address[1] });
}

if (process.argv[2] !== undefined) {
  main(process.argv[2], Number(process.argv[3])).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
