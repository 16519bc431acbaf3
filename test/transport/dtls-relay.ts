/**
 * An in-process UDP relay between one client and one server, for loss, reordering, replay and
 * injection: the client dials the relay; every datagram goes through `policy` (pass, drop, or
 * delay by some ms, which reorders it behind later ones) and is recorded per direction.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';

export type Direction = 'c2s' | 's2c';
export type RelayAction = 'pass' | 'drop' | { delayMs: number };
export type RelayPolicy = (direction: Direction, index: number, datagram: Buffer) => RelayAction;

export class DatagramRelay {
  readonly seen: Record<Direction, Buffer[]> = { c2s: [], s2c: [] };
  dropped = 0;
  delayed = 0;
  policy: RelayPolicy = () => 'pass';
  #client: { address: string; port: number } | null = null;
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(
    readonly front: Socket,
    readonly back: Socket,
    readonly target: { address: string; port: number },
  ) {
    front.on('message', (d, r) => {
      this.#client = { address: r.address, port: r.port };
      this.#forward('c2s', d);
    });
    back.on('message', (d) => this.#forward('s2c', d));
  }

  static async start(host: string, targetPort: number): Promise<DatagramRelay> {
    const type = host.includes(':') ? 'udp6' : 'udp4';
    const front = createSocket(type);
    const back = createSocket(type);
    front.bind(0, host);
    back.bind(0, host);
    await Promise.all([once(front, 'listening'), once(back, 'listening')]);
    return new DatagramRelay(front, back, { address: host, port: targetPort });
  }

  get port(): number {
    return this.front.address().port;
  }

  /** Sends a datagram as if it came from the client (c2s) or the server (s2c), bypassing the policy. */
  inject(direction: Direction, datagram: Uint8Array): void {
    if (direction === 'c2s') this.back.send(datagram, this.target.port, this.target.address);
    else if (this.#client) this.front.send(datagram, this.#client.port, this.#client.address);
  }

  #forward(direction: Direction, d: Buffer): void {
    const index = this.seen[direction].length;
    this.seen[direction].push(d);
    const action = this.policy(direction, index, d);
    if (action === 'drop') {
      this.dropped++;
      return;
    }
    if (action === 'pass') {
      this.inject(direction, d);
      return;
    }
    this.delayed++;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.inject(direction, d);
    }, action.delayMs);
    this.#timers.add(timer);
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    await Promise.all([
      new Promise<void>((r) => this.front.close(() => r())),
      new Promise<void>((r) => this.back.close(() => r())),
    ]);
  }
}
