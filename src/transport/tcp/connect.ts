import { connect as netConnect } from 'node:net';
import { ConnectionState, now, type Server } from '../../connection/index.js';
import { type Dial, dial, serverModel } from '../dial.js';
import { describeSocketError, errorCode } from '../errors.js';
import type { ConnectOptions, Scheme } from '../types.js';
import { TcpSession } from './session.js';

/** The Server model of a TCP connect (see `Driver.serverModel`); `tls` is left as the caller set it. */
export function tcpServerModel(options: Pick<ConnectOptions, 'host' | 'port' | 'conn'>): Server {
  return serverModel(options, { transportProtocol: 'tcp' });
}

/**
 * Dials TCP. The Server model gets `timestampStart` before dialing, then on success
 * `timestampTcpSetup`, `peername`, `sockname` and OPEN; on failure `error` with the OS message,
 * CLOSED and `timestampEnd`, and the promise rejects with a ConnectError carrying the model.
 */
export function connectTcp(options: ConnectOptions): Promise<TcpSession<Server>> {
  const { host, port } = options;
  const conn = tcpServerModel(options);
  return dial(
    conn,
    {
      signal: options.signal,
      connectTimeout: options.connectTimeout,
      timeoutMessage: (ms) => `Connection timed out (connect ETIMEDOUT ${host}:${port} after ${ms} ms)`,
    },
    (d) => openTcp(d, options, 'tcp'),
  );
}

/** The TCP step of a dial (TCP's, or the one beneath TLS): connected, the model's TCP fields set. */
export function openTcp(d: Dial, options: ConnectOptions, scheme: Scheme): Promise<TcpSession<Server>> {
  const { host, port } = options;
  const conn = d.conn;
  return new Promise((resolve, reject) => {
    const socket = netConnect({
      host,
      port,
      localAddress: options.localAddress,
      localPort: options.localPort,
      allowHalfOpen: options.allowHalfOpen ?? false,
      noDelay: options.noDelay ?? true,
    });
    d.onFail(() => socket.destroy());
    const onError = (err: Error): void =>
      reject(d.fail(errorCode(err, 'ECONNECT'), describeSocketError(err), err));
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      conn.timestampTcpSetup = now();
      conn.peername = [socket.remoteAddress ?? host, socket.remotePort ?? port];
      conn.sockname = [socket.localAddress ?? '', socket.localPort ?? 0];
      conn.state = ConnectionState.OPEN;
      resolve(new TcpSession(scheme, conn, socket));
    });
  });
}
