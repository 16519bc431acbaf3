/**
 * socks5 mode, UDP ASSOCIATE: datagrams through an association to a socat UDP echo, each
 * destination a flow with the reverse:udp hooks; RFC 1928 section 7's rules (FRAG, foreign
 * sources, teardown with the control connection, the advertised BND.ADDR).
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection, Server } from '../../src/connection/index.js';
import type { HookName } from '../../src/proxy/hooks.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { type PeerProcess, spawnPeer } from '../helpers/peer.js';
import { freeUdpPort } from '../helpers/ports.js';
import { Socks5Association, udpHeader } from '../helpers/socks5-udp.js';
import { waitUntil } from '../helpers/wait.js';
import { tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();
let socat: PeerProcess;
let echoPort: number;

beforeAll(async () => {
  echoPort = await freeUdpPort('127.0.0.1');
  socat = spawnPeer('socat', [
    '-d',
    '-d',
    '-T',
    '60',
    `UDP4-LISTEN:${echoPort},bind=127.0.0.1,reuseaddr,fork`,
    'PIPE',
  ]);
  await socat.waitFor(/listening on/);
});
afterAll(async () => {
  await socat.stop();
  conf.remove();
});

function startProxy(options: Partial<ProxyOptions> = {}): Promise<WirelayerProxy> {
  return WirelayerProxy.start({ modes: ['socks5'], listenPort: 0, confdir: conf.dir, ...options });
}

const proxyPort = (proxy: WirelayerProxy): number => proxy.listening[0]!.address[1];

/** Hooks in order, each with the transport of the Client it is about (`tcp`: the control connection). */
function hookLog(): { addon: Record<string, (arg: unknown) => void>; log: string[] } {
  const log: string[] = [];
  const names: HookName[] = [
    'clientConnected',
    'clientDisconnected',
    'serverConnect',
    'serverConnected',
    'serverDisconnected',
    'udpStart',
    'udpMessage',
    'udpEnd',
    'udpError',
  ];
  const addon: Record<string, (arg: unknown) => void> = {};
  for (const name of names) {
    addon[name] = (arg) => {
      const client = (arg as { client?: Client }).client ?? (arg as Client);
      log.push(`${name}:${client.transportProtocol}`);
    };
  }
  return { addon, log };
}

/** A bound UDP socket on `host` (127.0.0.2 is loopback too: another source address). */
async function udpSocket(host = '127.0.0.1'): Promise<Socket> {
  const s = createSocket('udp4');
  s.on('error', () => undefined);
  s.bind(0, host);
  await once(s, 'listening');
  return s;
}

