/**
 * Workers: a listener or a proxy served by N processes, each with its own socket on the same
 * address (SO_REUSEPORT), for when one core is not enough.
 *
 * The cluster model (as `node:cluster`): the script that calls `listenWorkers` or
 * `proxyWorkers` runs in the primary and again in every worker (same module, arguments and
 * Node options), so hooks, addons and handlers the script sets up exist in every worker. In the
 * primary the call binds the sockets, forks the workers and resolves to a `WorkerGroup` (`role:
 * 'primary'`) that reports them; in a worker the same call resolves to `{ role: 'worker',
 * listener | proxy }`, serving on that worker's socket. State is per process: each worker has
 * its own sessions, flows, counters, caches, Retry token key and hook state (an addon's
 * variables count that worker's flows only); what must be shared goes through files (the CA
 * under `confdir`, which the primary makes before any worker starts; a key log, appended line by
 * line) or the user's own store. The primary forwards the workers' model records (`record`
 * events, the `listen`/`proxy --json` records with `worker`).
 *
 * Steering: plain UDP and DTLS flows, and TCP connections, go by the kernel's 4-tuple hash (a
 * flow stays on its worker); QUIC goes by connection ID (see steering.ts), so a client that
 * rebinds or migrates stays on its worker. A worker that dies takes only its own sessions; it is
 * replaced (`respawn`, default on) on the same socket, so no other worker's flows move.
 */
import { CertificateAuthority } from '../certs/index.js';
import type { Client, Server } from '../connection/index.js';
import type { StreamRecord } from '../proxy/layers/tcp.js';
import {
  type FlowMode,
  modeListenPort,
  type ProxyMode,
  parseMode,
  type ReverseMode,
  type Socks5Mode,
} from '../proxy/modes.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../proxy/proxy.js';
import { flowRecord, statsRecord } from '../proxy/record.js';
import { NativeDatagramSocket } from '../transport/datagram/native-socket.js';
import { datagramBackend } from '../transport/datagram/open.js';
import { fdAddress } from '../transport/datagram/reuseport.js';
import type { DatagramSocket } from '../transport/datagram/socket.js';
import { isWildcardAddress } from '../transport/datagram/socket.js';
import { type CidGenerator, RANDOM_CIDS } from '../transport/quic/cid.js';
import { SOCKET_BUFFER_SIZE } from '../transport/quic/endpoint.js';
import { type ModelEvent, modelRecord, watchModels } from '../transport/record.js';
import type { AnySession, Listener, ListenOptions, Scheme } from '../transport/types.js';
import { DEFAULT_LISTENER_RECV_BUFFER } from '../transport/udp/listener.js';
import { resolveHost } from '../transport/udp/socket.js';
import { type SharedSocketSpec, WorkerGroup } from './group.js';
import {
  type InheritedSocket,
  resolveWorkerCount,
  type WorkerCount,
  type WorkerEnvironment,
} from './protocol.js';
import { steeredCids } from './steering.js';
import { claimWorker, WorkerLink, WorkersError } from './worker.js';

export { type SharedListener, WorkerGroup, type WorkerInfo, type WorkerState } from './group.js';
export { MAX_WORKERS, resolveWorkerCount, type WorkerCount } from './protocol.js';
export { SteeringError, type SteeringSpec, steeredCids, steeringProgram } from './steering.js';
export { currentWorker, WorkersError } from './worker.js';

/** How to run workers (beside the listener's or proxy's own options). */
export interface WorkerOptions {
  /** How many worker processes; `auto`: `os.availableParallelism()`. Default 1: no workers, this process serves. */
  workers?: WorkerCount;
  /**
   * Replace a worker that dies (a signal, or an exit code other than 0) after it was ready, on
   * the same sockets; default true. A worker that exits with 0 (what it served was closed) or
   * dies before it was ready is not replaced: its sockets leave the groups.
   */
  respawn?: boolean;
  /**
   * Workers forward each model event to the primary (`record` events); default true. Off, the
   * primary does no work per session: each forwarded record costs it some 20 µs of CPU (a QUIC
   * handshake makes three), the one part of the work that does not spread over the workers.
   */
  records?: boolean;
  /** The module the workers run; default this process's (`process.argv[1]`). */
  exec?: string;
  /** Its arguments; default this process's (`process.argv.slice(2)`). */
  args?: readonly string[];
  /** Node's options for the workers; default this process's (`process.execArgv`). */
  execArgv?: readonly string[];
  /** Extra environment of the workers (beside this process's). */
  env?: Readonly<Record<string, string>>;
  /** ms for every worker to be ready before the start fails; default 30,000. */
  startTimeout?: number;
  /** ms a closing worker gets before SIGKILL; default 10,000. */
  closeTimeout?: number;
}

