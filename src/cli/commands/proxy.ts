import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Client, formatAddress, type Server } from '../../connection/index.js';
import type { ModelEvent } from '../../proxy/context.js';
import type { Addon } from '../../proxy/hooks.js';
import { type ImpairSpec, ImpairSpecError, parseImpairSpec } from '../../proxy/impair/spec.js';
import type { StreamRecord } from '../../proxy/layers/tcp.js';
import { type FlowMode, ModeError, parseMode } from '../../proxy/modes.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../proxy/proxy.js';
import { flowRecord, statsRecord } from '../../proxy/record.js';
import { currentWorker, proxyWorkers, resolveWorkerCount, type WorkerCount } from '../../workers/index.js';
import { parse, parseWorkers, securityOptions, trustedSenders, UsageError } from '../args.js';
import { modelLine } from '../output.js';
import { quicScaleOptions, quicScaleSettings, quicScaleUsage } from '../quic-scale.js';
import { runPrimary, untilSignal } from '../workers.js';

export const usage = `wirelayer proxy --mode reverse:SCHEME://HOST:PORT[@[HOST:]PORT] | socks5[@[HOST:]PORT] | transparent[@[HOST:]PORT] [--mode ...] [options]
  Relay every client to the mode's HOST:PORT (socks5: to the destination each client asks for,
  TCP by CONNECT and UDP by UDP ASSOCIATE; transparent: to the address each client dialed,
  brought here by TPROXY rules for TCP and UDP or REDIRECT for TCP; Linux, CAP_NET_ADMIN) until stopped (SIGINT/SIGTERM), intercepting TLS,
  DTLS and QUIC (the client leg gets a certificate of the wirelayer CA, the server leg is
  verified) unless the flow is ignored. Per flow, both legs' models are printed as they change
  (start, up, closed, error) with the flow's id, and a stream record when a stream ends. The
  bound addresses go to stderr. Schemes: tcp, tls, udp, dtls, quic.
  --mode SPEC           reverse:SCHEME://HOST:PORT, socks5 or transparent; repeatable (one listener each;
                        MODE@PORT or MODE@HOST:PORT says where that one listens)
  --listen-host H       address to listen on (default 127.0.0.1)
  --listen-port P       port to listen on (default 0: a free one, shown on stderr; socks5: 1080)
  --proxyauth USER:PASS SOCKS5 clients must authenticate (RFC 1929) with these; "any": a
                        socks5Auth hook decides
  --socks5-advertise H  the address UDP ASSOCIATE replies tell clients to send to (NAT, wildcard
                        listeners); default the relay socket's own
  -s, --script FILE     an ES module whose default export is an addon or an array of addons; repeatable
  --ignore-hosts RE     pass through flows whose server address or SNI (host:port) matches; repeatable
  --allow-hosts RE      pass through flows that match none of these; repeatable
  --insecure            do not verify upstream certificates
  --upstream-ca FILE    trust this CA (PEM) for upstreams, beside the system's
  --certs DOMAIN=FILE   present FILE (PEM chain and key) to clients asking for DOMAIN (*.x, * allowed); repeatable
  --keylog FILE         append both legs' TLS secrets (SSLKEYLOGFILE format)
  --connection-strategy eager|lazy  eager (default): the server leg is up before the client's handshake
  --tls-min V, --tls-max V, --ciphers STR  versions and ciphers allowed on both legs
  --idle-timeout SECONDS  close flows idle this long (default: none for TCP/TLS, 60 for UDP)
  --udp-timeout SECONDS   the idle timeout of UDP flows alone
  --quic-timeout SECONDS  the idle timeout of QUIC connections alone (default: --udp-timeout)
  --max-flows N         UDP flows held at most; at the cap the least recently active is evicted (default 10000)
  --impair SPEC         impair the link between the legs, per direction (up: to the server, down: back,
                        both if unprefixed), a comma list: loss=P burst=N drop=I,J,.. reorder=P gap=N
                        duplicate=P delay=MS jitter=MS rate=BITS[k|M|G] queue=N corrupt=P mtu=B
                        blackhole=ON_MS/OFF_MS rebind=MS rebind-addr=MS seed=N (P: 0..1 or %), e.g.
                        "loss=0.3,burst=3" or "up:delay=50,down:rate=10M". udp, dtls and quic are impaired
                        per datagram; tcp and tls take delay, jitter, rate and blackhole only (loss,
                        reordering, duplication, corruption, MTU and rebinding need a packet layer)
  --workers N|auto      run the proxy in N processes (auto: one per core) sharing every mode's address
                        (SO_REUSEPORT; QUIC steered by connection ID); addons run in each; records gain
                        "worker", and each worker prints its own last stats record (default 1: this process)
  --json                one JSON object per line on stdout; on SIGINT/SIGTERM a last {"event":"stats",...}
                        record with the proxy's counters (and "impair": per direction what was done;
                        "proxy_protocol": what the listeners' PROXY protocol dropped and accepted;
                        "transparent": the transparent modes' counters)
  --proxy-protocol-from ADDR[/PREFIX][,...]  the udp, dtls and quic modes listen behind load balancers
                        speaking the PROXY protocol v2: each datagram from these senders must start
                        with a v2 header, whose source is the flow's client; replies go back through
                        the balancer. Without a header, or malformed: dropped and counted. Repeatable
  --proxy-protocol-upstream  every datagram the server legs of udp, dtls and quic flows send starts with
                        a PROXY v2 header naming the client (28 bytes over IPv4, 52 over IPv6)
${quicScaleUsage}`;