describe('socks5 UDP ASSOCIATE', () => {
  it('echo through the association to socat: the reply wrapped with its source, a flow with the reverse:udp hooks', async () => {
    const hooks = hookLog();
    await using proxy = await startProxy({ addons: [hooks.addon] });
    const clients: Client[] = [];
    const servers: Server[] = [];
    proxy.on('model', (_e: string, conn: Connection) => {
      if (conn.constructor.name === 'Client')
        !clients.includes(conn as Client) && clients.push(conn as Client);
      else !servers.includes(conn as Server) && servers.push(conn as Server);
    });
    const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy));
    try {
      // the relay is where the client reached the proxy, not a wildcard
      expect(assoc.bound.host).toBe('127.0.0.1');
      expect(assoc.bound.port).not.toBe(proxyPort(proxy));
      assoc.send('127.0.0.1', echoPort, Buffer.from('hello socat'));
      const reply = await assoc.next();
      expect(reply).toEqual({ host: '127.0.0.1', port: echoPort, data: Buffer.from('hello socat') });
      assoc.send('127.0.0.1', echoPort, Buffer.from('again'));
      expect((await assoc.next()).data.toString()).toBe('again');
      const udpClient = clients.find((c) => c.transportProtocol === 'udp')!;
      expect(udpClient.proxyMode).toBe('socks5');
      expect(udpClient.peername).toEqual(['127.0.0.1', assoc.local.port]);
      expect(udpClient.sockname).toEqual(['127.0.0.1', assoc.bound.port]);
      const server = servers.at(-1)!;
      expect(server.address).toEqual(['127.0.0.1', echoPort]);
      expect(server.peername).toEqual(['127.0.0.1', echoPort]);
      expect(proxy.stats.socks5).toMatchObject({
        associations: 1,
        liveAssociations: 1,
        datagramsFromClient: 2,
        datagramsToClient: 2,
      });
    } finally {
      await assoc.close();
    }
    // the association ends with its control connection: the UDP flow's closing hooks, then the control's
    await waitUntil(() => hooks.log.at(-1) === 'clientDisconnected:tcp', 'the control connection to end');
    expect(hooks.log.filter((h) => h !== 'udpMessage:udp')).toEqual([
      'clientConnected:tcp',
      'clientConnected:udp',
      'udpStart:udp',
      'serverConnect:udp',
      'serverConnected:udp',
      'udpEnd:udp',
      'serverDisconnected:udp',
      'clientDisconnected:udp',
      'clientDisconnected:tcp',
    ]);
    expect(hooks.log.filter((h) => h === 'udpMessage:udp')).toHaveLength(4);
    expect(proxy.stats.socks5.liveAssociations).toBe(0);
  });

  it('a domain name destination: resolved by us, kept as the server address host and in the reply header', async () => {
    await using proxy = await startProxy();
    const servers: Server[] = [];
    proxy.on('model', (_e: string, conn: Connection) => {
      if (conn.constructor.name === 'Server' && !servers.includes(conn as Server))
        servers.push(conn as Server);
    });
    const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy));
    try {
      // socat listens on 127.0.0.1 only: 'localhost' must resolve to it (or the flow is refused)
      assoc.send('localhost', echoPort, Buffer.from('by name'));
      const reply = await assoc.next();
      expect(reply.host).toBe('localhost');
      expect(reply.data.toString()).toBe('by name');
      expect(servers[0]!.address).toEqual(['localhost', echoPort]);
      expect(servers[0]!.peername).toEqual(['127.0.0.1', echoPort]);
    } finally {
      await assoc.close();
    }
  });

  it('two destinations in one association: two flows, each reply from its own source', async () => {
    const second = await udpSocket();
    second.on('message', (m, r) => second.send(Buffer.concat([Buffer.from('2:'), m]), r.port, r.address));
    await using proxy = await startProxy();
    const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy));
    try {
      assoc.send('127.0.0.1', echoPort, Buffer.from('one'));
      expect((await assoc.next()).port).toBe(echoPort);
      assoc.send('127.0.0.1', second.address().port, Buffer.from('two'));
      const r = await assoc.next();
      expect(r).toMatchObject({ port: second.address().port, data: Buffer.from('2:two') });
      // back and forth: each datagram finds its destination again (not only the last one)
      for (let i = 0; i < 3; i++) {
        assoc.send('127.0.0.1', echoPort, Buffer.from(`one ${i}`));
        expect(await assoc.next()).toMatchObject({ port: echoPort, data: Buffer.from(`one ${i}`) });
        assoc.send('127.0.0.1', second.address().port, Buffer.from(`two ${i}`));
        expect(await assoc.next()).toMatchObject({
          port: second.address().port,
          data: Buffer.from(`2:two ${i}`),
        });
      }
      expect(proxy.stats.flows).toBe(3);
    } finally {
      await assoc.close();
      second.close();
    }
  });

  it('RFC 1928 section 7: FRAG != 0 dropped and counted, the association goes on', async () => {
    await using proxy = await startProxy();
    const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy));
    try {
      assoc.sendRaw(Buffer.concat([udpHeader('127.0.0.1', echoPort, 1), Buffer.from('fragment 1')]));
      assoc.sendRaw(Buffer.concat([udpHeader('127.0.0.1', echoPort, 0x81), Buffer.from('last fragment')]));
      await waitUntil(() => proxy.stats.socks5.fragDrops === 2, 'both fragments counted');
      assoc.send('127.0.0.1', echoPort, Buffer.from('whole'));
      expect((await assoc.next()).data.toString()).toBe('whole');
      expect(assoc.received).toHaveLength(1);
      expect(proxy.stats.socks5.datagramsFromClient).toBe(1);
    } finally {
      await assoc.close();
    }
  });

  it("RFC 1928 section 7: datagrams from any other address than the client's are dropped and counted", async () => {
    await using proxy = await startProxy();
    const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy));
    const otherIp = await udpSocket('127.0.0.2');
    const otherPort = await udpSocket('127.0.0.1');
    const stray: Buffer[] = [];
    otherIp.on('message', (m) => stray.push(m));
    otherPort.on('message', (m) => stray.push(m));
    try {
      const datagram = Buffer.concat([udpHeader('127.0.0.1', echoPort), Buffer.from('not yours')]);
      // before the client's first datagram: another IP is foreign at once
      otherIp.send(datagram, assoc.relay.port, assoc.relay.host);
      await waitUntil(() => proxy.stats.socks5.foreignDrops === 1, 'the foreign IP counted');
      assoc.send('127.0.0.1', echoPort, Buffer.from('mine'));
      expect((await assoc.next()).data.toString()).toBe('mine');
      // once the client has sent, its address is fixed: another port of the same host is foreign too
      otherPort.send(datagram, assoc.relay.port, assoc.relay.host);
      otherIp.send(datagram, assoc.relay.port, assoc.relay.host);
      await waitUntil(() => proxy.stats.socks5.foreignDrops === 3, 'both strangers counted');
      assoc.send('127.0.0.1', echoPort, Buffer.from('still mine'));
      expect((await assoc.next()).data.toString()).toBe('still mine');
      expect(stray).toEqual([]);
      expect(proxy.stats.socks5.datagramsFromClient).toBe(2);
    } finally {
      await assoc.close();
      otherIp.close();
      otherPort.close();
    }
  });

  it('the common quirk: a target address instead of 0.0.0.0:0 in the request is accepted', async () => {
    await using proxy = await startProxy();
    const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy), {
      request: { host: '127.0.0.1', port: echoPort },
    });
    try {
      assoc.send('127.0.0.1', echoPort, Buffer.from('quirk'));
      // the request named the echo's port, not ours: we send from our own port and are served
      expect((await assoc.next()).data.toString()).toBe('quirk');
    } finally {
      await assoc.close();
    }
  });

  it('teardown: closing the control connection closes the relay socket and every flow', async () => {
    const hooks = hookLog();
    await using proxy = await startProxy({ addons: [hooks.addon] });
    const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy));
    assoc.send('127.0.0.1', echoPort, Buffer.from('before'));
    await assoc.next();
    assoc.control.destroy();
    await waitUntil(() => proxy.stats.socks5.liveAssociations === 0, 'the association to end');
    expect(hooks.log).toContain('udpEnd:udp');
    expect(hooks.log.at(-1)).toBe('clientDisconnected:tcp');
    expect(proxy.stats.liveFlows).toBe(0);
    // the relay socket is gone: nothing answers there any more
    const probe = await udpSocket();
    const errors: string[] = [];
    probe.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? ''));
    probe.connect(assoc.relay.port, '127.0.0.1');
    await once(probe, 'connect');
    probe.send(Buffer.concat([udpHeader('127.0.0.1', echoPort), Buffer.from('after')]));
    await waitUntil(() => errors.includes('ECONNREFUSED'), 'port unreachable from the closed relay socket');
    probe.close();
    await assoc.close();
  });

  it('an idle association ends after the UDP timeout, its control connection closed by us', async () => {
    await using proxy = await startProxy({ udpTimeout: 200 });
    const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy));
    assoc.send('127.0.0.1', echoPort, Buffer.from('once'));
    await assoc.next();
    await Promise.race([
      once(assoc.control, 'close'),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the control connection stayed open')), 5000),
      ),
    ]);
    await waitUntil(() => proxy.stats.socks5.liveAssociations === 0, 'the association to end');
    await assoc.close();
  });

  it('a wildcard listener (0.0.0.0, and dual-stack ::): BND.ADDR is the address the client reached, never the wildcard', async () => {
    for (const listenHost of ['0.0.0.0', '::']) {
      await using proxy = await startProxy({ listenHost });
      const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy));
      try {
        expect(assoc.bound.host, listenHost).toBe('127.0.0.1');
        assoc.send('127.0.0.1', echoPort, Buffer.from(`via ${listenHost}`));
        expect((await assoc.next()).data.toString()).toBe(`via ${listenHost}`);
      } finally {
        await assoc.close();
      }
    }
  });

  it('IPv6: the control connection, the relay and the destination on ::1', async () => {
    const echo6 = createSocket('udp6');
    echo6.bind(0, '::1');
    await once(echo6, 'listening');
    echo6.on('message', (m, r) => echo6.send(m, r.port, r.address));
    await using proxy = await startProxy({ listenHost: '::1' });
    const servers: Server[] = [];
    proxy.on('model', (_e: string, conn: Connection) => {
      if (conn.constructor.name === 'Server' && !servers.includes(conn as Server))
        servers.push(conn as Server);
    });
    const assoc = await Socks5Association.open('::1', proxyPort(proxy), { udpHost: '::1' });
    try {
      expect(assoc.bound.host).toBe('0:0:0:0:0:0:0:1');
      assoc.send('::1', echo6.address().port, Buffer.from('over v6'));
      const reply = await assoc.next();
      expect(reply).toEqual({
        host: '0:0:0:0:0:0:0:1',
        port: echo6.address().port,
        data: Buffer.from('over v6'),
      });
      expect(servers[0]!.address).toEqual(['::1', echo6.address().port]);
    } finally {
      await assoc.close();
      echo6.close();
    }
  });

  it('socks5.advertise: BND.ADDR of the reply is the advertised address, with the relay port', async () => {
    await using proxy = await startProxy({ socks5: { advertise: '192.0.2.7' } });
    const assoc = await Socks5Association.open('127.0.0.1', proxyPort(proxy));
    try {
      expect(assoc.bound.host).toBe('192.0.2.7');
      // the port is the real relay's: sent to on 127.0.0.1, it relays
      assoc.udp.send(
        Buffer.concat([udpHeader('127.0.0.1', echoPort), Buffer.from('advertised')]),
        assoc.bound.port,
        '127.0.0.1',
      );
      await waitUntil(() => proxy.stats.socks5.datagramsFromClient === 1, 'the relay on the advertised port');
    } finally {
      await assoc.close();
    }
  });
});