/** A worker serving a listener (or the only process, with `workers: 1`). */
export interface ListenerWorker<L> {
  readonly role: 'worker';
  /** This worker's index (0 with one worker). */
  readonly index: number;
  readonly count: number;
  readonly listener: L;
}

/** A worker serving a proxy (or the only process, with `workers: 1`). */
export interface ProxyWorker {
  readonly role: 'worker';
  readonly index: number;
  readonly count: number;
  readonly proxy: WirelayerProxy;
}

/** A driver, as `listenWorkers` takes it (`tcp`, `tls`, `udp`, `dtls`, `quic`, or `drivers[scheme]`). */
export interface ListenDriver<O extends ListenOptions, L> {
  readonly scheme: Scheme;
  listen(options: O): Promise<L>;
}

const DATAGRAM_SCHEMES: ReadonlySet<Scheme> = new Set(['udp', 'dtls', 'quic']);
const CERTIFICATE_SCHEMES: ReadonlySet<Scheme> = new Set(['tls', 'dtls', 'quic']);

/** The generator a QUIC listener's options name (`cids`), or the default. */
function cidsOf(options: object): CidGenerator {
  const given = (options as { cids?: CidGenerator }).cids;
  return given ?? RANDOM_CIDS;
}

function groupSpec(options: WorkerOptions, count: number, sockets: SharedSocketSpec[], signal?: AbortSignal) {
  const exec = options.exec ?? process.argv[1];
  if (exec === undefined)
    throw new WorkersError('ERR_WORKERS_EXEC', 'no script to run in the workers: give `exec`');
  return {
    count,
    sockets,
    respawn: options.respawn ?? true,
    records: options.records ?? true,
    exec,
    args: options.args ?? process.argv.slice(2),
    execArgv: options.execArgv ?? process.execArgv,
    env: options.env ?? {},
    startTimeout: options.startTimeout ?? 30_000,
    closeTimeout: options.closeTimeout ?? 10_000,
    ...(signal !== undefined ? { signal } : {}),
  };
}

let primaryStarted = false;

/** One group per primary: its workers re-run the script, which must make the same one call. */
function claimPrimary(): void {
  if (primaryStarted)
    throw new WorkersError(
      'ERR_WORKERS_STARTED',
      'one listenWorkers or proxyWorkers call per process (a proxy carries several modes)',
    );
  primaryStarted = true;
}

/** Workers need the native socket addon (SO_REUSEPORT, fds passed down, the steering program). */
function requireNative(datagram: boolean, requested?: 'native' | 'dgram'): void {
  if (datagram && datagramBackend(requested) !== 'native')
    throw new WorkersError(
      'ERR_WORKERS_NATIVE',
      'workers share a port through the native datagram socket (SO_REUSEPORT): not with WIRELAYER_DATAGRAM=dgram or datagramBackend: dgram',
    );
}

/** A worker's inherited socket for a listener of `scheme`: adopted with the socket setup the driver would make. */
function takeSocket(
  inherited: InheritedSocket,
  scheme: Scheme,
  recvBufferSize: number | undefined,
  sendBufferSize: number | undefined,
): { socket: DatagramSocket } | { fd: number } {
  const datagram = DATAGRAM_SCHEMES.has(scheme);
  if (datagram !== (inherited.kind === 'udp'))
    throw new WorkersError(
      'ERR_WORKERS_MISMATCH',
      `a ${scheme} listener got a ${inherited.kind} socket from the primary`,
    );
  if (!datagram) return { fd: inherited.fd };
  const socket = NativeDatagramSocket.adopt(inherited.fd, {
    recvBufferSize: scheme === 'quic' ? SOCKET_BUFFER_SIZE : (recvBufferSize ?? DEFAULT_LISTENER_RECV_BUFFER),
    sendBufferSize: scheme === 'quic' ? SOCKET_BUFFER_SIZE : sendBufferSize,
    // a wildcard needs each datagram's local address, to answer from it (as the drivers bind)
    packetInfo: isWildcardAddress(fdAddress(inherited.fd)[0]),
  });
  return { socket };
}

