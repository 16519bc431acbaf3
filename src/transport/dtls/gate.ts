/**
 * The door of a DTLS listener: what happens to a ClientHello from a peer that has no flow yet,
 * before any flow state is made (RFC 6347 4.2.1). Sans-IO: datagrams and a clock in, a verdict
 * out; the listener owns the socket.
 *
 * A whole ClientHello goes through the engine's stateless cookie check: without a valid cookie
 * the answer is a HelloVerifyRequest and nothing is kept, so a spoofed source costs no state.
 * A ClientHello in fragments (large hellos over a small MTU) cannot be checked statelessly
 * (OpenSSL's DTLSv1_listen refuses fragments), so its fragments are reassembled in a small,
 * capped table (bounded peers, bytes and age), and the whole hello is rebuilt as one record for
 * the cookie check, and for the session when the cookie is good.
 */
import { LruMap } from '../../collections/lru-map.js';
import { DtlsHandshakeReassembler } from '../../handshake/dtls/reassembler.js';
import type { DtlsContext } from './engine.js';

/** What to do with a first datagram. */
export const GateVerdict = {
  /** Drop it: not a ClientHello, a bad cookie on a non-hello, or a fragment kept for later. */
  DROP: 0,
  /** Send `gate.reply` (a HelloVerifyRequest) back; make nothing. */
  REPLY: 1,
  /** A ClientHello with a valid cookie: open the flow; it gets this datagram. */
  ADMIT: 2,
  /** As ADMIT, but feed the session `gate.rebuilt` first (the reassembled hello as one record). */
  ADMIT_REBUILT: 3,
} as const;
export type GateVerdict = (typeof GateVerdict)[keyof typeof GateVerdict];

export interface DtlsGateStats {
  /** HelloVerifyRequests sent (ClientHellos without a valid cookie). */
  cookieReplies: number;
  /** ClientHellos admitted with a valid cookie. */
  admitted: number;
  /** First datagrams dropped (not a ClientHello, malformed, or a fragment held). */
  dropped: number;
  /** ClientHellos that came in fragments and were reassembled. */
  reassembled: number;
  /** Fragment reassemblies given up (table full, too old, malformed). */
  reassemblyDropped: number;
}

export interface DtlsGateOptions {
  /** Peers whose fragmented hello is being reassembled at once; default 64. */
  maxPending?: number;
  /** Largest ClientHello reassembled; default 8192 bytes. */
  maxHelloLength?: number;
  /** A reassembly not complete after this many ms is forgotten; default 5000. */
  pendingTimeoutMs?: number;
}

interface Pending {
  readonly reassembler: DtlsHandshakeReassembler;
  readonly since: number;
}

const HANDSHAKE_OFFSET = 13;

export class DtlsHelloGate {
  readonly stats: DtlsGateStats = {
    cookieReplies: 0,
    admitted: 0,
    dropped: 0,
    reassembled: 0,
    reassemblyDropped: 0,
  };
  /** After REPLY: the HelloVerifyRequest to send. */
  reply: Uint8Array | null = null;
  /** After ADMIT_REBUILT: the reassembled ClientHello as one datagram. */
  rebuilt: Uint8Array | null = null;
  /** Reassemblies by peer, oldest first: `peek` keeps that order, which the expiry relies on. */
  readonly #pending: LruMap<string, Pending>;
  readonly #maxHelloLength: number;
  readonly #pendingTimeoutMs: number;

  constructor(
    private readonly context: DtlsContext,
    options: DtlsGateOptions = {},
  ) {
    this.#pending = new LruMap(Math.max(1, options.maxPending ?? 64), () => this.stats.reassemblyDropped++);
    this.#maxHelloLength = options.maxHelloLength ?? 8192;
    this.#pendingTimeoutMs = options.pendingTimeoutMs ?? 5000;
  }

  /** Peers with a fragmented hello in reassembly. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Judges a datagram that looks like a DTLS ClientHello (`detectDatagram` said 'dtls') from
   * `peer` ("address:port", the same string the session is made with), at time `nowMs`.
   */
  check(datagram: Uint8Array, peer: string, nowMs: number): GateVerdict {
    this.reply = null;
    this.rebuilt = null;
    const d = datagram;
    if (d.length < HANDSHAKE_OFFSET + 12) return this.#drop();
    const length = (d[14]! << 16) | (d[15]! << 8) | d[16]!;
    const fragmentOffset = (d[19]! << 16) | (d[20]! << 8) | d[21]!;
    const fragmentLength = (d[22]! << 16) | (d[23]! << 8) | d[24]!;
    if (fragmentOffset === 0 && fragmentLength === length)
      return this.#cookieCheck(d, peer, GateVerdict.ADMIT);
    return this.#fragment(d, peer, nowMs);
  }

  #cookieCheck(d: Uint8Array, peer: string, admit: GateVerdict): GateVerdict {
    const check = this.context.statelessCookieCheck(d, peer);
    if (check.ok) {
      this.stats.admitted++;
      return admit;
    }
    if (check.reply === null) return this.#drop();
    this.stats.cookieReplies++;
    this.reply = check.reply;
    return GateVerdict.REPLY;
  }

  #fragment(d: Uint8Array, peer: string, nowMs: number): GateVerdict {
    let entry = this.#pending.peek(peer);
    if (entry === undefined) {
      this.#expire(nowMs);
      entry = {
        reassembler: new DtlsHandshakeReassembler({
          maxMessageLength: this.#maxHelloLength,
          maxPendingMessages: 1,
          maxRangesPerMessage: 32,
        }),
        since: nowMs,
      };
      this.#pending.set(peer, entry);
    }
    const r = entry.reassembler.pushDatagram(d);
    if (r.status !== 'done') {
      this.#pending.delete(peer);
      this.stats.reassemblyDropped++;
      return this.#drop();
    }
    const hello = r.value.find((m) => m.msgType === 1);
    if (hello === undefined) return this.#drop();
    this.#pending.delete(peer);
    this.stats.reassembled++;
    const body = hello.body;
    const whole = new Uint8Array(HANDSHAKE_OFFSET + 12 + body.length);
    // the record header of the datagram that completed it (type, version, epoch, sequence)
    whole.set(d.subarray(0, 11), 0);
    const recordLength = 12 + body.length;
    whole[11] = recordLength >> 8;
    whole[12] = recordLength & 0xff;
    const h = HANDSHAKE_OFFSET;
    whole[h] = 1;
    whole[h + 1] = body.length >> 16;
    whole[h + 2] = (body.length >> 8) & 0xff;
    whole[h + 3] = body.length & 0xff;
    whole[h + 4] = hello.messageSeq >> 8;
    whole[h + 5] = hello.messageSeq & 0xff;
    // fragment offset 0 (bytes 6-8 stay zero), fragment length = length
    whole[h + 9] = whole[h + 1]!;
    whole[h + 10] = whole[h + 2]!;
    whole[h + 11] = whole[h + 3]!;
    whole.set(body, h + 12);
    const verdict = this.#cookieCheck(whole, peer, GateVerdict.ADMIT_REBUILT);
    if (verdict === GateVerdict.ADMIT_REBUILT) this.rebuilt = whole;
    return verdict;
  }

  #expire(nowMs: number): void {
    for (const [peer, entry] of this.#pending.entries()) {
      if (nowMs - entry.since <= this.#pendingTimeoutMs) break;
      this.#pending.delete(peer);
      this.stats.reassemblyDropped++;
    }
  }

  #drop(): GateVerdict {
    this.stats.dropped++;
    return GateVerdict.DROP;
  }
}
