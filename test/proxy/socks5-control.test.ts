/**
 * socks5 mode's control connections and associations under bad or hostile input: every case
 * answers with the RFC's reply code or a counted drop, state stays bounded, nothing crashes.
 * Also the methods: no authentication, RFC 1929 credentials (`proxyAuth`, `socks5Auth`).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { Server } from '../../src/connection/index.js';
import type { ServerConnectionHookData, Socks5AuthData } from '../../src/proxy/hooks.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { freeTcpPort } from '../helpers/ports.js';
import { encodeSocksAddress, Socks5Association, socks5Handshake } from '../helpers/socks5-udp.js';
import { waitUntil } from '../helpers/wait.js';
import { tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();
afterAll(() => conf.remove());

function startProxy(options: Partial<ProxyOptions> = {}): Promise<WirelayerProxy> {
  return WirelayerProxy.start({ modes: ['socks5'], listenPort: 0, confdir: conf.dir, ...options });
}

const portOf = (proxy: WirelayerProxy): number => proxy.listening[0]!.address[1];

/**
 * Sends `chunks` on a new control connection (then FIN with `end`), and collects what comes
 * back until the proxy closes the connection (bounded).
 */
async function exchange(port: number, chunks: Buffer[], end = false): Promise<Buffer> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const got: Buffer[] = [];
  socket.on('data', (d: Buffer) => got.push(d));
  for (const c of chunks) socket.write(c);
  if (end) socket.end();
  await Promise.race([
    once(socket, 'close'),
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error('the proxy did not close the connection')), 5000),
    ),
  ]);
  return Buffer.concat(got);
}

const NO_AUTH = Buffer.from([5, 1, 0]);
const request = (command: number, host: string, port: number): Buffer =>
  Buffer.concat([Buffer.from([5, command, 0]), encodeSocksAddress(host, port)]);

