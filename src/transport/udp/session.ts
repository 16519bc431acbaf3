import type { Client, Server } from '../../connection/index.js';
import { BaseSession } from '../session.js';
import type { DatagramSession } from '../types.js';
import { type DatagramSink, type ReceiveQueueLimits, UdpChannel } from './channel.js';

/**
 * A UDP session: a flow accepted by a listener (`UdpFlowSession`, a Client) or a connected
 * socket we dialed (`UdpSocketSession`, a Server). UDP has no setup and no close on the wire: a
 * session is up from the start and ends by `close()`, `destroy()`, idle timeout, eviction, or
 * (dialed sessions) an ICMP error.
 */
export abstract class UdpSession<C extends Client | Server>
  extends BaseSession<C>
  implements DatagramSession<C>, DatagramSink
{
  readonly datagrams: UdpChannel;

  constructor(conn: C, limits?: ReceiveQueueLimits) {
    super('udp', conn);
    this.datagrams = new UdpChannel(this, limits);
  }

  /** Sends one datagram to the peer (the channel's `send`). */
  abstract transmit(datagram: Uint8Array): void;

  /** Ends the model and the channel's iteration. */
  protected finish(error?: string | null): void {
    if (this.closed) return;
    this.datagrams.end();
    this.markClosed(error);
  }

  /** Marks the session up; UDP has no handshake, so this happens as soon as it exists. */
  protected up(): void {
    this.markUp();
  }
}
