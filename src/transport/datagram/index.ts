export { DgramDatagramSocket, literalLookup } from './dgram-socket.js';
export { datagramAddonPath } from './loader.js';
export { NativeDatagramSocket, nativeDatagramAvailable } from './native-socket.js';
export { datagramBackend, openDatagramSocket } from './open.js';
export {
  type DatagramAddress,
  type DatagramBackend,
  type DatagramHandler,
  type DatagramSocket,
  type DatagramSocketOptions,
  type DatagramSocketStats,
  isWildcardAddress,
  type ReceiveInfo,
  systemError,
  type UnreachableHandler,
} from './socket.js';
export { TunnelSocket } from './tunnel.js';
