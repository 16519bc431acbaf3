/**
 * Message channels of a load run, one per byte stream (TCP, TLS, each QUIC stream) or datagram
 * channel (UDP, DTLS, QUIC DATAGRAM frames). A channel sends what the run hands it and reports
 * what comes back to its sink; it owns no timer. The hot path (send, a reply) allocates nothing:
 * send times sit in typed-array rings, datagram buffers are reused from a ring.
 */
import type { Duplex } from 'node:stream';
import { errorCode } from '../transport/errors.js';
import type { DatagramChannel } from '../transport/types.js';
import { datagramTemplate, headerSeq, headerTime, streamMessage, writeHeader } from './message.js';
import { ERR_DUPLICATE_REPLY, ERR_LATE_REPLY, ERR_REPLY_SIZE, ERR_UNMATCHED_REPLY } from './report.js';
import { DATAGRAM_HEADER_BYTES, type LoadMode } from './spec.js';
import { REPLY_DUPLICATE, REPLY_LATE, ReplyTracker, TimeQueue } from './tracker.js';

/** Where a channel reports (the run, or one request of a handshake run). */
export interface ChannelSink {
  /** A message went out (`bytes` long). */
  sent(channel: LoadChannel, bytes: number): void;
  /** A reply (echo) or an answer (datagram receive) `latencyMs` after its send time. */
  answered(channel: LoadChannel, latencyMs: number, bytes: number): void;
  /** Messages came in from a stream source (no latency to measure). */
  received(channel: LoadChannel, messages: number, bytes: number): void;
  /** Datagrams given up as lost. */
  lost(channel: LoadChannel, n: number): void;
  /** The channel can take more (a stream drained). */
  writable(channel: LoadChannel): void;
  error(code: string): void;
}

/** What the run sees of a channel. */
export interface LoadChannel {
  /** Messages sent (or waiting to be) that have not been answered or lost. */
  readonly inFlight: number;
  /** Whether everything handed to it has reached the transport (nothing buffered in it). */
  readonly flushed: boolean;
  /** Sends (or queues, under backpressure) one message due at `time`. */
  send(time: number): void;
  /** Whether a send now would go out at once (not queue behind backpressure). */
  readonly ready: boolean;
  /** Batches the sends of one tick (a stream corks). */
  cork(): void;
  uncork(): void;
  /** Datagrams: counts those unanswered for too long as lost. */
  expire(now: number): void;
  /** The end: everything unanswered is lost (datagrams) or counted unanswered (streams); returns how many. */
  abandon(): number;
  /** Stops listening (the session is gone or the run is over). */
  detach(): void;
}

/** Messages over a byte stream, in order: the next `size` bytes back answer the oldest one. */
export class StreamLoadChannel implements LoadChannel {
  readonly #times = new TimeQueue();
  readonly #message: Buffer;
  #blocked = false;
  /** Messages taken but not yet written (backpressure). */
  #backlog = 0;
  /** Reply bytes short of a whole message. */
  #partial = 0;
  readonly #onData: (chunk: Buffer) => void;
  readonly #onDrain: () => void;
  readonly #onError: (err: Error) => void;