describe('socks5 handshake: bad input gets a reply code or is dropped, counted', () => {
  it('a bad version, no methods, a truncated greeting, silence: closed without a reply, each counted by cause', async () => {
    await using proxy = await startProxy({ handshakeTimeout: 300 });
    const port = portOf(proxy);
    expect(await exchange(port, [Buffer.from([4, 1, 0])])).toHaveLength(0);
    expect(await exchange(port, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')])).toHaveLength(0);
    expect(await exchange(port, [Buffer.from([5, 0])])).toHaveLength(0);
    expect(await exchange(port, [Buffer.from([5])], true)).toHaveLength(0);
    // says three methods, sends one, then nothing: the handshake timeout
    expect(await exchange(port, [Buffer.from([5, 3, 0])])).toHaveLength(0);
    await waitUntil(() => proxy.stats.liveFlows === 0, 'every connection to end');
    expect(proxy.stats.socks5.handshakeFailures).toEqual({
      ERR_SOCKS5_VERSION: 2,
      ERR_SOCKS5_METHODS: 1,
      CLOSED: 1,
      ETIMEDOUT: 1,
    });
    expect(proxy.stats.flowErrors).toMatchObject({ ERR_SOCKS5_VERSION: 2, ETIMEDOUT: 1 });
  });

  it('request errors: ATYP outside 1/3/4 (8), a name that is no host name (4), BIND and unknown commands (7)', async () => {
    await using proxy = await startProxy();
    const port = portOf(proxy);
    const answer = async (req: Buffer): Promise<number[]> => [...(await exchange(port, [NO_AUTH, req]))];
    const refused = (code: number): number[] => [5, 0, 5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    expect(await answer(Buffer.from([5, 1, 0, 2, 1, 2, 3, 4, 0, 80]))).toEqual(refused(8));
    expect(await answer(Buffer.from([5, 3, 0, 0xff, 1, 2, 3, 4, 0, 80]))).toEqual(refused(8));
    const long = Buffer.from('a'.repeat(255));
    expect(await answer(Buffer.concat([Buffer.from([5, 1, 0, 3, 255]), long, Buffer.from([0, 80])]))).toEqual(
      refused(4),
    );
    expect(await answer(Buffer.concat([Buffer.from([5, 1, 0, 3, 0]), Buffer.from([0, 80])]))).toEqual(
      refused(4),
    );
    expect(await answer(request(2, '127.0.0.1', 80))).toEqual(refused(7));
    expect(await answer(request(9, '127.0.0.1', 80))).toEqual(refused(7));
    expect(proxy.stats.socks5.refusals).toEqual({
      ADDRESS_TYPE_NOT_SUPPORTED: 2,
      HOST_UNREACHABLE: 2,
      COMMAND_NOT_SUPPORTED: 2,
    });
    expect(proxy.stats.socks5.connects).toBe(0);
  });

  it('CONNECT failures: a refused port (5), a serverConnect veto (2); the flow hooks as reverse:tcp', async () => {
    const closedPort = await freeTcpPort('127.0.0.1');
    const log: string[] = [];
    await using proxy = await startProxy({
      addons: [
        {
          clientConnected: () => void log.push('clientConnected'),
          serverConnect: (d: ServerConnectionHookData) => {
            log.push('serverConnect');
            if (d.server.address?.[1] === 9) d.server.error = 'port 9 is not for you';
          },
          serverConnectError: () => void log.push('serverConnectError'),
          clientDisconnected: () => void log.push('clientDisconnected'),
        },
      ],
    });
    const port = portOf(proxy);
    expect([...(await exchange(port, [NO_AUTH, request(1, '127.0.0.1', closedPort)]))]).toEqual([
      5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0,
    ]);
    expect([...(await exchange(port, [NO_AUTH, request(1, '127.0.0.1', 9)]))]).toEqual([
      5, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0,
    ]);
    await waitUntil(() => log.filter((h) => h === 'clientDisconnected').length === 2, 'both to end');
    expect(log).toEqual([
      'clientConnected',
      'serverConnect',
      'serverConnectError',
      'clientDisconnected',
      'clientConnected',
      'serverConnect',
      'serverConnectError',
      'clientDisconnected',
    ]);
    expect(proxy.stats.socks5.refusals).toEqual({ CONNECTION_REFUSED: 1, NOT_ALLOWED: 1 });
  });

  it('connectionStrategy lazy: success is replied at once (BND 0.0.0.0:0), the server is dialed after the first bytes', async () => {
    const closedPort = await freeTcpPort('127.0.0.1');
    const log: string[] = [];
    await using proxy = await startProxy({
      connectionStrategy: 'lazy',
      addons: [
        {
          serverConnect: () => void log.push('serverConnect'),
          serverConnectError: () => void log.push('serverConnectError'),
        },
      ],
    });
    const got = await exchange(portOf(proxy), [
      NO_AUTH,
      request(1, '127.0.0.1', closedPort),
      Buffer.from('hello?'),
    ]);
    expect([...got]).toEqual([5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(log).toEqual(['serverConnect', 'serverConnectError']);
    expect(proxy.stats.socks5.connects).toBe(1);
  });

  it('a CONNECT that succeeds replies with where the server leg connects from; bytes the client pipelined go on', async () => {
    const echo = createServer((s) => s.on('data', (d) => s.write(d)));
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    await using proxy = await startProxy();
    try {
      const socket = connect(portOf(proxy), '127.0.0.1');
      await once(socket, 'connect');
      const got: Buffer[] = [];
      socket.on('data', (d: Buffer) => got.push(d));
      // greeting, request and data in one write, before any reply (optimistic clients do this)
      socket.write(
        Buffer.concat([
          NO_AUTH,
          request(1, '127.0.0.1', (echo.address() as { port: number }).port),
          Buffer.from('early bytes'),
        ]),
      );
      await waitUntil(() => Buffer.concat(got).length >= 2 + 10 + 11, 'the reply and the echo');
      const all = Buffer.concat(got);
      // method selection, then the reply: success, BND.ADDR 127.0.0.1 and a port
      expect([...all.subarray(0, 10)]).toEqual([5, 0, 5, 0, 0, 1, 127, 0, 0, 1]);
      expect(all.readUInt16BE(10)).toBeGreaterThan(0);
      expect(all.subarray(12).toString()).toBe('early bytes');
      socket.destroy();
    } finally {
      echo.close();
    }
  });
});

describe('socks5 methods', () => {
  it('no authentication by default: a client offering only username/password gets 0xFF', async () => {
    await using proxy = await startProxy();
    expect([...(await exchange(portOf(proxy), [Buffer.from([5, 1, 2])]))]).toEqual([5, 0xff]);
    expect(proxy.stats.socks5.handshakeFailures).toEqual({ NO_ACCEPTABLE_METHODS: 1 });
  });

  it('proxyAuth USER:PASS: required (0xFF without it), a wrong password refused, the right one served', async () => {
    const seen: Socks5AuthData[] = [];
    await using proxy = await startProxy({
      proxyAuth: 'alice:s3cret:with:colons',
      addons: [{ socks5Auth: (d: Socks5AuthData) => void seen.push({ ...d }) }],
    });
    const port = portOf(proxy);
    expect([...(await exchange(port, [NO_AUTH]))]).toEqual([5, 0xff]);
    await expect(
      Socks5Association.open('127.0.0.1', port, { auth: { username: 'alice', password: 'wrong' } }),
    ).rejects.toMatchObject({
      status: 1,
    });
    const assoc = await Socks5Association.open('127.0.0.1', port, {
      auth: { username: 'alice', password: 's3cret:with:colons' },
    });
    await assoc.close();
    expect(seen.map((d) => [d.username, d.password, d.valid])).toEqual([
      ['alice', 'wrong', false],
      ['alice', 's3cret:with:colons', true],
    ]);
    await waitUntil(() => proxy.stats.liveFlows === 0, 'the connections to end');
    expect(proxy.stats.socks5.handshakeFailures).toEqual({ NO_ACCEPTABLE_METHODS: 1, AUTH_FAILED: 1 });
    expect(proxy.stats.socks5.associations).toBe(1);
  });

  it("proxyAuth any: a socks5Auth hook decides, after clientConnected, before the request's hooks", async () => {
    const log: string[] = [];
    await using proxy = await startProxy({
      proxyAuth: 'any',
      addons: [
        {
          clientConnected: () => void log.push('clientConnected'),
          socks5Auth: (d: Socks5AuthData) => {
            log.push(`socks5Auth ${d.username} ${d.client.peername[0]}`);
            d.valid = d.username === 'bob';
          },
        },
      ],
    });
    const port = portOf(proxy);
    await expect(
      socks5Handshake('127.0.0.1', port, { username: 'eve', password: 'x' }),
    ).rejects.toMatchObject({
      status: 1,
    });
    const { control } = await socks5Handshake('127.0.0.1', port, { username: 'bob', password: 'anything' });
    control.destroy();
    expect(log).toEqual([
      'clientConnected',
      'socks5Auth eve 127.0.0.1',
      'clientConnected',
      'socks5Auth bob 127.0.0.1',
    ]);
  });
});

describe('socks5 associations: bounded state, bad datagrams dropped', () => {
  it('caps: associations per client and in total are refused past their limits (reply 1), and free again once closed', async () => {
    await using proxy = await startProxy({ socks5: { maxAssociationsPerClient: 2, maxAssociations: 3 } });
    const port = portOf(proxy);
    const a = await Socks5Association.open('127.0.0.1', port);
    const b = await Socks5Association.open('127.0.0.1', port);
    await expect(Socks5Association.open('127.0.0.1', port)).rejects.toMatchObject({ reply: 1 });
    // another client address: the per-client cap is its own, the total one is shared
    const fromOther = await openFrom('127.0.0.2', port);
    expect(fromOther.reply).toBe(0);
    expect(proxy.stats.socks5.liveAssociations).toBe(3);
    const d = await openFrom('127.0.0.3', port);
    expect(d.reply).toBe(1);
    await a.close();
    await waitUntil(() => proxy.stats.socks5.liveAssociations === 2, 'a freed slot');
    const e = await Socks5Association.open('127.0.0.1', port);
    await Promise.all([b.close(), e.close(), fromOther.close(), d.close()]);
    expect(proxy.stats.socks5.refusals).toEqual({ GENERAL_FAILURE: 2 });
  });

  it('a client opening associations in a loop: bounded by the per-client cap, nothing left behind', async () => {
    await using proxy = await startProxy({ socks5: { maxAssociationsPerClient: 4 } });
    const port = portOf(proxy);
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, () => Socks5Association.open('127.0.0.1', port)),
    );
    const opened = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(opened).toHaveLength(4);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(36);
    await Promise.all(opened.map((a) => a.close()));
    await waitUntil(() => proxy.stats.liveFlows === 0, 'every connection to end');
    expect(proxy.stats.socks5.liveAssociations).toBe(0);
  });

  it('short and malformed datagrams, and datagrams addressed to our own sockets, are dropped and counted', async () => {
    const echo = await import('node:dgram').then((dgram) => dgram.createSocket('udp4'));
    echo.bind(0, '127.0.0.1');
    await once(echo, 'listening');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    await using proxy = await startProxy();
    const port = portOf(proxy);
    const assoc = await Socks5Association.open('127.0.0.1', port);
    try {
      for (const bad of [
        Buffer.from([0, 0]),
        Buffer.from([0, 0, 0]),
        Buffer.from([0, 0, 0, 1, 127, 0]),
        Buffer.from([0, 0, 0, 9, 127, 0, 0, 1, 0, 80, 0x78]),
        Buffer.concat([Buffer.from([0, 0, 0, 3, 5]), Buffer.from('a b c'), Buffer.from([0, 80, 0x78])]),
        Buffer.from([0, 0, 0, 3, 200, 0x61]),
      ])
        assoc.sendRaw(bad);
      // loops: the relay socket itself, and the SOCKS port
      assoc.send('127.0.0.1', assoc.relay.port, Buffer.from('to myself'));
      assoc.send('localhost', port, Buffer.from('to the listener'));
      await waitUntil(
        () => proxy.stats.socks5.malformedDrops === 6 && proxy.stats.socks5.loopDrops === 2,
        'every drop counted',
      );
      assoc.send('127.0.0.1', echo.address().port, Buffer.from('fine'));
      expect((await assoc.next()).data.toString()).toBe('fine');
      expect(proxy.stats.flows).toBe(2);
    } finally {
      await assoc.close();
      echo.close();
    }
  });

  it('maxDestinations: at the cap the least recently active destination is closed', async () => {
    const dgram = await import('node:dgram');
    const echoes = await Promise.all(
      [0, 1, 2].map(async () => {
        const s = dgram.createSocket('udp4');
        s.bind(0, '127.0.0.1');
        await once(s, 'listening');
        s.on('message', (m, r) => s.send(m, r.port, r.address));
        return s;
      }),
    );
    const servers: Server[] = [];
    await using proxy = await startProxy({ socks5: { maxDestinations: 2 } });
    proxy.on('model', (e: string, conn: Server) => {
      if (e === 'closed' && conn.constructor.name === 'Server') servers.push(conn);
    });
    const assoc = await Socks5Association.open('127.0.0.1', portOf(proxy));
    try {
      for (const e of echoes) {
        assoc.send('127.0.0.1', e.address().port, Buffer.from('hi'));
        expect((await assoc.next()).port).toBe(e.address().port);
      }
      await waitUntil(() => servers.length === 1, 'the first destination closed');
      expect(servers[0]!.address).toEqual(['127.0.0.1', echoes[0]!.address().port]);
      expect(proxy.stats.socks5.destinationEvictions).toBe(1);
    } finally {
      await assoc.close();
      for (const e of echoes) e.close();
    }
  });

  it('random bytes on 200 control connections and at a relay: no crash, the proxy serves the next client', async () => {
    await using proxy = await startProxy({ handshakeTimeout: 500 });
    const port = portOf(proxy);
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const bytes = randomBytes(1 + (i % 64));
        if (i % 2 === 0) bytes[0] = 5;
        await exchange(port, [bytes], i % 3 === 0).catch(() => undefined);
      }),
    );
    const assoc = await Socks5Association.open('127.0.0.1', port);
    for (let i = 0; i < 500; i++) assoc.sendRaw(randomBytes(i % 80));
    const dgram = await import('node:dgram');
    const echo = dgram.createSocket('udp4');
    echo.bind(0, '127.0.0.1');
    await once(echo, 'listening');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    try {
      assoc.send('127.0.0.1', echo.address().port, Buffer.from('still here'));
      const reply = await waitForData(assoc, 'still here');
      expect(reply).toBe(true);
    } finally {
      await assoc.close();
      echo.close();
    }
    await waitUntil(
      () => proxy.stats.liveFlows === 0 && proxy.stats.socks5.liveAssociations === 0,
      'everything to end',
      {
        timeoutMs: 10_000,
      },
    );
  });
});

/** UDP ASSOCIATE from a client bound to `host` (127.0.0.2 and .3 are loopback too: other client addresses). */
async function openFrom(host: string, port: number): Promise<{ reply: number; close(): Promise<void> }> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: host });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(Buffer.concat([NO_AUTH, request(3, '0.0.0.0', 0)]));
  const got: Buffer[] = [];
  socket.on('data', (d: Buffer) => got.push(d));
  await waitUntil(() => Buffer.concat(got).length >= 12, 'the reply');
  return {
    reply: Buffer.concat(got)[3]!,
    close: async () => {
      if (socket.closed) return;
      const closed = once(socket, 'close');
      socket.destroy();
      await closed;
    },
  };
}

/** Whether a datagram with `text` comes back within 5 s (random datagrams may be in flight first). */
async function waitForData(assoc: Socks5Association, text: string): Promise<boolean> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (assoc.received.some((d) => d.data.toString() === text)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
