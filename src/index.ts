/**
 * wirelayer's public surface, listed by hand: a user can read the whole API in this file.
 * Everything not exported here is internal and may change without notice.
 */

// Captures: pcap/pcapng in, connections out.
export { CaptureError } from './capture/errors.js';
export { readFlows } from './capture/flows.js';
// Certificates: the wirelayer CA and per-SNI leaves.
export { CertificateAuthority, type IssuedCertificate } from './certs/ca.js';
export { CertStore, type CertStoreOptions } from './certs/store.js';
// The connection model: mitmproxy's `mitmproxy.connection`.
export { formatAddress } from './connection/address.js';
export {
  Client,
  Connection,
  type ConnectionInit,
  type SerializedClient,
  type SerializedConnection,
  type SerializedServer,
  Server,
} from './connection/connection.js';
export { ConnectionGuardError, ConnectionStateError, type StateErrorCode } from './connection/errors.js';
export {
  type Address,
  ConnectionState,
  connectionStateName,
  type ServerSpec,
  TLS_VERSIONS,
  type TlsVersion,
  type TransportProtocol,
} from './connection/types.js';
// The handshake layer: sans-IO parsers over Uint8Array.
export { cipherSuiteName, ianaCipherName } from './handshake/ciphers.js';
export {
  type DatagramDetection,
  detectDatagram,
  detectStream,
  type StreamDetection,
} from './handshake/detect.js';
export {
  parseDtlsClientHello,
  parseDtlsServerHello,
  parseHelloVerifyRequest,
} from './handshake/dtls/hello.js';
export { DtlsHandshakeReassembler } from './handshake/dtls/reassembler.js';
export { type DtlsRecord, splitDtlsRecords } from './handshake/dtls/records.js';
export { HandshakeParseError, type ParseResult } from './handshake/errors.js';
export { type Ja3, ja3 } from './handshake/ja3.js';
export { type Ja4, ja4 } from './handshake/ja4.js';
export { decryptInitial } from './handshake/quic/initial-packet.js';
export { InitialTracker } from './handshake/quic/initial-tracker.js';
export { type ClientHello, parseClientHello } from './handshake/tls/client-hello.js';
export { parseClientHelloRecords, parseServerHelloRecords } from './handshake/tls/hello-records.js';
export { TlsRecordReader } from './handshake/tls/records.js';
export { parseServerHello, type ServerHello } from './handshake/tls/server-hello.js';
export { tlsVersionFromName, tlsVersionFromWire } from './handshake/versions.js';
export { inspectCapture } from './inspect/inspect.js';
export type { InspectRecord } from './inspect/record.js';
// The load generator (`wirelayer load`) and the server behaviours it runs against.
export type { Percentiles } from './load/histogram.js';
export { load } from './load/index.js';
export type { LoadRecord } from './load/report.js';
export { SERVE_BEHAVIOURS, type ServeBehaviour, serve } from './load/serve.js';
export { LOAD_MODES, type LoadMode, LoadOptionError, type LoadOptions } from './load/spec.js';
// The intercepting proxy: modes, addons and their hooks, the UDP relay.
export type { GivenCertificate, ModelEvent, ProxyStats, Socks5Stats } from './proxy/context.js';
export {
  type Addon,
  type ClientHelloData,
  ERR_PROXY_HOOK,
  Flow,
  FlowMessage,
  HOOK_NAMES,
  type HookArgument,
  HookError,
  type HookName,
  type ServerConnectionHookData,
  type Socks5AuthData,
  type TcpFlow,
  type TlsClientSettings,
  type TlsData,
  type TlsServerSettings,
  type UdpFlow,
} from './proxy/hooks.js';
export type { ImpairCounters } from './proxy/impair/impairer.js';
export type { ImpairStats } from './proxy/impair/index.js';
export {
  type DirectionFaults,
  type ImpairSpec,
  ImpairSpecError,
  parseImpairSpec,
} from './proxy/impair/spec.js';
export { HostFilter, type HostPatterns } from './proxy/layers/next-layer.js';
export type { StreamRecord } from './proxy/layers/tcp.js';
export { UdpRelay, type UdpRelayOptions, type UdpRelayStats } from './proxy/layers/udp.js';
export {
  type FlowMode,
  ModeError,
  type ProxyMode,
  parseMode,
  type ReverseMode,
  SOCKS5_DEFAULT_PORT,
  type Socks5Mode,
} from './proxy/modes.js';
export { Proxy, type ProxyListener, type ProxyOptions, type Socks5Options } from './proxy/proxy.js';
// The PROXY protocol v2 (haproxy's proxy-protocol.txt, 2.2): its header, and the datagram socket
// that accepts it from load balancers (a listener's `proxyProtocol`).
export { AddressSet } from './transport/datagram/address-set.js';
// Listeners and sessions of each driver, their options, counters and hooks.
// Datagram sockets under the UDP, DTLS and QUIC drivers: native (Linux) or node:dgram.
export {
  type DatagramAddress,
  type DatagramBackend,
  type DatagramHandler,
  type DatagramSocket,
  type DatagramSocketOptions,
  type DatagramSocketStats,
  datagramBackend,
  openDatagramSocket,
  type ReceiveInfo,
  type UnreachableHandler,
} from './transport/datagram/index.js';
export {
  encodeProxyHeader,
  hasProxyV2Signature,
  type ProxyAddresses,
  type ProxyCommand,
  type ProxyHeader,
  ProxyHeaderError,
  type ProxyHeaderErrorCode,
  type ProxyHeaderInit,
  type ProxyTlv,
  type ProxyTransport,
  parseProxyHeader,
} from './transport/datagram/proxy-v2.js';
export { DtlsError } from './transport/dtls/engine.js';
// The drivers: one interface, five transports.
export { type DtlsDriver, dtls } from './transport/dtls/index.js';
export { DtlsListener, type DtlsListenerStats } from './transport/dtls/listener.js';
export type {
  DtlsClientHelloAnswer,
  DtlsClientHelloHook,
  DtlsConnectOptions,
  DtlsListenOptions,
} from './transport/dtls/options.js';
export { DtlsLayerSession } from './transport/dtls/session.js';
export { ConnectAbortError, ConnectError, ERR_CLIENT_HELLO_HOOK, SessionError } from './transport/errors.js';
export { drivers } from './transport/index.js';
export { type CidGenerator, RANDOM_CIDS } from './transport/quic/cid.js';
export type { QuicConnectOptions } from './transport/quic/connect.js';
export { QuicErrorCode } from './transport/quic/errors.js';
export { type QuicDriver, quic } from './transport/quic/index.js';
export {
  decodeQuicLbServerId,
  encodeQuicLbCid,
  parseQuicLbConfig,
  type QuicLbCids,
  type QuicLbConfig,
  QuicLbConfigError,
  QuicLbDecoder,
  type QuicLbDecoderConfig,
  type QuicLbEncoding,
  type QuicLbRoutableConfig,
  type QuicLbUnroutableConfig,
  quicLbCids,
  quicLbConfigId,
} from './transport/quic/lb/index.js';
export {
  type QuicClientHelloAnswer,
  type QuicClientHelloHook,
  type QuicHelloInfo,
  type QuicLimits,
  QuicListener,
  type QuicListenerStats,
  type QuicListenOptions,
} from './transport/quic/listener.js';
export {
  parseQuicSecrets,
  type QuicSecrets,
  QuicSecretsError,
  readQuicSecrets,
} from './transport/quic/secrets.js';
export { QuicSession } from './transport/quic/session.js';
export { QuicStream, QuicStreamError } from './transport/quic/stream.js';
export { FailedSession } from './transport/session.js';
export { tcp } from './transport/tcp/index.js';
export { TcpListener } from './transport/tcp/listener.js';
export { TcpSession } from './transport/tcp/session.js';
export { type TlsDriver, tls } from './transport/tls/index.js';
export { TlsListener } from './transport/tls/listener.js';
export type {
  ClientHelloAnswer,
  ClientHelloCertificate,
  ClientHelloHook,
  ClientHelloRefusal,
  PassthroughTarget,
  TlsConnectOptions,
  TlsListenOptions,
} from './transport/tls/options.js';
export { TlsSession } from './transport/tls/session.js';
export type {
  AnySession,
  ConnectOptions,
  DatagramChannel,
  DatagramSession,
  Driver,
  Listener,
  ListenerStats,
  ListenOptions,
  Scheme,
  SecurityOptions,
  Session,
  StreamSession,
} from './transport/types.js';
export { SCHEMES } from './transport/types.js';
export { type UdpConnectOptions, UdpSocketSession } from './transport/udp/connect.js';
export { UdpFlowSession } from './transport/udp/flow.js';
export { udp } from './transport/udp/index.js';
export { UdpListener, type UdpListenerStats, type UdpListenOptions } from './transport/udp/listener.js';
export {
  type ProxyProtocolOptions,
  ProxyProtocolSocket,
  type ProxyProtocolStats,
  prefixProxyHeader,
  udpProxyHeader,
} from './transport/udp/proxy-protocol.js';
// Workers: a listener or a proxy served by N processes sharing its address (SO_REUSEPORT; QUIC
// steered by connection ID).
export {
  currentWorker,
  type ListenDriver,
  type ListenerWorker,
  listenWorkers,
  MAX_WORKERS,
  type ProxyWorker,
  proxyWorkers,
  resolveWorkerCount,
  type SharedListener,
  SteeringError,
  type SteeringSpec,
  steeredCids,
  steeringProgram,
  type WorkerCount,
  WorkerGroup,
  type WorkerInfo,
  type WorkerOptions,
  type WorkerState,
  WorkersError,
} from './workers/index.js';
