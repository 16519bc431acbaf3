/**
 * A load balancer in a test: a node:dgram front socket that real clients (openssl s_client,
 * gtlsclient) send to, and per client a back socket that forwards each datagram to the target
 * with a PROXY v2 header (UDP) in front, naming the client as `sourceOf` says; what comes back to
 * a back socket goes to its client as it is. Envoy's UDP proxy with `proxy_protocol` behaves so.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import type { Address } from '../../src/connection/index.js';
import { udpProxyHeader } from '../../src/transport/udp/proxy-protocol.js';

type HostPort = Address;

interface Session {
  back: Socket;
  header: Buffer;
  client: RemoteInfo;
}

export class ProxyV2Balancer {
  readonly #sessions = new Map<string, Session>();
  /** Datagrams forwarded with a header, and replies returned to clients. */
  forwarded = 0;
  returned = 0;
  /** Every reply as it came back, to check that none carries a header. */
  readonly replies: Buffer[] = [];

  private constructor(
    readonly front: Socket,
    readonly target: HostPort,
    readonly sourceOf: (client: RemoteInfo) => HostPort,
  ) {
    front.on('message', (datagram, rinfo) => this.#forward(datagram, rinfo));
  }

  /** Listens on `host` (port 0) and forwards to `target` (an IP literal of the same family). */
  static async start(
    host: string,
    target: HostPort,
    sourceOf: (client: RemoteInfo) => HostPort,
  ): Promise<ProxyV2Balancer> {
    const front = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    front.bind(0, host);
    await once(front, 'listening');
    return new ProxyV2Balancer(front, target, sourceOf);
  }

  get port(): number {
    return this.front.address().port;
  }

  /** The clients seen, as `address|port`, in order. */
  get sessionKeys(): string[] {
    return [...this.#sessions.keys()];
  }

  #forward(datagram: Buffer, client: RemoteInfo): void {
    const key = `${client.address}|${client.port}`;
    let session = this.#sessions.get(key);
    if (session === undefined) {
      const back = createSocket(this.target[0].includes(':') ? 'udp6' : 'udp4');
      const header = udpProxyHeader(this.sourceOf(client), this.target);
      session = { back, header, client };
      this.#sessions.set(key, session);
      back.on('message', (reply) => {
        this.returned++;
        this.replies.push(reply);
        this.front.send(reply, client.port, client.address);
      });
      // sends wait (in order) for the bind
      back.bind(0, this.target[0]);
    }
    this.forwarded++;
    session.back.send([session.header, datagram], this.target[1], this.target[0]);
  }

  async stop(): Promise<void> {
    const sockets = [this.front, ...[...this.#sessions.values()].map((s) => s.back)];
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