/**
 * Runs a listener on N worker processes sharing its address (the cluster model: see the module
 * comment). In the primary: binds one socket per worker (port 0: one free port for all), makes
 * the CA first where the listener needs it, forks the workers running this script, and resolves
 * to a `WorkerGroup` once every worker listens. In a worker (the same call, in the same script):
 * resolves to `{ role: 'worker', index, count, listener }`, the driver's listener on this
 * worker's socket; QUIC listeners issue connection IDs that steer to this worker (`cids` wrapped
 * by `steeredCids`). With `workers: 1` (the default) no process is started: the listener is made
 * here (`role: 'worker'`, index 0).
 *
 * Throws WorkersError: ERR_WORKERS_STARTED (a second call in one process), ERR_WORKERS_NATIVE
 * (datagram listeners without the native socket), ERR_WORKERS_START (a worker failed or exited
 * before listening: its error's message), ERR_WORKERS_MISMATCH (a worker's script made another
 * call than the primary's).
 */
export async function listenWorkers<O extends ListenOptions, L extends Listener<AnySession<Client>>>(
  driver: ListenDriver<O, L>,
  options: O & WorkerOptions,
): Promise<WorkerGroup | ListenerWorker<L>> {
  const scheme = driver.scheme;
  const worker = claimWorker();
  if (worker !== null) return serveListener(worker, driver, options);
  const count = resolveWorkerCount(options.workers);
  if (count === 1) return { role: 'worker', index: 0, count: 1, listener: await driver.listen(options) };
  claimPrimary();
  const datagram = DATAGRAM_SCHEMES.has(scheme);
  requireNative(datagram, (options as { datagramBackend?: 'native' | 'dgram' }).datagramBackend);
  await makeCa(CERTIFICATE_SCHEMES.has(scheme) && !ownsCertificate(options), options);
  const { address, family } = await resolveHost(options.host ?? '127.0.0.1');
  const cids = cidsOf(options);
  const spec: SharedSocketSpec = {
    kind: datagram ? 'udp' : 'tcp',
    family,
    address,
    port: options.port ?? 0,
    scheme,
    mode: null,
    steering: scheme === 'quic' ? { cidLength: cids.length, steeringOffset: cids.steeringOffset } : null,
  };
  return WorkerGroup.start(groupSpec(options, count, [spec], options.signal));
}

function ownsCertificate(options: object): boolean {
  const o = options as { cert?: unknown; key?: unknown; certs?: unknown };
  return (o.cert !== undefined && o.key !== undefined) || o.certs !== undefined;
}

/** The CA under `confdir`, read or made once here, before any worker could race to make it. */
async function makeCa(needed: boolean, options: object): Promise<void> {
  if (needed) await CertificateAuthority.open((options as { confdir?: string }).confdir);
}

async function serveListener<O extends ListenOptions, L extends Listener<AnySession<Client>>>(
  worker: WorkerEnvironment,
  driver: ListenDriver<O, L>,
  options: O & WorkerOptions,
): Promise<ListenerWorker<L>> {
  const link = new WorkerLink();
  const { index, count } = worker;
  const scheme = driver.scheme;
  let listener: L;
  try {
    const inherited = worker.sockets[0];
    if (worker.sockets.length !== 1 || inherited === undefined)
      throw new WorkersError(
        'ERR_WORKERS_MISMATCH',
        `a listener got ${worker.sockets.length} sockets from the primary`,
      );
    const buffers = options as { recvBufferSize?: number; sendBufferSize?: number };
    const bound = takeSocket(inherited, scheme, buffers.recvBufferSize, buffers.sendBufferSize);
    const steering = scheme === 'quic' ? { cids: steeredCids(cidsOf(options), index, count) } : {};
    listener = await driver.listen({ ...options, ...bound, ...steering });
  } catch (err) {
    link.failed(err);
    throw err;
  }
  const extra = { worker: index };
  if (worker.records)
    watchModels(listener, (event, session) => link.record(modelRecord(event, scheme, session.conn, extra)));
  link.serve(listener);
  link.ready();
  return { role: 'worker', index, count, listener };
}

/** The scheme a mode's socket serves: a datagram socket for udp, dtls and quic modes, TCP for the others. */
function modeKind(mode: ProxyMode): 'udp' | 'tcp' {
  return mode.kind === 'reverse' && DATAGRAM_SCHEMES.has(mode.scheme) ? 'udp' : 'tcp';
}

