import type { Client, Server } from '../../connection/index.js';
import type { DatagramSession, Driver } from '../types.js';
import { connectDtls, dtlsServerModel } from './connect.js';
import { DtlsListener } from './listener.js';
import type { DtlsConnectOptions, DtlsListenOptions } from './options.js';
import type { DtlsLayerSession } from './session.js';

export { connectDtls, upgradeDtls } from './connect.js';
export { describeBadClientHello, describeClientDtlsError, describeServerDtlsError } from './errors.js';
export { type DtlsGateOptions, type DtlsGateStats, DtlsHelloGate, GateVerdict } from './gate.js';
export { DtlsListener, type DtlsListenerStats } from './listener.js';
export {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  type DtlsClientHelloAnswer,
  type DtlsClientHelloHook,
  type DtlsConnectOptions,
  type DtlsListenOptions,
  type DtlsTuning,
} from './options.js';
export { DtlsLayerSession } from './session.js';

/** The DTLS driver, typed: `listen` takes DtlsListenOptions and resolves a DtlsListener. */
export interface DtlsDriver extends Driver<DatagramSession<Client>, DtlsLayerSession<Server>> {
  listen(options?: DtlsListenOptions): Promise<DtlsListener>;
  connect(options: DtlsConnectOptions): Promise<DtlsLayerSession<Server>>;
}

/**
 * The DTLS driver: the DTLS layer (wirelayer's native engine, sans-IO) over UDP flows. A listener
 * is a UDP listener whose flows pass a stateless cookie check first (and, with `detect`, serves
 * raw UDP beside DTLS); a connect is a connected UDP socket with a handshake over it.
 */
export const dtls: DtlsDriver = {
  scheme: 'dtls',
  listen: (options) => DtlsListener.listen(options),
  connect: (options) => connectDtls(options),
  serverModel: (options) => dtlsServerModel(options),
};
