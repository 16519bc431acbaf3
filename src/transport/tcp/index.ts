import type { Client, Server } from '../../connection/index.js';
import type { Driver } from '../types.js';
import { connectTcp, tcpServerModel } from './connect.js';
import { TcpListener } from './listener.js';
import type { TcpSession } from './session.js';

export { connectTcp } from './connect.js';
export { TcpListener } from './listener.js';
export { TcpSession } from './session.js';

/** The TCP driver: `node:net` underneath, the model filled from the real socket. */
export const tcp: Driver<TcpSession<Client>, TcpSession<Server>> = {
  scheme: 'tcp',
  listen: (options) => TcpListener.listen(options),
  connect: (options) => connectTcp(options),
  serverModel: (options) => tcpServerModel(options),
};
