import { connect as netConnect } from 'node:net';
import { ConnectionState, now, Server } from '../../connection/index.js';
import { ConnectError, describeSocketError, errorCode } from '../errors.js';
import type { ConnectOptions } from '../types.js';
import { TcpSession } from './session.js';

/**
 * Dials TCP. The Server model gets `timestampStart` before dialing, then on success
 * `timestampTcpSetup`, `peername`, `sockname` and OPEN; on failure `error` with the OS message,
 * and the promise rejects with a ConnectError carrying the model.
 */
export function connectTcp(options: ConnectOptions): Promise<TcpSession<Server>> {
  const { host, port, signal, timeout } = options;
  const conn = options.conn ?? new Server({ address: [host, port] });
  conn.transportProtocol = 'tcp';
  conn.timestampStart = now();
  return new Promise((resolve, reject) => {
    const fail = (code: string, message: string, cause?: unknown): void => {
      conn.error = message;
      conn.state = ConnectionState.CLOSED;
      cleanup();
      socket.destroy();
      reject(new ConnectError(code, message, conn, { cause }));
    };
    if (signal?.aborted) {
      conn.error = 'Connect aborted';
      reject(new ConnectError('ABORT_ERR', conn.error, conn, { cause: signal.reason }));
      return;
    }
    const socket = netConnect({
      host,
      port,
      localAddress: options.localAddress,
      localPort: options.localPort,
      allowHalfOpen: options.allowHalfOpen ?? false,
    });
    const onError = (err: Error): void => fail(errorCode(err, 'ECONNECT'), describeSocketError(err), err);
    const onAbort = (): void => fail('ABORT_ERR', 'Connect aborted', signal?.reason);
    const timer =
      timeout === undefined
        ? undefined
        : setTimeout(
            () =>
              fail(
                'ETIMEDOUT',
                `Connection timed out (connect ETIMEDOUT ${host}:${port} after ${timeout} ms)`,
              ),
            timeout,
          );
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      cleanup();
      conn.timestampTcpSetup = now();
      conn.peername = [socket.remoteAddress ?? host, socket.remotePort ?? port];
      conn.sockname = [socket.localAddress ?? '', socket.localPort ?? 0];
      conn.state = ConnectionState.OPEN;
      const session = new TcpSession('tcp', conn, socket);
      if (signal) {
        const onLateAbort = (): void => session.destroy(new Error('Aborted'));
        signal.addEventListener('abort', onLateAbort, { once: true });
        session.once('close', () => signal.removeEventListener('abort', onLateAbort));
      }
      resolve(session);
    });
  });
}
