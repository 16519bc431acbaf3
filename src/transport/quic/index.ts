import type { Client, Server } from '../../connection/index.js';
import type { Driver } from '../types.js';
import { connectQuic, type QuicConnectOptions, quicServerModel } from './connect.js';
import { QuicListener, type QuicListenOptions } from './listener.js';
import type { QuicSession } from './session.js';

export { type Quiche, quiche } from './binding.js';
export { CID_LENGTH, type CidGenerator, RANDOM_CIDS } from './cid.js';
export type { QuicIdentity } from './config.js';
export { connectQuic, type QuicConnectOptions } from './connect.js';
export { QuicDatagramChannel } from './datagrams.js';
export { type EndpointStats, QuicEndpoint } from './endpoint.js';
export { describeQuicError, QuicErrorCode, transportErrorName } from './errors.js';
export * from './lb/index.js';
export {
  DEFAULT_LIMITS,
  type QuicClientHelloAnswer,
  type QuicClientHelloHook,
  type QuicHelloInfo,
  type QuicLimits,
  QuicListener,
  type QuicListenerStats,
  type QuicListenOptions,
} from './listener.js';
export { parseQuicSecrets, type QuicSecrets, QuicSecretsError, readQuicSecrets } from './secrets.js';
export { QuicSession } from './session.js';
export { QuicStream, QuicStreamError } from './stream.js';

/** The Driver interface, with QUIC's own options and types. */
export interface QuicDriver extends Driver<QuicSession<Client>, QuicSession<Server>> {
  listen(options?: QuicListenOptions): Promise<QuicListener>;
  connect(options: QuicConnectOptions): Promise<QuicSession<Server>>;
}

/**
 * The QUIC driver: quiche (the binding inside `@matrixai/quic`) driven sans-IO over
 * `node:dgram`, sessions routed by connection ID, the model filled from the wire.
 */
export const quic: QuicDriver = {
  scheme: 'quic',
  listen: (options) => QuicListener.listen(options),
  connect: (options) => connectQuic(options),
  serverModel: (options) => quicServerModel(options),
};
