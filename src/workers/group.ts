/**
 * The primary's side: it binds one socket per worker on each shared address (SO_REUSEPORT, in
 * worker order, so worker i's socket is index i of the kernel's reuseport group), attaches the
 * QUIC steering program, forks the workers with their sockets as inherited file descriptors,
 * and keeps its own copy of every socket. A worker that dies therefore leaves its socket in the
 * group: its datagrams wait in the socket's buffer for the replacement, which inherits the same
 * socket, and no other worker's flows move (a group that loses a member rehashes every
 * 4-tuple, and moves its last socket into the hole). Only when a worker is not replaced does
 * its socket leave; the steering program is then rebuilt for the new order.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Address } from '../connection/index.js';
import {
  attachReusePortProgram,
  bindReusePortFd,
  closeFd,
  fdAddress,
  type SharedSocketKind,
} from '../transport/datagram/reuseport.js';
import { type PrimaryMessage, WORKER_ENV, type WorkerEnvironment, workerMessage } from './protocol.js';
import { steeringProgram } from './steering.js';
import { WorkersError } from './worker.js';

/** Where a worker is in its life. */
export type WorkerState = 'starting' | 'ready' | 'exited';

/** A worker, as the primary sees it. */
export interface WorkerInfo {
  /** Its index: QUIC connection IDs it issues steer to it; `worker` in its records. */
  readonly index: number;
  /** Its process now (null between a death and the replacement). */
  readonly pid: number | null;
  readonly state: WorkerState;
  /** Processes started for this index: 1, plus one per replacement. */
  readonly starts: number;
}

/** A shared address: what listens there, and where. */
export interface SharedListener {
  /** The scheme (`socks5` for a SOCKS5 mode). */
  readonly scheme: string;
  /** The bound address (the real port when 0 was asked for). */
  readonly address: Address;
  /** The proxy mode's spec; null for a listener. */
  readonly mode: string | null;
}

/** One socket per worker on one address. */
export interface SharedSocketSpec {
  readonly kind: SharedSocketKind;
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  readonly scheme: string;
  readonly mode: string | null;
  /** QUIC: the IDs the workers issue, which the steering program reads; null: the 4-tuple hash. */
  readonly steering: { readonly cidLength: number; readonly steeringOffset: number } | null;
}

/** How a group starts and runs its workers. */
export interface WorkerGroupSpec {
  readonly count: number;
  readonly sockets: readonly SharedSocketSpec[];
  /** Replace a worker that dies (exit code not 0, or a signal) after it was ready. */
  readonly respawn: boolean;
  /** Workers forward their model records (`record` events). */
  readonly records: boolean;
  /** The module each worker runs, its arguments, Node's options, extra environment. */
  readonly exec: string;
  readonly args: readonly string[];
  readonly execArgv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** ms for every worker to be ready; ms a closing worker gets before SIGKILL. */
  readonly startTimeout: number;
  readonly closeTimeout: number;
  readonly signal?: AbortSignal;
}

/** A replacement of a worker that died within this many ms of being ready waits longer each time. */
const QUICK_DEATH_MS = 5000;
const MAX_RESPAWN_DELAY_MS = 10_000;

interface Slot {
  readonly index: number;
  child: ChildProcess | null;
  state: WorkerState;
  starts: number;
  readyAt: number;
  /** Deaths in a row within QUICK_DEATH_MS of being ready. */
  quickDeaths: number;
  /** The worker said it is closing on purpose (what it served closed). */
  leaving: boolean;
  failure: WorkersError | null;
  respawnTimer: NodeJS.Timeout | null;
  exited: Promise<void>;
}

interface SocketGroup {
  readonly spec: SharedSocketSpec;
  /** Per worker index: its socket, or null once it left the group. */
  readonly fds: (number | null)[];
  /** Per index in the kernel's group: the worker whose socket is there (the kernel's order). */
  readonly order: number[];
  readonly address: Address;
}

/**
 * Binds one socket per worker on each address, in worker order; the QUIC groups get the
 * steering program. Closes what it bound and throws if one cannot be bound.
 */
function bindGroups(specs: readonly SharedSocketSpec[], count: number): SocketGroup[] {
  const bound: number[] = [];
  try {
    return specs.map((spec) => {
      const fds = [bindReusePortFd(spec.kind, spec.family, spec.address, spec.port)];
      bound.push(fds[0]!);
      const address = fdAddress(fds[0]!);
      // port 0: the first socket picked it, the others share it
      for (let i = 1; i < count; i++) {
        fds.push(bindReusePortFd(spec.kind, spec.family, spec.address, address[1]));
        bound.push(fds[i]!);
      }
      if (spec.steering !== null)
        attachReusePortProgram(fds[0]!, steeringProgram({ ...spec.steering, workers: count }));
      return { spec, fds, order: fds.map((_, i) => i), address };
    });
  } catch (err) {
    for (const fd of bound) closeFd(fd);
    throw err;
  }
}

