import type { Client, Server } from '../../connection/index.js';
import type { Driver } from '../types.js';
import { connectTls, tlsServerModel } from './connect.js';
import { TlsListener } from './listener.js';
import type { TlsConnectOptions, TlsListenOptions } from './options.js';
import type { TlsSession } from './session.js';

export { type KeylogSink, keylogSink } from '../keylog.js';
export { connectTls, upgradeTls } from './connect.js';
export { describeBadClientHello, describeClientTlsError, describeServerTlsError } from './errors.js';
export { TlsListener } from './listener.js';
export { fillFromHandshake, peerCertificateChain } from './model.js';
export { type ObserveResult, ServerHelloObserver } from './observe.js';
export type {
  ClientHelloAnswer,
  ClientHelloCertificate,
  ClientHelloHook,
  ClientHelloRefusal,
  PassthroughTarget,
  TlsConnectOptions,
  TlsListenOptions,
} from './options.js';
export { ClientHelloPeek, type PeekResult } from './peek.js';
export { type TlsLayer, TlsSession } from './session.js';

/**
 * The TLS driver: a TLS layer (node:tls) over the TCP driver's sessions, the model filled from
 * the real handshake. `listen` takes TlsListenOptions (ClientHello hook, detection,
 * passthrough); `connect` verifies the server unless `rejectUnauthorized: false`.
 */
export interface TlsDriver extends Driver<TlsSession<Client>, TlsSession<Server>> {
  listen(options?: TlsListenOptions): Promise<TlsListener>;
  connect(options: TlsConnectOptions): Promise<TlsSession<Server>>;
}

/** The TLS driver: a TCP connection with the TLS layer over it (node:tls), the ClientHello read first for the model and the hook. */
export const tls: TlsDriver = {
  scheme: 'tls',
  listen: (options) => TlsListener.listen(options),
  connect: (options) => connectTls(options),
  serverModel: (options) => tlsServerModel(options),
};
