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
    scheme: 'quic',
    listen: { host: '127.0.0.1' },
    connect: { rejectUnauthorized: false },
    payload: Buffer.from('hello over quic'),
  },
];
