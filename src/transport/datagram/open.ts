import { DgramDatagramSocket } from './dgram-socket.js';
import { NativeDatagramSocket, nativeDatagramAvailable } from './native-socket.js';
import type { DatagramBackend, DatagramSocket, DatagramSocketOptions } from './socket.js';

/** The environment variable that picks the backend of every socket: `native`, `dgram` or `auto`. */
export const DATAGRAM_BACKEND_ENV = 'WIRELAYER_DATAGRAM';

/**
 * The backend a socket gets: `requested` if given, else `WIRELAYER_DATAGRAM`'s, else (`auto`)
 * native where the addon loads (Linux) and node:dgram elsewhere. A forced `native` where it
 * cannot load makes opening fail (ERR_DATAGRAM_NATIVE_UNAVAILABLE) rather than quietly test dgram.
 */
export function datagramBackend(requested?: DatagramBackend): DatagramBackend {
  if (requested !== undefined) return requested;
  const env = process.env[DATAGRAM_BACKEND_ENV];
  if (env === 'native' || env === 'dgram') return env;
  if (env !== undefined && env !== '' && env !== 'auto') {
    throw Object.assign(new Error(`${DATAGRAM_BACKEND_ENV} must be native, dgram or auto, not ${env}`), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
  }
  return nativeDatagramAvailable() ? 'native' : 'dgram';
}

/**
 * Opens a datagram socket: bound (and connected, with `connect`), on the backend
 * `datagramBackend(options.backend)` picks. Rejects with node:dgram's errors
 * (`bind EADDRINUSE 127.0.0.1:4433`, code, errno, syscall).
 */
export async function openDatagramSocket(options: DatagramSocketOptions): Promise<DatagramSocket> {
  return datagramBackend(options.backend) === 'native'
    ? NativeDatagramSocket.open(options)
    : DgramDatagramSocket.open(options);
}
