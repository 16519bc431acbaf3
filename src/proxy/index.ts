export type { GivenCertificate, ModelEvent, ProxyStats, Socks5Stats } from './context.js';
export * from './hooks.js';
export type { ImpairCounters } from './impair/impairer.js';
export type { ImpairStats } from './impair/index.js';
export { type DirectionFaults, type ImpairSpec, ImpairSpecError, parseImpairSpec } from './impair/spec.js';
export { type HostCandidates, HostFilter, type HostPatterns } from './layers/next-layer.js';
export type { StreamRecord } from './layers/tcp.js';
export {
  type ClassifyDatagram,
  classifyAsRaw,
  classifyByHandshake,
  type DatagramClass,
  DEFAULT_PENDING_LIMIT,
  UdpRelay,
  type UdpRelayOptions,
  type UdpRelayStats,
} from './layers/udp.js';
export {
  type FlowMode,
  hostPort,
  ModeError,
  type ProxyMode,
  parseMode,
  type ReverseMode,
  SOCKS5_DEFAULT_PORT,
  type Socks5Mode,
} from './modes.js';
export { Proxy, type ProxyListener, type ProxyOptions, type Socks5Options } from './proxy.js';
