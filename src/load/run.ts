/**
 * A load run: sessions of one driver, messages handed to their channels on schedule (open
 * loop) or as replies free a window (closed loop), a record per interval and a summary.
 *
 * Phases: connect (every session dialed, each bounded by `connectTimeout`; skipped with
 * `handshakes`), send (until the duration or the count), drain (replies still in flight waited
 * for, at most `timeout`), close. Sessions that fail while sending are counted by code and, in a
 * run bounded by time, dialed again after a back-off.
 */
import { errorCode } from '../transport/errors.js';
import { drivers } from '../transport/index.js';
import type { QuicSession } from '../transport/quic/session.js';
import type { AnySession, Driver, Session } from '../transport/types.js';
import { type ChannelSink, DatagramLoadChannel, type LoadChannel, StreamLoadChannel } from './channels.js';
import { LoadCounters, type LoadRecord, makeRecord, type RecordShape, recordShape } from './report.js';
import { OpenLoopSchedule } from './schedule.js';
import type { LoadPlan } from './spec.js';
import { TimeQueue } from './tracker.js';

/** Sessions are dialed again after this long, doubling up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 1000;
/** Sessions get this long to close gracefully at the end before they are destroyed. */
const CLOSE_GRACE_MS = 2000;
/** Open loop: messages due this soon go out now (setTimeout's granularity is a millisecond). */
const LOOKAHEAD_MS = 1;
/** Sending without a rate: what one channel sends per event-loop turn before I/O gets a turn. */
const BURST_DATAGRAMS = 64;
const BURST_STREAM_BYTES = 1024 * 1024;
/** Datagrams tracked in flight per channel, at least and at most. */
const MIN_TRACKED = 64;
const MAX_TRACKED = 1 << 20;
/** Error codes of the generator's own making. */
export const ERR_SESSION_CLOSED = 'ERR_LOAD_SESSION_CLOSED';
export const ERR_NO_REPLY = 'ERR_LOAD_NO_REPLY';
export const ERR_BACKLOG = 'ERR_LOAD_BACKLOG';

/** The code of a session that ended while in use: its engine's, the OS's in its message, or ours. */
function closeCode(session: Session): string {
  const failure = (session as { failureCode?: unknown }).failureCode;
  if (typeof failure === 'string') return failure;
  const m = /\b(E[A-Z]{3,}|ERR_[A-Z0-9_]+)\b/.exec(session.conn.error ?? '');
  return m ? m[1]! : ERR_SESSION_CLOSED;
}

/** DATAGRAM frames quiche still holds for a session (its binding has the call; our type of it does not). */
function quicDatagramsQueued(session: QuicSession): () => number {
  const engine = session.engine as { dgramSendQueueLen?: () => number };
  return () => (session.closed ? 0 : (engine.dgramSendQueueLen?.() ?? 0));
}

/** Closes gracefully, or destroys after `ms`. */
async function closeWithin(session: Session, ms: number): Promise<void> {
  if (session.closed) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([session.close().catch(() => {}), late]);
  clearTimeout(timer);
  if (!session.closed) session.destroy();
}

/** One of `connections` sessions kept up for the run. */
interface Slot {
  session: AnySession | null;
  channels: LoadChannel[];
  retryMs: number;
  retryTimer: NodeJS.Timeout | null;
}

type Phase = 'connect' | 'send' | 'drain' | 'done';

