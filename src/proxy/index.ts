export { ModeError, type ProxyMode, parseMode, type ReverseMode } from './mode.js';
export {
  type ClassifyDatagram,
  classifyAsRaw,
  classifyByHandshake,
  type DatagramClass,
  DEFAULT_PENDING_LIMIT,
  UdpRelay,
  type UdpRelayOptions,
  type UdpRelayStats,
} from './udp-relay.js';