const options = {
  mode: { type: 'string', multiple: true },
  'listen-host': { type: 'string' },
  'listen-port': { type: 'string' },
  script: { type: 'string', short: 's', multiple: true },
  'ignore-hosts': { type: 'string', multiple: true },
  'allow-hosts': { type: 'string', multiple: true },
  insecure: { type: 'boolean' },
  'upstream-ca': { type: 'string' },
  certs: { type: 'string', multiple: true },
  keylog: { type: 'string' },
  'connection-strategy': { type: 'string' },
  'tls-min': { type: 'string' },
  'tls-max': { type: 'string' },
  ciphers: { type: 'string' },
  'max-flows': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'udp-timeout': { type: 'string' },
  'quic-timeout': { type: 'string' },
  proxyauth: { type: 'string' },
  'socks5-advertise': { type: 'string' },
  impair: { type: 'string' },
  workers: { type: 'string' },
  'proxy-protocol-from': { type: 'string', multiple: true },
  'proxy-protocol-upstream': { type: 'boolean' },
  ...quicScaleOptions,
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function integer(text: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${flag}: not an integer in ${min}..${max}: ${text}`);
  return n;
}

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/** `--certs DOMAIN=FILE` (mitmproxy's): FILE holds the PEM chain and the key; no DOMAIN means `*`. */
function givenCertificate(spec: string): { domain: string; cert: string; key: string } {
  const eq = spec.indexOf('=');
  const [domain, file] = eq === -1 ? ['*', spec] : [spec.slice(0, eq), spec.slice(eq + 1)];
  const text = readText(file, '--certs');
  const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/.exec(text)?.[0];
  const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (key === undefined || certs === null)
    throw new UsageError(`--certs: ${file} must hold a certificate and its private key (PEM)`);
  return { domain, cert: `${certs.join('\n')}\n`, key: `${key}\n` };
}

/** An addon module (`-s FILE`): its default export, an addon or an array of them. */
async function loadScript(file: string): Promise<Addon[]> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown };
  } catch (e) {
    throw new UsageError(`--script: cannot load ${file}: ${(e as Error).message}`);
  }
  const exported = module.default;
  const addons = Array.isArray(exported) ? exported : [exported];
  if (addons.length === 0 || addons.some((a) => typeof a !== 'object' || a === null))
    throw new UsageError(`--script: ${file} must export default an addon object or an array of them`);
  return addons as Addon[];
}

function seconds(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const s = Number(text);
  if (!Number.isFinite(s) || s < 0) throw new UsageError(`${flag}: not a number of seconds: ${text}`);
  return s * 1000;
}

function streamLine(r: StreamRecord): string {
  const ids = r.client_stream_id === null ? '' : `  stream ${r.client_stream_id} -> ${r.server_stream_id}`;
  return `Flow(${r.flow})  stream${ids}  ${r.bytes_from_client} B from client, ${r.bytes_from_server} B from server  end=${r.end}`;
}

/** Runs the proxy until SIGINT/SIGTERM (or `signal`, for embedding and tests). */
export async function run(args: string[], signal?: AbortSignal): Promise<number> {
  const { values } = parse(args, options);
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (values.mode === undefined || values.mode.length === 0)
    throw new UsageError('missing --mode reverse:SCHEME://HOST:PORT, socks5 or transparent');
  const modes = values.mode.map((spec) => {
    try {
      return parseMode(spec);
    } catch (e) {
      if (e instanceof ModeError) throw new UsageError(`--mode: ${e.message}`);
      throw e;
    }
  });
  const strategy = values['connection-strategy'];
  if (strategy !== undefined && strategy !== 'eager' && strategy !== 'lazy')
    throw new UsageError(`--connection-strategy: eager or lazy, not ${strategy}`);
  const security = securityOptions({
    'tls-min': values['tls-min'],
    'tls-max': values['tls-max'],
    ciphers: values.ciphers,
  });
  for (const re of [...(values['ignore-hosts'] ?? []), ...(values['allow-hosts'] ?? [])]) {
    try {
      new RegExp(re, 'i');
    } catch (e) {
      throw new UsageError(`not a regular expression: ${re} (${(e as Error).message})`);
    }
  }
  const auth = values.proxyauth;
  if (auth !== undefined && auth !== 'any' && !/^[^:]+:.+$/.test(auth))
    throw new UsageError(`--proxyauth: USER:PASS or any, not ${auth}`);
  let impair: ImpairSpec | undefined;
  if (values.impair !== undefined) {
    try {
      impair = parseImpairSpec(values.impair);
    } catch (e) {
      if (e instanceof ImpairSpecError) throw new UsageError(`--impair: ${e.message}`);
      throw e;
    }
  }
  const workers = parseWorkers(values.workers);
  const from = values['proxy-protocol-from'];
  const proxyProtocol =
    from === undefined ? undefined : { trusted: trustedSenders(from, '--proxy-protocol-from').entries };
  const scale = quicScaleSettings(values);
  if (
    (scale.cids !== undefined || scale.secrets !== undefined) &&
    !modes.some((m) => m.kind !== 'reverse' || m.scheme === 'quic')
  )
    throw new UsageError('--quic-lb and --quic-secrets need a quic, socks5 or transparent mode');
  const addons: Addon[] = [];
  for (const file of values.script ?? []) addons.push(...(await loadScript(file)));
  const stop = new AbortController();
  const proxyOptions: ProxyOptions = {
    modes,
    addons,
    listenHost: values['listen-host'] ?? '127.0.0.1',
    listenPort: integer(values['listen-port'], '--listen-port', 0, 65535),
    ignoreHosts: values['ignore-hosts'],
    allowHosts: values['allow-hosts'],
    insecure: values.insecure ?? false,
    upstreamCa:
      values['upstream-ca'] === undefined ? undefined : readText(values['upstream-ca'], '--upstream-ca'),
    certs: (values.certs ?? []).map(givenCertificate),
    keylog: values.keylog,
    connectionStrategy: strategy,
    idleTimeout: seconds(values['idle-timeout'], '--idle-timeout'),
    udpTimeout: seconds(values['udp-timeout'], '--udp-timeout'),
    quicTimeout: seconds(values['quic-timeout'], '--quic-timeout'),
    maxFlows: integer(values['max-flows'], '--max-flows', 1, 10_000_000),
    minVersion: security.minVersion,
    maxVersion: security.maxVersion,
    ciphers: security.ciphers,
    ...(values.proxyauth !== undefined ? { proxyAuth: values.proxyauth } : {}),
    ...(values['socks5-advertise'] !== undefined
      ? { socks5: { advertise: values['socks5-advertise'] } }
      : {}),
    impair,
    signal: stop.signal,
    ...(proxyProtocol !== undefined ? { proxyProtocol } : {}),
    ...(values['proxy-protocol-upstream'] ? { proxyProtocolUpstream: true } : {}),
    ...(scale.cids !== undefined ? { quicCids: scale.cids } : {}),
    ...(scale.secrets !== undefined ? { quicSecrets: scale.secrets } : {}),
  };
  const json = values.json ?? false;
  if (resolveWorkerCount(workers) > 1 || currentWorker() !== null)
    return proxyInWorkers(proxyOptions, workers, json, stop, signal);
  let proxy: WirelayerProxy;
  try {
    proxy = await WirelayerProxy.start(proxyOptions);
  } catch (e) {
    // a spec that parsed but asks a tcp/tls-only proxy for packet faults
    if (e instanceof ImpairSpecError) throw new UsageError(`--impair: ${e.message}`);
    throw e;
  }
  const write = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  proxy.on('model', (event: ModelEvent, conn: Client | Server, flow: string, mode: FlowMode) =>
    write(json ? JSON.stringify(flowRecord(event, mode, conn, flow)) : modelLine(event, mode.scheme, conn)),
  );
  proxy.on('stream', (record: StreamRecord) => write(json ? JSON.stringify(record) : streamLine(record)));
  reportProblems(proxy, json, '');
  for (const l of proxy.listening) {
    process.stderr.write(
      `wirelayer: listening on ${l.mode.kind === 'reverse' ? l.mode.scheme : l.mode.kind}://${formatAddress(l.address)} (${l.mode.spec})\n`,
    );
  }

  const closed = new Promise<void>((r) => proxy.once('close', () => r()));
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (signal?.aborted) stop.abort();
  signal?.addEventListener('abort', onSignal, { once: true });
  await closed;
  if (json) write(JSON.stringify(statsRecord(proxy.stats)));
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  signal?.removeEventListener('abort', onSignal);
  return 0;
}