  /**
   * @param countErrors whether the stream's errors are this channel's to count (a QUIC stream);
   *   a TCP or TLS stream's are its session's, counted when it closes
   */
  constructor(
    private readonly sink: ChannelSink,
    private readonly stream: Duplex,
    private readonly mode: LoadMode,
    private readonly size: number,
    countErrors: boolean,
  ) {
    this.#message = streamMessage(size);
    // no Nagle: a message waits for no acknowledgement of the one before (TCP and TLS sockets)
    (stream as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    this.#onData = mode === 'echo' ? (chunk) => this.#reply(chunk) : (chunk) => this.#receive(chunk);
    this.#onDrain = () => this.#drain();
    this.#onError = countErrors ? (err) => sink.error(errorCode(err, 'ERR_STREAM')) : () => {};
    stream.on('data', this.#onData);
    stream.on('drain', this.#onDrain);
    stream.on('error', this.#onError);
  }

  /** Receiving from a stream source: a QUIC stream is seen by the server only once written to. */
  announce(): void {
    this.stream.write(this.#message.subarray(0, 1));
  }

  get inFlight(): number {
    return this.mode === 'echo' ? this.#times.length : this.#backlog;
  }

  get flushed(): boolean {
    return this.#backlog === 0 && this.stream.writableLength === 0;
  }

  get ready(): boolean {
    return !this.#blocked && this.#backlog === 0;
  }

  send(time: number): void {
    if (this.mode === 'echo') this.#times.push(time);
    if (this.#blocked || this.#backlog > 0) this.#backlog++;
    else this.#write();
  }

  cork(): void {
    this.stream.cork();
  }

  uncork(): void {
    this.stream.uncork();
  }

  expire(): void {}

  abandon(): number {
    const unanswered = this.mode === 'echo' ? this.#times.length : 0;
    this.#times.clear();
    this.#backlog = 0;
    return unanswered;
  }

  detach(): void {
    this.stream.off('data', this.#onData);
    this.stream.off('drain', this.#onDrain);
    // errors may still come while the session closes: keep a listener so none is unhandled
  }

  #write(): void {
    if (!this.stream.writable) return;
    if (!this.stream.write(this.#message)) this.#blocked = true;
    this.sink.sent(this, this.size);
  }

  #drain(): void {
    this.#blocked = false;
    while (this.#backlog > 0 && !this.#blocked) {
      this.#backlog--;
      this.#write();
    }
    if (!this.#blocked) this.sink.writable(this);
  }

  #reply(chunk: Buffer): void {
    let partial = this.#partial + chunk.length;
    const size = this.size;
    const times = this.#times;
    const now = performance.now();
    while (partial >= size && times.length > 0) {
      partial -= size;
      this.sink.answered(this, now - times.shift(), size);
    }
    // bytes beyond what we sent for: not ours to time
    this.#partial = times.length > 0 ? partial : 0;
  }

  #receive(chunk: Buffer): void {
    const partial = this.#partial + chunk.length;
    const messages = Math.floor(partial / this.size);
    this.#partial = partial - messages * this.size;
    if (messages > 0) this.sink.received(this, messages, messages * this.size);
  }
}

/** Datagrams sent at once: a ring of this many buffers (a send may still hold the last few). */
const DATAGRAM_RING = 1024;

/** A channel with a `dropped` counter (UDP's and QUIC's count sends they could not make). */
interface CountsDrops {
  dropped: number;
}

/** Messages as datagrams, each with a header (message.ts) matched against what comes back. */
export class DatagramLoadChannel implements LoadChannel {
  readonly #tracker: ReplyTracker | null;
  readonly #ring: Buffer[];
  readonly #wireSize: number;
  readonly #replySize: number;
  /** The size every answer should have: what we sent (echo), or what we asked for (receive). */
  readonly #answerSize: number;
  #seq = 0;
  readonly #onDatagram: (d: Uint8Array) => void;
  readonly #drops: CountsDrops | null;

  /**
   * @param capacity datagrams tracked in flight at most (beyond, the oldest is given up as lost)
   * @param queued datagrams the transport still holds (QUIC queues DATAGRAM frames until
   *   congestion control lets them go, and a close drops them)
   */
  constructor(
    private readonly sink: ChannelSink,
    private readonly channel: DatagramChannel,
    mode: LoadMode,
    size: number,
    capacity: number,
    timeoutMs: number,
    private readonly queued: () => number = () => 0,
  ) {
    // receiving: small requests, each answered by a datagram of `size` bytes
    this.#wireSize = mode === 'receive' ? DATAGRAM_HEADER_BYTES : size;
    this.#replySize = mode === 'receive' ? size : 0;
    this.#answerSize = size;
    this.#tracker = mode === 'send' ? null : new ReplyTracker(capacity, timeoutMs);
    const template = datagramTemplate(this.#wireSize);
    this.#ring = Array.from({ length: DATAGRAM_RING }, () => Buffer.from(template));
    this.#onDatagram = (d) => this.#answer(d);
    const counted = channel as DatagramChannel & Partial<CountsDrops>;
    this.#drops = typeof counted.dropped === 'number' ? (counted as CountsDrops) : null;
    if (this.#tracker !== null) channel.on('datagram', this.#onDatagram);
  }

  get inFlight(): number {
    return this.#tracker?.outstanding ?? 0;
  }

  get flushed(): boolean {
    return this.queued() === 0;
  }

  get ready(): boolean {
    return true;
  }

  send(time: number): void {
    const seq = this.#tracker !== null ? this.#tracker.next(time) : this.#seq++;
    const datagram = this.#ring[seq % DATAGRAM_RING]!;
    writeHeader(datagram, seq, this.#replySize, time);
    const drops = this.#drops;
    const droppedBefore = drops?.dropped ?? 0;
    try {
      this.channel.send(datagram);
    } catch (err) {
      // the session is closing, or QUIC refused a frame too large: it stays in flight until lost
      this.sink.error(errorCode(err, 'ERR_DATAGRAM_SEND'));
      return;
    }
    if (drops !== null && drops.dropped !== droppedBefore) {
      this.sink.error('ERR_DATAGRAM_DROPPED');
      return;
    }
    this.sink.sent(this, this.#wireSize);
  }

  cork(): void {}
  uncork(): void {}

  expire(now: number): void {
    if (this.#tracker === null) return;
    const lost = this.#tracker.expire(now);
    if (lost > 0) this.sink.lost(this, lost);
  }

  abandon(): number {
    if (this.#tracker === null) return 0;
    const lost = this.#tracker.expireAll();
    if (lost > 0) this.sink.lost(this, lost);
    return 0;
  }

  detach(): void {
    this.channel.off('datagram', this.#onDatagram);
  }

  #answer(d: Uint8Array): void {
    const tracker = this.#tracker!;
    const verdict = tracker.reply(headerSeq(d), headerTime(d), performance.now());
    if (verdict >= 0) {
      // an answer of another size is still an answer, but a peer that joins or cuts datagrams shows
      if (d.byteLength !== this.#answerSize) this.sink.error(ERR_REPLY_SIZE);
      this.sink.answered(this, verdict, d.byteLength);
    } else
      this.sink.error(
        verdict === REPLY_LATE
          ? ERR_LATE_REPLY
          : verdict === REPLY_DUPLICATE
            ? ERR_DUPLICATE_REPLY
            : ERR_UNMATCHED_REPLY,
      );
  }
}