/**
 * Runs a proxy on N worker processes (the cluster model: see the module comment): every mode's
 * address is shared by all workers, each worker runs the whole proxy (every mode, every addon).
 * In the primary: binds the sockets (one per worker per mode), makes the CA, forks, and
 * resolves to a `WorkerGroup` (its `listening` has each mode's address); in a worker: resolves
 * to `{ role: 'worker', index, count, proxy }`. The workers' records (`record` events) are those
 * of `wirelayer proxy --json` with `worker`: each leg's model events, each stream record, and a
 * last `stats` record per worker. With `workers: 1` the proxy runs here. Errors as
 * `listenWorkers`'.
 */
export async function proxyWorkers(
  options: ProxyOptions & WorkerOptions,
): Promise<WorkerGroup | ProxyWorker> {
  const worker = claimWorker();
  if (worker !== null) return serveProxy(worker, options);
  const count = resolveWorkerCount(options.workers);
  if (count === 1) return { role: 'worker', index: 0, count: 1, proxy: await WirelayerProxy.start(options) };
  const modes = workerModes(options);
  claimPrimary();
  requireNative(modes.some((m) => modeKind(m) === 'udp'));
  const needsCa = modes.some(
    (m) => m.kind === 'socks5' || m.scheme === 'tls' || m.scheme === 'dtls' || m.scheme === 'quic',
  );
  await makeCa(needsCa, options);
  const cids = options.quicCids ?? RANDOM_CIDS;
  const sockets: SharedSocketSpec[] = [];
  for (const mode of modes) {
    const { address, family } = await resolveHost(mode.listenHost ?? options.listenHost ?? '127.0.0.1');
    const quic = mode.kind === 'reverse' && mode.scheme === 'quic';
    sockets.push({
      kind: modeKind(mode),
      family,
      address,
      port: modeListenPort(mode, options.listenPort),
      scheme: mode.kind === 'socks5' ? 'socks5' : mode.scheme,
      mode: mode.spec,
      steering: quic ? { cidLength: cids.length, steeringOffset: cids.steeringOffset } : null,
    });
  }
  return WorkerGroup.start(groupSpec(options, count, sockets, options.signal));
}

/** The proxy's modes, parsed; a transparent one is refused (it binds its own IP_TRANSPARENT sockets, one process). */
function workerModes(options: ProxyOptions): (ReverseMode | Socks5Mode)[] {
  const modes = options.modes.map((m) => (typeof m === 'string' ? parseMode(m) : m));
  const shared = modes.filter((m): m is ReverseMode | Socks5Mode => m.kind !== 'transparent');
  if (shared.length !== modes.length)
    throw new WorkersError(
      'ERR_WORKERS_MODE',
      'a transparent mode runs in one process: it binds its own IP_TRANSPARENT sockets',
    );
  return shared;
}

async function serveProxy(
  worker: WorkerEnvironment,
  options: ProxyOptions & WorkerOptions,
): Promise<ProxyWorker> {
  const link = new WorkerLink();
  const { index, count } = worker;
  let proxy: WirelayerProxy;
  try {
    const modes = workerModes(options);
    if (worker.sockets.length !== modes.length)
      throw new WorkersError(
        'ERR_WORKERS_MISMATCH',
        `a proxy of ${modes.length} modes got ${worker.sockets.length} sockets from the primary`,
      );
    const sockets = modes.map((mode, i) => {
      const taken = takeSocket(
        worker.sockets[i]!,
        mode.kind === 'socks5' ? 'tcp' : mode.scheme,
        undefined,
        undefined,
      );
      return 'fd' in taken ? taken.fd : taken.socket;
    });
    proxy = await WirelayerProxy.start({
      ...options,
      modes,
      sockets,
      quicCids: steeredCids(options.quicCids ?? RANDOM_CIDS, index, count),
    });
  } catch (err) {
    link.failed(err);
    throw err;
  }
  const extra = { worker: index };
  if (worker.records) {
    proxy.on('model', (event: ModelEvent, conn: Client | Server, flow: string, mode: FlowMode) =>
      link.record(flowRecord(event, mode, conn, flow, extra)),
    );
    proxy.on('stream', (record: StreamRecord) => link.record({ ...record, ...extra }));
    proxy.once('close', () => link.record(statsRecord(proxy.stats, extra)));
  }
  link.serve(proxy);
  link.ready();
  return { role: 'worker', index, count, proxy };
}
