/**
 * `--quic-lb` and `--quic-secrets` on `wirelayer listen quic://` and `wirelayer proxy` (the
 * built CLI in a child process): a real client (gtlsclient) is given IDs that decode to the
 * configured server ID, with reset tokens from the file's key; bad specs and files exit 2.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { quic } from '../../src/transport/quic/index.js';
import { QuicLbDecoder } from '../../src/transport/quic/lb/index.js';
import { EC_CERT_PEM, EC_KEY_PEM, fixturePath } from '../helpers/certs.js';
import { waitUntil } from '../helpers/wait.js';
import { tempConfdir } from '../proxy/proxy-peers.js';
import { gtlsclientDumping, ngtcp2ServerIds } from '../transport/quic-peers.js';
import { CLI, runCli } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'wirelayer-quic-scale-'));
const conf = tempConfdir();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  conf.remove();
});
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const resetKey = randomBytes(32);
const secretsFile = join(dir, 'secrets.json');
writeFileSync(
  secretsFile,
  JSON.stringify({ statelessResetKey: resetKey.toString('hex'), tokenKey: randomBytes(32).toString('hex') }),
);
const KEY = '8f95f09245765f80256934e50c66207f';
const tokenOf = (cid: string): string =>
  createHmac('sha256', resetKey).update(Buffer.from(cid, 'hex')).digest().subarray(0, 16).toString('hex');

/** Starts the built CLI and resolves with the port it printed for `scheme`. */
async function start(args: string[], scheme: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WIRELAYER_CONFDIR: conf.dir },
  });
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d;
  });
  const listening = new RegExp(`listening on ${scheme}://127\\.0\\.0\\.1:(\\d+)`);
  await waitUntil(() => listening.test(stderr) || child.exitCode !== null, `the CLI listening (${stderr})`, {
    timeoutMs: 15_000,
  });
  const m = listening.exec(stderr);
  if (!m) throw new Error(`wirelayer ${args.join(' ')} did not listen: ${stderr}`);
  return { child, port: Number(m[1]) };
}

/** gtlsclient against `port`: every ID it was given (first and spares), once it has them all. */
async function idsGiven(port: number, spares: number): Promise<ReturnType<typeof ngtcp2ServerIds>> {
  const client = gtlsclientDumping('127.0.0.1', port);
  cleanups.push(() => client.stop());
  await client.waitFor(/Negotiated cipher suite/);
  await waitUntil(
    () => ngtcp2ServerIds(client.output()).spares.length >= spares,
    'the spare IDs at the client',
  );
  return ngtcp2ServerIds(client.output());
}

describe('--quic-lb and --quic-secrets', () => {
  it('listen quic://: the IDs a client is given decode to the server ID; tokens come from the file', async () => {
    const { port } = await start(
      [
        'listen',
        'quic://127.0.0.1:0',
        '--cert',
        fixturePath('ec-cert.pem'),
        '--key',
        fixturePath('ec-key.pem'),
        '--quic-lb',
        `3:0a0b0c:6:${KEY}`,
        '--quic-secrets',
        secretsFile,
      ],
      'quic',
    );
    const view = await idsGiven(port, 3);
    const decoder = new QuicLbDecoder({
      configId: 3,
      serverIdLength: 3,
      nonceLength: 6,
      key: Buffer.from(KEY, 'hex'),
    });
    const ids = [...view.longScids, ...view.spares.map((s) => s.cid)];
    expect(ids).toHaveLength(4);
    for (const id of ids) expect(decoder.serverId(Buffer.from(id, 'hex'))?.toString('hex')).toBe('0a0b0c');
    expect(view.paramToken).toBe(tokenOf([...view.longScids][0]!));
    for (const spare of view.spares) expect(spare.token).toBe(tokenOf(spare.cid));
  });

  it("proxy --mode reverse:quic: the client leg's IDs decode to the proxy's server ID", async () => {
    const upstream = await quic.listen({ host: '127.0.0.1', cert: EC_CERT_PEM, key: EC_KEY_PEM });
    cleanups.push(() => upstream.close());
    const { port } = await start(
      [
        'proxy',
        '--mode',
        `reverse:quic://127.0.0.1:${upstream.address[1]}`,
        '--insecure',
        '--quic-lb',
        `2:00112233445566ff:8:${KEY}`,
        '--quic-secrets',
        secretsFile,
      ],
      'quic',
    );
    const view = await idsGiven(port, 3);
    const decoder = new QuicLbDecoder({
      configId: 2,
      serverIdLength: 8,
      nonceLength: 8,
      key: Buffer.from(KEY, 'hex'),
    });
    const ids = [...view.longScids, ...view.spares.map((s) => s.cid)];
    expect(ids).toHaveLength(4);
    for (const id of ids) {
      expect(id.length / 2).toBe(17);
      expect(decoder.serverId(Buffer.from(id, 'hex'))?.toString('hex')).toBe('00112233445566ff');
    }
    for (const spare of view.spares) expect(spare.token).toBe(tokenOf(spare.cid));
  });

  it('bad specs, files and schemes are usage errors (exit 2) that say what is wrong', async () => {
    const badFile = join(dir, 'bad.json');
    writeFileSync(badFile, '{"statelessResetKey": "00"}');
    const cases: [string[], RegExp][] = [
      [['listen', 'quic://127.0.0.1:0', '--quic-lb', '7:00:4'], /--quic-lb: config ID/],
      [['listen', 'quic://127.0.0.1:0', '--quic-lb', '0:0011:4:abc'], /--quic-lb: KEY_HEX/],
      [
        ['listen', 'quic://127.0.0.1:0', '--quic-secrets', badFile],
        /--quic-secrets: .*bad\.json: statelessResetKey must be 32 octets/,
      ],
      [
        ['listen', 'quic://127.0.0.1:0', '--quic-secrets', join(dir, 'none.json')],
        /--quic-secrets: cannot read/,
      ],
      [['listen', 'udp://127.0.0.1:0', '--quic-lb', '0:00:4'], /for quic:\/\/ listeners/],
      [
        ['proxy', '--mode', 'reverse:udp://127.0.0.1:9', '--quic-lb', '0:00:4'],
        /need a quic, socks5 or transparent mode/,
      ],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await runCli(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr, args.join(' ')).toMatch(message);
    }
  });
});