/**
 * The primary's handle on its workers (`role: 'primary'`). Every worker runs the same script
 * (the cluster model) and serves its own share of each shared address; the primary serves
 * nothing itself.
 *
 * Events: `online` (`WorkerInfo`): a replacement worker is ready (the first ones all are before
 * the group is handed over: see `workers`); `exit`
 * (`WorkerInfo`, `code`, `signal`, `respawn`: whether a replacement follows): a worker process
 * ended; `record` (a JSON record): a model event of a worker, the records of `wirelayer listen`
 * and `proxy --json` with `worker` (its index) added; `message` (`index`, `message`): a message
 * a worker's script sent with `process.send`; `close`: every worker has exited and the
 * sockets are closed.
 */
export class WorkerGroup extends EventEmitter implements AsyncDisposable {
  readonly role = 'primary' as const;
  readonly #spec: WorkerGroupSpec;
  readonly #groups: SocketGroup[];
  readonly #slots: Slot[];
  #closing: Promise<void> | null = null;
  #closed = false;
  #starting: { resolve(): void; reject(error: Error): void } | null = null;

  private constructor(spec: WorkerGroupSpec, groups: SocketGroup[]) {
    super();
    this.#spec = spec;
    this.#groups = groups;
    this.#slots = Array.from({ length: spec.count }, (_, index) => ({
      index,
      child: null,
      state: 'exited' as WorkerState,
      starts: 0,
      readyAt: 0,
      quickDeaths: 0,
      leaving: false,
      failure: null,
      respawnTimer: null,
      exited: Promise.resolve(),
    }));
  }

  /**
   * Binds the sockets, forks the workers and resolves once every one is ready; rejects (the
   * workers stopped, the sockets closed) if a socket cannot be bound, or a worker fails or exits
   * before it is ready, or `startTimeout` passes.
   */
  static async start(spec: WorkerGroupSpec): Promise<WorkerGroup> {
    spec.signal?.throwIfAborted();
    const group = new WorkerGroup(spec, bindGroups(spec.sockets, spec.count));
    const started = new Promise<void>((resolve, reject) => {
      group.#starting = { resolve, reject };
    });
    const timer = setTimeout(
      () =>
        group.#starting?.reject(
          new WorkersError(
            'ERR_WORKERS_START',
            `the workers were not all ready within ${spec.startTimeout} ms`,
          ),
        ),
      spec.startTimeout,
    );
    try {
      for (const slot of group.#slots) group.#fork(slot);
      await started;
    } catch (err) {
      await group.close();
      throw err;
    } finally {
      clearTimeout(timer);
      group.#starting = null;
    }
    if (spec.signal) {
      if (spec.signal.aborted) void group.close();
      else spec.signal.addEventListener('abort', () => void group.close(), { once: true });
    }
    return group;
  }

  /** The number of workers. */
  get count(): number {
    return this.#spec.count;
  }

  /** Every shared address, in the order given (a proxy's modes). */
  get listening(): readonly SharedListener[] {
    return this.#groups.map((g) => ({ scheme: g.spec.scheme, address: g.address, mode: g.spec.mode }));
  }

  /** The first shared address (a listener's only one). */
  get address(): Address {
    return this.#groups[0]!.address;
  }

  /** A snapshot of every worker. */
  get workers(): readonly WorkerInfo[] {
    return this.#slots.map((s) => this.#info(s));
  }

  #info(slot: Slot): WorkerInfo {
    return { index: slot.index, pid: slot.child?.pid ?? null, state: slot.state, starts: slot.starts };
  }

  #fork(slot: Slot): void {
    const fds = this.#groups.map((g) => g.fds[slot.index]!);
    const environment: WorkerEnvironment = {
      index: slot.index,
      count: this.#spec.count,
      primary: process.pid,
      // the sockets follow stdin, stdout, stderr and the IPC channel: fd 4 on
      sockets: this.#groups.map((g, i) => ({ fd: 4 + i, kind: g.spec.kind })),
      records: this.#spec.records,
    };
    const child = fork(this.#spec.exec, [...this.#spec.args], {
      execArgv: [...this.#spec.execArgv],
      env: { ...process.env, ...this.#spec.env, [WORKER_ENV]: JSON.stringify(environment) },
      stdio: ['inherit', 'inherit', 'inherit', 'ipc', ...fds],
    });
    slot.child = child;
    slot.state = 'starting';
    slot.starts++;
    slot.leaving = false;
    slot.failure = null;
    let gone = false;
    slot.exited = new Promise<void>((resolve) => {
      const end = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (gone) return;
        gone = true;
        resolve();
        this.#onExit(slot, child, code, signal);
      };
      // messages still in the channel are read before it reports its end: records are not lost
      child.once('exit', (code, signal) => {
        if (child.connected) child.once('disconnect', () => end(code, signal));
        else end(code, signal);
      });
      // a fork that could not start: no `exit` follows
      child.once('error', (err) => {
        if (child.pid === undefined) {
          slot.failure = new WorkersError('ERR_WORKERS_START', `cannot start a worker: ${err.message}`, {
            cause: err,
          });
          end(null, null);
        }
      });
    });
    child.on('message', (message: unknown) => this.#onMessage(slot, message));
  }

  #onMessage(slot: Slot, value: unknown): void {
    const message = workerMessage(value);
    if (message === null) {
      this.emit('message', slot.index, value);
      return;
    }
    switch (message.wirelayer) {
      case 'ready':
        slot.state = 'ready';
        slot.readyAt = performance.now();
        this.emit('online', this.#info(slot));
        if (this.#starting !== null && this.#slots.every((s) => s.state === 'ready'))
          this.#starting.resolve();
        break;
      case 'failed':
        slot.failure = new WorkersError(
          message.code ?? 'ERR_WORKERS_START',
          `worker ${slot.index} failed to start: ${message.message}`,
        );
        break;
      case 'records':
        for (const record of message.records) this.emit('record', record);
        break;
      case 'leaving':
        slot.leaving = true;
        break;
    }
  }

  #onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    const wasReady = slot.state === 'ready';
    slot.child = null;
    slot.state = 'exited';
    if (this.#closing !== null) {
      this.emit('exit', this.#info(slot), code, signal, false);
      return;
    }
    if (this.#starting !== null) {
      this.#starting.reject(
        slot.failure ??
          new WorkersError(
            'ERR_WORKERS_START',
            `worker ${slot.index} exited (${signal ?? `code ${code}`}) before it was ready`,
          ),
      );
      this.emit('exit', this.#info(slot), code, signal, false);
      return;
    }
    const crashed = !slot.leaving && (code !== 0 || signal !== null);
    const respawn = crashed && wasReady && this.#spec.respawn;
    this.emit('exit', this.#info(slot), code, signal, respawn);
    if (respawn) {
      slot.quickDeaths = performance.now() - slot.readyAt < QUICK_DEATH_MS ? slot.quickDeaths + 1 : 0;
      const delay =
        slot.quickDeaths === 0 ? 0 : Math.min(MAX_RESPAWN_DELAY_MS, 250 * 2 ** (slot.quickDeaths - 1));
      slot.respawnTimer = setTimeout(() => {
        slot.respawnTimer = null;
        if (this.#closing === null) this.#fork(slot);
      }, delay);
      return;
    }
    this.#release(slot.index);
    if (this.#slots.every((s) => s.child === null && s.respawnTimer === null)) void this.close();
  }

  /**
   * Worker `index` is gone for good: its sockets leave their groups (the kernel moves each
   * group's last socket into the hole) and the steering programs learn the new order.
   */
  #release(index: number): void {
    for (const group of this.#groups) {
      const fd = group.fds[index];
      if (fd === null || fd === undefined) continue;
      closeFd(fd);
      group.fds[index] = null;
      const at = group.order.indexOf(index);
      const last = group.order.pop()!;
      if (at < group.order.length) group.order[at] = last;
      const steering = group.spec.steering;
      const anchor = group.fds.find((f) => f !== null);
      if (steering === null || anchor === undefined || anchor === null) continue;
      const slots = group.fds.map((_, worker) => {
        const position = group.order.indexOf(worker);
        return position === -1 ? null : position;
      });
      attachReusePortProgram(anchor, steeringProgram({ ...steering, workers: this.#spec.count, slots }));
    }
  }

  /** Sends a message to worker `index`'s script (its `process.on('message')`); false if it has no process now. */
  send(index: number, message: unknown): boolean {
    const child = this.#slots[index]?.child;
    if (!child?.connected) return false;
    child.send(message as Parameters<ChildProcess['send']>[0]);
    return true;
  }

  /**
   * Asks every worker to close (each closes what it serves, gracefully, then exits), waits for
   * them (SIGKILL after `closeTimeout`), closes the sockets; resolves once done.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const close: PrimaryMessage = { wirelayer: 'close' };
      for (const slot of this.#slots) {
        if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
        slot.respawnTimer = null;
        const child = slot.child;
        if (child === null) continue;
        // one still starting has no handler for the message yet: SIGTERM (the CLI closes on it)
        if (child.connected && slot.state === 'ready') child.send(close);
        else child.kill('SIGTERM');
      }
      const kill = setTimeout(() => {
        for (const slot of this.#slots) slot.child?.kill('SIGKILL');
      }, this.#spec.closeTimeout);
      await Promise.all(this.#slots.map((s) => s.exited));
      clearTimeout(kill);
      for (const group of this.#groups) {
        for (const [i, fd] of group.fds.entries()) {
          if (fd !== null) closeFd(fd);
          group.fds[i] = null;
        }
      }
      this.#closed = true;
      this.emit('close');
    })();
    return this.#closing;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
