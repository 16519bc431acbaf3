import type { ConnectOptions, ListenOptions, Scheme } from '../transport/types.js';

/** One demo case: a listener and a client of a driver, on loopback. */
export interface DemoCase {
  scheme: Scheme;
  listen: ListenOptions;
  connect: Omit<ConnectOptions, 'host' | 'port'>;
  /** What the client sends (and the listener echoes). */
  payload: Uint8Array;
}

/** Every driver that exists adds itself here; `npm start` runs them all. */
export const DEMOS: DemoCase[] = [
  { scheme: 'tcp', listen: { host: '127.0.0.1' }, connect: {}, payload: Buffer.from('hello over tcp') },
  {
    scheme: 'tls',
    listen: { host: '127.0.0.1', ALPNProtocols: ['h2'] },
    connect: { servername: 'localhost', ALPNProtocols: ['h2'], rejectUnauthorized: false },
    payload: Buffer.from('hello over tls'),
  },
  // UDP has no close on the wire: the listener's flow ends by its idle timeout
  {
    scheme: 'udp',
    listen: { host: '127.0.0.1', idleTimeout: 200 },
    connect: {},
    payload: Buffer.from('hello over udp'),
  },
  // the listener makes a self-signed certificate for itself: the demo client does not verify it
  {
    scheme: 'dtls',
    listen: { host: '127.0.0.1', ALPNProtocols: ['wirelayer-demo'] },
    connect: { rejectUnauthorized: false, servername: 'localhost', ALPNProtocols: ['wirelayer-demo'] },
    payload: Buffer.from('hello over dtls'),
  },
  {
    scheme: 'quic',
    listen: { host: '127.0.0.1' },
    connect: { rejectUnauthorized: false },
    payload: Buffer.from('hello over quic'),
  },
];
