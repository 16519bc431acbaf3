import type { Driver } from '../types.js';
import { connectUdp, type UdpSocketSession, udpServerModel } from './connect.js';
import type { UdpFlowSession } from './flow.js';
import { UdpListener } from './listener.js';

export {
  DEFAULT_QUEUE_BYTES,
  DEFAULT_QUEUE_DATAGRAMS,
  type ReceiveQueueLimits,
  UdpChannel,
} from './channel.js';
export { connectUdp, DEFAULT_PROBE_TIMEOUT_MS, type UdpConnectOptions, UdpSocketSession } from './connect.js';
export { UdpFlowSession } from './flow.js';
export { BUCKET_CAP, type FlowEntry, FlowTable, flowKey } from './flow-table.js';
export {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_LISTENER_RECV_BUFFER,
  DEFAULT_MAX_FLOWS,
  UdpListener,
  type UdpListenerStats,
  type UdpListenOptions,
} from './listener.js';
export { UdpSession } from './session.js';

/**
 * The UDP driver: a listener demultiplexes one `dgram` socket into flows (a Client each); a
 * connect is a connected `dgram` socket (a Server).
 */
export const udp: Driver<UdpFlowSession, UdpSocketSession> = {
  scheme: 'udp',
  listen: (options) => UdpListener.listen(options),
  connect: (options) => connectUdp(options),
  serverModel: (options) => udpServerModel(options),
};
