import type { Client } from '../../connection/index.js';
import type { ReceiveQueueLimits } from './channel.js';
import type { FlowEntry } from './flow-table.js';
import { UdpSession } from './session.js';

/** What a flow needs from the listener that owns the socket. */
export interface FlowOwner {
  /** Sends a datagram to the flow's peer through the listener's socket. */
  sendTo(datagram: Uint8Array, flow: UdpFlowSession): void;
  /** Takes the flow out of the table (it is closing). */
  release(flow: UdpFlowSession): void;
}

/**
 * One peer of a UDP listener: the datagrams from one remote address and port. Created on the
 * first datagram, with a Client model that is OPEN from the start; CLOSED (with `timestampEnd`)
 * on idle timeout, eviction, `close()` or the listener's close. An ordinary end (close, idle)
 * leaves `error` null; eviction and `destroy(error)` record why.
 */
export class UdpFlowSession extends UdpSession<Client> implements FlowEntry {
  lastSeen = 0;
  nextInBucket: FlowEntry | null = null;
  older: FlowEntry | null = null;
  newer: FlowEntry | null = null;

  constructor(
    private readonly owner: FlowOwner,
    conn: Client,
    readonly address: string,
    readonly port: number,
    limits?: ReceiveQueueLimits,
    /** The local address the flow's datagrams arrived on and leave from (null: the bound one). */
    readonly localAddress: string | null = null,
  ) {
    super(conn, limits);
    this.up();
  }

  transmit(datagram: Uint8Array): void {
    if (this.closed) {
      this.datagrams.dropped++;
      return;
    }
    this.datagrams.sent++;
    this.owner.sendTo(datagram, this);
  }

  /** Forgets the flow: a later datagram from the same peer starts a new one. */
  close(): Promise<void> {
    if (!this.closed) {
      this.owner.release(this);
      this.finish();
    }
    return this.whenClosed();
  }

  destroy(error?: Error): void {
    if (this.closed) return;
    if (error) this.conn.error ??= error.message;
    this.owner.release(this);
    this.finish();
  }
}
