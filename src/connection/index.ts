export { formatAddress } from './address.js';
export {
  CLIENT_STATE_KEYS,
  Client,
  Connection,
  type ConnectionInit,
  now,
  SERVER_STATE_KEYS,
  type SerializedClient,
  type SerializedConnection,
  type SerializedServer,
  Server,
} from './connection.js';
export { ConnectionGuardError, ConnectionStateError, type StateErrorCode } from './errors.js';
export {
  type Address,
  ConnectionState,
  connectionStateName,
  type ServerSpec,
  TLS_VERSIONS,
  type TlsVersion,
  TRANSPORT_PROTOCOLS,
  type TransportProtocol,
} from './types.js';