/** Flow failures (readable mode), listener errors and the impairment seed, on stderr. */
function reportProblems(proxy: WirelayerProxy, json: boolean, who: string): void {
  proxy.on('flowError', (err: Error & { code?: string }) => {
    if (!json) process.stderr.write(`wirelayer: ${who}flow failed: ${err.code ?? 'ERR'}: ${err.message}\n`);
  });
  proxy.on('error', (err: Error) =>
    process.stderr.write(`wirelayer: ${who}listener error: ${err.message}\n`),
  );
  const impairStats = proxy.stats.impair;
  if (impairStats !== null)
    process.stderr.write(
      `wirelayer: ${who}impairing with seed ${impairStats.seed} (seed=N replays its decisions)\n`,
    );
}

/** `--workers`: this process is the primary (it prints the workers' records) or one of the workers (it serves). */
async function proxyInWorkers(
  options: ProxyOptions,
  workers: WorkerCount,
  json: boolean,
  stop: AbortController,
  signal: AbortSignal | undefined,
): Promise<number> {
  let run: Awaited<ReturnType<typeof proxyWorkers>>;
  try {
    run = await proxyWorkers({ ...options, workers });
  } catch (e) {
    if (e instanceof ImpairSpecError) throw new UsageError(`--impair: ${e.message}`);
    throw e;
  }
  const onAbort = (): void => stop.abort();
  if (signal?.aborted) stop.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (run.role === 'primary') {
      return await runPrimary(run, json, stop, (record) =>
        record.event === 'stream'
          ? `${streamLine(record as unknown as StreamRecord)}  worker=${String(record.worker)}`
          : null,
      );
    }
    reportProblems(run.proxy, json, `worker ${run.index}: `);
    await untilSignal(run.proxy, stop);
    return 0;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