/** Runs a plan; `run()` resolves to the summary. */
export class LoadRun implements ChannelSink {
  readonly #plan: LoadPlan;
  readonly #driver: Driver;
  readonly #shape: RecordShape;
  readonly #onInterval: ((record: LoadRecord) => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  /** Aborts the connects still running when the run ends. */
  readonly #stop = new AbortController();
  readonly #span = new LoadCounters();
  readonly #total = new LoadCounters();
  readonly #slots: Slot[] = [];
  /** Channels that are up, in dispatch order. */
  readonly #up: LoadChannel[] = [];
  #rr = 0;
  #phase: Phase = 'connect';
  #schedule: OpenLoopSchedule | null = null;
  /** Messages (closed loop) or requests (handshakes) started. */
  #started = 0;
  /** Messages received from a stream source, toward `count`. */
  #receivedTotal = 0;
  /** Handshake runs: requests in flight, and those due while the cap was full. */
  #inflight = 0;
  readonly #pending = new TimeQueue();
  #t0 = 0;
  #spanStart = 0;
  #stoppedAt = 0;
  #lastAnswerAt = 0;
  /** CPU use when the current interval began, and when the run began (connects included). */
  #cpu = process.cpuUsage();
  #cpuStart = process.cpuUsage();
  #runStart = 0;
  #tickTimer: NodeJS.Timeout | null = null;
  #pumpImmediate: NodeJS.Immediate | null = null;
  #intervalTimer: NodeJS.Timeout | null = null;
  #houseTimer: NodeJS.Timeout | null = null;
  #deadlineTimer: NodeJS.Timeout | null = null;
  #drainTimer: NodeJS.Timeout | null = null;
  /** Made when the run ends; what `run()` resolves to. */
  #summary!: LoadRecord;
  #finished!: () => void;
  readonly #done = new Promise<void>((resolve) => {
    this.#finished = resolve;
  });
  readonly #onAbort = (): void => this.#stopSending();

  constructor(plan: LoadPlan, onInterval?: (record: LoadRecord) => void, signal?: AbortSignal) {
    const driver = drivers[plan.scheme];
    if (!driver) throw new Error(`the ${plan.scheme} driver is not available`);
    this.#plan = plan;
    this.#driver = driver;
    this.#shape = recordShape(plan);
    this.#onInterval = onInterval;
    this.#signal = signal;
  }

  async run(): Promise<LoadRecord> {
    const plan = this.#plan;
    this.#runStart = performance.now();
    this.#cpuStart = process.cpuUsage();
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (!plan.handshakes) {
      for (let i = 0; i < plan.connections; i++)
        this.#slots.push({ session: null, channels: [], retryMs: RETRY_MIN_MS, retryTimer: null });
      await Promise.all(this.#slots.map((slot) => this.#open(slot)));
    }
    if (this.#phase === 'connect' && !this.#signal?.aborted) this.#startSending();
    else this.#finish();
    await this.#done;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    return this.#summary;
  }

  // ---- sessions ----

  #connectOptions() {
    const p = this.#plan;
    return {
      ...p.security,
      host: p.host,
      port: p.port,
      connectTimeout: p.connectTimeoutMs,
      signal: this.#stop.signal,
    };
  }

  /** Dials one kept-up session; on failure counts it and (runs bounded by time) dials again later. */
  async #open(slot: Slot): Promise<void> {
    const began = performance.now();
    let session: AnySession;
    try {
      session = await this.#driver.connect(this.#connectOptions());
    } catch (err) {
      if (this.#phase === 'done') return;
      this.error(errorCode(err, 'ERR_CONNECT'));
      this.#retry(slot);
      return;
    }
    if (this.#phase === 'done' || this.#phase === 'drain') {
      void closeWithin(session, CLOSE_GRACE_MS);
      return;
    }
    this.#handshake(performance.now() - began);
    slot.session = session;
    slot.retryMs = RETRY_MIN_MS;
    slot.channels = this.#channelsOf(session, this);
    for (const ch of slot.channels) this.#up.push(ch);
    session.once('close', () => this.#lostSession(slot, session));
    if (this.#phase === 'send') for (const ch of slot.channels) this.#fill(ch);
  }

  #lostSession(slot: Slot, session: AnySession): void {
    if (slot.session !== session) return;
    slot.session = null;
    for (const ch of slot.channels) {
      ch.detach();
      const unanswered = ch.abandon();
      if (unanswered > 0) this.error(ERR_NO_REPLY, unanswered);
      const at = this.#up.indexOf(ch);
      if (at >= 0) this.#up.splice(at, 1);
    }
    slot.channels = [];
    if (this.#phase === 'done') return;
    this.error(closeCode(session));
    this.#retry(slot);
    if (this.#phase === 'drain') this.#checkDrained();
    else this.#checkStranded();
  }

  /** A counted run (which never dials again) with no session left up cannot go on: it stops. */
  #checkStranded(): void {
    const p = this.#plan;
    if (this.#phase === 'send' && p.count !== null && !p.handshakes && this.#up.length === 0)
      this.#stopSending();
  }

  #retry(slot: Slot): void {
    // a counted run does not dial again: with nothing left up it would never end
    if (this.#plan.count !== null || this.#phase === 'drain' || this.#phase === 'done') return;
    slot.retryTimer = setTimeout(() => {
      slot.retryTimer = null;
      void this.#open(slot);
    }, slot.retryMs);
    slot.retryMs = Math.min(RETRY_MAX_MS, slot.retryMs * 2);
  }

  /** The message channels of a session that is up. */
  #channelsOf(session: AnySession, sink: ChannelSink): LoadChannel[] {
    const p = this.#plan;
    if (p.datagram) {
      if (!('datagrams' in session)) throw new Error(`${session.scheme} session without datagrams`);
      const queued = session.scheme === 'quic' ? quicDatagramsQueued(session as QuicSession) : undefined;
      return [
        new DatagramLoadChannel(
          sink,
          session.datagrams,
          p.mode,
          p.size,
          this.#tracked(),
          p.timeoutMs,
          queued,
        ),
      ];
    }
    if (!('stream' in session)) throw new Error(`${session.scheme} session without a stream`);
    if (session.scheme === 'quic') {
      const quic = session as QuicSession;
      const n = p.handshakes ? 1 : p.streams;
      return Array.from({ length: n }, () => {
        const ch = new StreamLoadChannel(sink, quic.openStream(), p.mode, p.size, true);
        if (p.mode === 'receive') ch.announce();
        return ch;
      });
    }
    return [new StreamLoadChannel(sink, session.stream, p.mode, p.size, false)];
  }

  /** Datagrams one channel tracks: what can be in flight over the timeout, twice over. */
  #tracked(): number {
    const p = this.#plan;
    const channels = p.handshakes ? 1 : p.connections;
    const inFlight = p.rate !== null ? (p.rate / channels) * (p.timeoutMs / 1000) : p.window;
    return Math.min(MAX_TRACKED, Math.max(MIN_TRACKED, Math.ceil(inFlight * 2)));
  }

  // ---- sending ----

  #startSending(): void {
    const p = this.#plan;
    this.#phase = 'send';
    this.#t0 = performance.now();
    this.#spanStart = this.#t0;
    this.#cpu = process.cpuUsage();
    // the deadline first: at the same instant it runs before the interval's tick
    if (p.durationMs !== null) this.#deadlineTimer = setTimeout(() => this.#stopSending(), p.durationMs);
    // while replies drain, the last interval waits for them: no sliver of a record after it
    this.#intervalTimer = setInterval(() => {
      if (this.#phase === 'send') this.#emitInterval();
    }, p.intervalMs);
    this.#houseTimer = setInterval(() => this.#housekeeping(), Math.max(5, Math.min(50, p.timeoutMs / 4)));
    if (p.rate !== null) {
      const limit = p.count ?? Math.ceil(((p.durationMs ?? 0) * p.rate) / 1000);
      this.#schedule = new OpenLoopSchedule(this.#t0, p.rate, limit);
      this.#tick();
    } else if (p.handshakes) {
      const cap = p.connections * p.window;
      for (let i = 0; i < cap && this.#canStart(); i++) this.#request(performance.now());
    } else {
      for (const ch of this.#up) this.#fill(ch);
    }
    this.#checkCounted();
    this.#checkStranded();
  }

  #canStart(): boolean {
    return this.#phase === 'send' && (this.#plan.count === null || this.#started < this.#plan.count);
  }

  /**
   * Open loop: every message due within the next LOOKAHEAD_MS goes out, then the timer is set
   * for the next one. Each is timed from its scheduled time when it goes out late (a stalled
   * server or generator is charged: no coordinated omission) and from its send when early, so
   * the timer's millisecond granularity neither shows in the latencies nor needs a busy loop.
   */
  readonly #tick = (): void => {
    this.#tickTimer = null;
    const schedule = this.#schedule!;
    if (this.#phase !== 'send') return;
    const now = performance.now();
    const horizon = now + LOOKAHEAD_MS;
    if (schedule.dueBy(horizon)) {
      const up = this.#up;
      for (let i = 0; i < up.length; i++) up[i]!.cork();
      while (schedule.dueBy(horizon)) {
        const time = schedule.take();
        this.#dispatch(Math.min(time, now));
      }
      for (let i = 0; i < up.length; i++) up[i]!.uncork();
    }
    if (schedule.done) {
      this.#stopSending();
      return;
    }
    const delay = schedule.delay(performance.now()) - LOOKAHEAD_MS;
    this.#tickTimer = setTimeout(this.#tick, Math.max(1, Math.floor(delay)));
  };

  /** One scheduled message: to the next channel that is up (none up: it is not sent). */
  #dispatch(time: number): void {
    if (this.#plan.handshakes) {
      if (this.#inflight < this.#plan.connections * this.#plan.window) this.#request(time);
      else this.#pending.push(time);
      return;
    }
    const up = this.#up;
    if (up.length === 0) return;
    if (this.#rr >= up.length) this.#rr = 0;
    up[this.#rr++]!.send(time);
  }

  /** Closed loop: tops a channel up to its window (echo, receive) or sends what it takes (send). */
  #fill(ch: LoadChannel): void {
    const p = this.#plan;
    if (p.rate !== null || this.#phase !== 'send') return;
    if (p.mode === 'send') {
      this.#pump();
      return;
    }
    if (p.mode === 'receive' && !p.datagram) return;
    const now = performance.now();
    while (ch.inFlight < p.window && this.#canStart()) {
      this.#started++;
      ch.send(now);
    }
    this.#checkCounted();
  }

  /** Sending without a rate: a burst per channel, then I/O gets a turn, then again. */
  readonly #pump = (): void => {
    this.#pumpImmediate = null;
    const p = this.#plan;
    if (this.#phase !== 'send') return;
    const budget = p.datagram ? BURST_DATAGRAMS : Math.max(1, Math.floor(BURST_STREAM_BYTES / p.size));
    let more = false;
    const now = performance.now();
    for (const ch of this.#up) {
      ch.cork();
      for (let i = 0; i < budget && ch.ready && this.#canStart(); i++) {
        this.#started++;
        ch.send(now);
      }
      ch.uncork();
      if (ch.ready) more = true;
    }
    this.#checkCounted();
    // a stream that pushed back resumes on its 'drain' (writable())
    if (more && this.#canStart()) this.#pumpImmediate ??= setImmediate(this.#pump);
  };

  /** A counted closed-loop run stops sending once every message has been started. */
  #checkCounted(): void {
    const p = this.#plan;
    if (this.#phase !== 'send' || p.count === null || p.rate !== null) return;
    const reached =
      p.mode === 'receive' && !p.datagram && !p.handshakes
        ? this.#receivedTotal >= p.count
        : this.#started >= p.count;
    if (reached) this.#stopSending();
  }

  // ---- handshake runs: a session per request ----

  #request(scheduled: number): void {
    this.#started++;
    this.#inflight++;
    void this.#oneRequest(scheduled).finally(() => {
      this.#inflight--;
      if (this.#pending.length > 0 && this.#phase === 'send') this.#request(this.#pending.shift());
      else if (this.#plan.rate === null && this.#canStart()) this.#request(performance.now());
      this.#checkCounted();
      if (this.#phase === 'drain') this.#checkDrained();
    });
  }

  async #oneRequest(scheduled: number): Promise<void> {
    const p = this.#plan;
    let session: AnySession;
    try {
      session = await this.#driver.connect(this.#connectOptions());
    } catch (err) {
      if (this.#phase !== 'done') this.error(errorCode(err, 'ERR_CONNECT'));
      return;
    }
    const up = performance.now();
    this.#handshake(up - scheduled);
    let finish!: () => void;
    const settled = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const sink = new OneRequest(this, p.mode, finish);
    const [ch] = this.#channelsOf(session, sink);
    const timer = setTimeout(() => {
      const unanswered = ch!.abandon();
      if (unanswered > 0) this.error(ERR_NO_REPLY, unanswered);
      finish();
    }, p.timeoutMs);
    const onClose = (): void => {
      this.error(closeCode(session));
      finish();
    };
    session.once('close', onClose);
    if (p.mode === 'receive' && !p.datagram) {
      // the source writes at once (QUIC: once the stream is announced, in #channelsOf)
    } else ch!.send(up);
    await settled;
    clearTimeout(timer);
    session.off('close', onClose);
    ch!.detach();
    await closeWithin(session, CLOSE_GRACE_MS);
  }

  // ---- the sink: what channels report ----

  sent(_ch: LoadChannel, bytes: number): void {
    const c = this.#span;
    c.sent++;
    if (this.#plan.mode === 'send') {
      c.messages++;
      c.bytes += bytes;
    }
  }

  answered(ch: LoadChannel, latencyMs: number, bytes: number): void {
    const c = this.#span;
    c.received++;
    c.messages++;
    c.bytes += bytes;
    c.latency.record(latencyMs);
    this.#lastAnswerAt = performance.now();
    if (this.#phase === 'drain') this.#checkDrained();
    else if (!this.#plan.handshakes) this.#fill(ch);
  }

  received(_ch: LoadChannel, messages: number, bytes: number): void {
    if (this.#phase !== 'send' && !this.#plan.handshakes) return;
    const count = this.#plan.count;
    let n = messages;
    if (count !== null && !this.#plan.handshakes) n = Math.min(n, count - this.#receivedTotal);
    if (n <= 0) return;
    this.#receivedTotal += n;
    const c = this.#span;
    c.received += n;
    c.messages += n;
    c.bytes += n === messages ? bytes : n * this.#plan.size;
    this.#lastAnswerAt = performance.now();
    this.#checkCounted();
  }

  lost(ch: LoadChannel, n: number): void {
    this.#span.lost += n;
    if (this.#phase === 'drain') this.#checkDrained();
    else if (!this.#plan.handshakes) this.#fill(ch);
  }

  writable(ch: LoadChannel): void {
    if (this.#phase === 'drain') this.#checkDrained();
    else if (this.#plan.rate === null && !this.#plan.handshakes) this.#fill(ch);
  }

  error(code: string, n = 1): void {
    this.#span.error(code, n);
  }

  #handshake(latencyMs: number): void {
    this.#span.handshakes++;
    this.#span.handshake.record(latencyMs);
  }

  // ---- the end ----

  #stopSending(): void {
    if (this.#phase === 'connect') {
      // aborted while dialing: the connects end now
      this.#stop.abort();
      return;
    }
    if (this.#phase !== 'send') return;
    this.#phase = 'drain';
    this.#stoppedAt = performance.now();
    this.#clearSendTimers();
    if (this.#pending.length > 0) {
      this.error(ERR_BACKLOG, this.#pending.length);
      this.#pending.clear();
    }
    // replies still on their way get the reply timeout (a handshake run: its requests' bounds)
    const p = this.#plan;
    const wait = p.handshakes ? p.connectTimeoutMs + p.timeoutMs + CLOSE_GRACE_MS : p.timeoutMs;
    this.#drainTimer = setTimeout(() => this.#finish(), wait);
    this.#checkDrained();
  }

  #clearSendTimers(): void {
    if (this.#tickTimer !== null) clearTimeout(this.#tickTimer);
    if (this.#pumpImmediate !== null) clearImmediate(this.#pumpImmediate);
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
    this.#tickTimer = this.#pumpImmediate = this.#deadlineTimer = null;
  }

  #checkDrained(): void {
    if (this.#phase !== 'drain') return;
    if (this.#plan.handshakes) {
      if (this.#inflight === 0) this.#finish();
      return;
    }
    for (const ch of this.#up) if (ch.inFlight > 0 || !ch.flushed) return;
    this.#finish();
  }

  #housekeeping(): void {
    const now = performance.now();
    for (const ch of this.#up) ch.expire(now);
    if (this.#phase === 'drain') this.#checkDrained();
  }

  #finish(): void {
    if (this.#phase === 'done') return;
    const endedWhileConnecting = this.#phase === 'connect';
    this.#phase = 'done';
    this.#stop.abort();
    this.#clearSendTimers();
    if (this.#drainTimer !== null) clearTimeout(this.#drainTimer);
    if (this.#intervalTimer !== null) clearInterval(this.#intervalTimer);
    if (this.#houseTimer !== null) clearInterval(this.#houseTimer);
    const now = performance.now();
    if (endedWhileConnecting) {
      this.#t0 = this.#spanStart = this.#stoppedAt = now;
    }
    for (const slot of this.#slots) {
      if (slot.retryTimer !== null) clearTimeout(slot.retryTimer);
      for (const ch of slot.channels) {
        ch.detach();
        const unanswered = ch.abandon();
        if (unanswered > 0) this.error(ERR_NO_REPLY, unanswered);
      }
    }
    const closing = this.#slots.map((slot) =>
      slot.session ? closeWithin(slot.session, CLOSE_GRACE_MS) : undefined,
    );
    const end = Math.max(this.#stoppedAt, this.#lastAnswerAt);
    // the last interval: whatever came in since the previous one
    const tail = this.#span;
    // a tail in which nothing happened (a wait for replies that never came) makes no record
    if (tail.messages + tail.sent + tail.received + tail.lost + tail.handshakes + tail.errors.size > 0)
      this.#emitInterval(now);
    else this.#span.addTo(this.#total);
    const cpu = process.cpuUsage(this.#cpuStart);
    const seconds = Math.max(0, end - this.#t0) / 1000;
    const wall = Math.max(1, now - this.#runStart) * 1000;
    this.#summary = makeRecord(
      'summary',
      this.#plan.scheme,
      this.#shape,
      this.#total,
      seconds,
      seconds,
      ((cpu.user + cpu.system) / wall) * 100,
    );
    void Promise.all(closing).then(() => this.#finished());
  }

  #emitInterval(now = performance.now()): void {
    const span = (now - this.#spanStart) / 1000;
    const cpu = process.cpuUsage(this.#cpu);
    this.#cpu = process.cpuUsage();
    const record = makeRecord(
      'interval',
      this.#plan.scheme,
      this.#shape,
      this.#span,
      (now - this.#t0) / 1000,
      span,
      span > 0 ? ((cpu.user + cpu.system) / (span * 1e6)) * 100 : 0,
    );
    this.#span.addTo(this.#total);
    this.#span.reset();
    this.#spanStart = now;
    this.#onInterval?.(record);
  }
}

/** The sink of one request of a handshake run: counts into the run, settles on its one message. */
class OneRequest implements ChannelSink {
  constructor(
    private readonly run: LoadRun,
    private readonly mode: LoadPlan['mode'],
    private readonly settle: () => void,
  ) {}

  sent(ch: LoadChannel, bytes: number): void {
    this.run.sent(ch, bytes);
    if (this.mode === 'send') this.settle();
  }

  answered(ch: LoadChannel, latencyMs: number, bytes: number): void {
    this.run.answered(ch, latencyMs, bytes);
    this.settle();
  }

  received(ch: LoadChannel, messages: number, bytes: number): void {
    this.run.received(ch, Math.min(1, messages), Math.min(bytes, bytes / Math.max(1, messages)));
    this.settle();
  }

  lost(ch: LoadChannel, n: number): void {
    this.run.lost(ch, n);
    this.settle();
  }

  writable(): void {}

  error(code: string): void {
    this.run.error(code);
  }
}
