import type { Server as NetServer, Socket } from 'node:net';
import type { Address, Client } from '../../connection/index.js';
import { BaseListener } from '../listener.js';
import type { ListenOptions } from '../types.js';
import { acceptedClient, bindTcpServer } from './accept.js';
import { TcpSession } from './session.js';

/** Accepts TCP connections; each becomes a TcpSession with an OPEN Client model. */
export class TcpListener extends BaseListener<TcpSession<Client>> {
  #address: Address;

  private constructor(
    private readonly server: NetServer,
    address: Address,
    private readonly options: ListenOptions,
  ) {
    super('tcp', options.signal);
    this.#address = address;
    server.on('connection', (socket) => this.#accept(socket));
    server.on('error', (err) => this.socketError(err));
  }

  /** Binds (default 127.0.0.1, port 0) and resolves once listening. */
  static async listen(options: ListenOptions = {}): Promise<TcpListener> {
    const { server, address } = await bindTcpServer(options);
    return new TcpListener(server, address, options);
  }

  get address(): Address {
    return this.#address;
  }

  #accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const client = acceptedClient(socket, this.options.proxyMode);
    if (client === null) return;
    const session = new TcpSession('tcp', client, socket);
    this.sessionStarted(session);
    this.sessionUp(session);
  }

  protected stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
