import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { type Address, Client, ConnectionState } from '../../connection/index.js';
import { BaseListener } from '../listener.js';
import type { ListenOptions } from '../types.js';
import { TcpSession } from './session.js';

/** Accepts TCP connections; each becomes a TcpSession with an OPEN Client model. */
export class TcpListener extends BaseListener<TcpSession<Client>> {
  #address: Address;

  private constructor(
    private readonly server: NetServer,
    private readonly options: ListenOptions,
  ) {
    super('tcp', options.signal);
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new Error('TCP listener has no address');
    this.#address = [bound.address, bound.port];
    server.on('connection', (socket) => this.#accept(socket));
    server.on('error', (err) => this.emit('listenerError', err));
  }

  /** Binds (default 127.0.0.1, port 0) and resolves once listening. */
  static async listen(options: ListenOptions = {}): Promise<TcpListener> {
    options.signal?.throwIfAborted();
    const server = createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new TcpListener(server, options);
  }

  get address(): Address {
    return this.#address;
  }

  #accept(socket: Socket): void {
    const { remoteAddress, remotePort, localAddress, localPort } = socket;
    if (
      remoteAddress === undefined ||
      remotePort === undefined ||
      localAddress === undefined ||
      localPort === undefined
    ) {
      socket.destroy(); // reset before we saw it
      return;
    }
    if (this.closing) {
      socket.destroy();
      return;
    }
    const client = new Client({
      peername: [remoteAddress, remotePort],
      sockname: [localAddress, localPort],
      state: ConnectionState.OPEN,
      transportProtocol: 'tcp',
      proxyMode: this.options.proxyMode ?? 'regular',
    });
    const session = new TcpSession('tcp', client, socket);
    this.sessionStarted(session);
    this.sessionUp(session);
  }

  protected stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
