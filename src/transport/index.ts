import { dtls } from './dtls/index.js';
import { quic } from './quic/index.js';
import { tcp } from './tcp/index.js';
import { tls } from './tls/index.js';
import type { Driver, Scheme } from './types.js';
import { udp } from './udp/index.js';

export * from './dtls/index.js';
export {
  ConnectAbortError,
  ConnectError,
  describeSocketError,
  ERR_CLIENT_HELLO_HOOK,
  SessionError,
} from './errors.js';
export { BaseListener } from './listener.js';
export { BoundedQueue } from './queue.js';
export {
  connectQuic,
  type QuicClientHelloHook,
  QuicListener,
  type QuicListenOptions,
  QuicSession,
  QuicStream,
  QuicStreamError,
  quic,
} from './quic/index.js';
export { BaseSession, FailedSession } from './session.js';
export { connectTcp, TcpListener, TcpSession, tcp } from './tcp/index.js';
export * from './types.js';
export { connectUdp, UdpFlowSession, UdpListener, UdpSocketSession, udp } from './udp/index.js';

/** The drivers that exist, by scheme. */
export const drivers: Partial<Record<Scheme, Driver>> = { tcp, tls, udp, dtls, quic };
