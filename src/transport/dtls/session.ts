import { certificateFromDer } from '../../certs/parsed.js';
import { Client, now, type Server } from '../../connection/index.js';
import { parseDtlsClientHello } from '../../handshake/dtls/hello.js';
import { describeHookFailure, ERR_CLIENT_HELLO_HOOK } from '../errors.js';
import { BaseSession } from '../session.js';
import type { DatagramSession } from '../types.js';
import { type DatagramSink, type ReceiveQueueLimits, UdpChannel } from '../udp/channel.js';
import type { UdpSession } from '../udp/session.js';
import { type DtlsError, type DtlsSession, DtlsStatus } from './engine.js';
import { describeBadClientHello, describeClientDtlsError, describeServerDtlsError } from './errors.js';
import type { DtlsClientHelloAnswer, DtlsClientHelloHook, KeylogSink } from './options.js';

/** Datagrams kept (server) until the ClientHello is parsed; a hello needs one, fragments a few. */
const MAX_HELLO_DATAGRAMS = 32;

/** Status bits that need more than reading records (the established hot path needs none). */
const SLOW_PATH =
  DtlsStatus.OUTGOING |
  DtlsStatus.CLIENT_HELLO |
  DtlsStatus.TIMER |
  DtlsStatus.PEER_CLOSED |
  DtlsStatus.FAILED |
  DtlsStatus.KEYLOG;

export interface DtlsLayerOptions {
  /** The handshake must complete within this many ms (0: only the engine's own give-up). */
  handshakeTimeout: number;
  keylog: KeylogSink | null;
  /** Server: see DtlsClientHelloHook. */
  clientHello?: DtlsClientHelloHook;
  /** Bounds of the receive queue of application records. */
  receiveQueue?: ReceiveQueueLimits;
}

/**
 * A DTLS session: the DTLS layer over one UDP flow. Below, `flow` (a listener's flow, or a
 * connected socket we dialed) carries the ciphertext datagrams; the engine (sans-IO) turns them
 * into application records, which `datagrams` carries, one record per datagram to the user.
 * Both share the connection model: the flow owns addresses and the UDP state, this layer fills
 * the handshake fields from what the engine negotiated.
 *
 * One timer per session, armed from the engine's `timeout()` (and the handshake deadline).
 * `up` once the handshake completes; `close` when the flow is gone: after close_notify either
 * way, an idle timeout, an eviction, a failure (with `conn.error`) or `destroy()`.
 */
export class DtlsLayerSession<C extends Client | Server>
  extends BaseSession<C>
  implements DatagramSession<C>, DatagramSink
{
  readonly datagrams: UdpChannel;
  /** The engine's code of the failure that ended the session (ConnectError's `code`), or null. */
  failureCode: string | null = null;
  /** What failed underneath (the engine's error, the value a ClientHello hook threw), if known. */
  failureCause: unknown = undefined;
  readonly #flow: UdpSession<C>;
  readonly #engine: DtlsSession;
  readonly #options: DtlsLayerOptions;
  readonly #deadline: number;
  #timer: NodeJS.Timeout | undefined;
  #helloDatagrams: Uint8Array[] | null;
  #helloSeen = false;
  /** The record version of the client's ClientHello (what an alert to it carries). */
  #helloVersion = 0xfefd;
  #closing = false;
  /** Established: records written (or read) wait in the engine for one take at the end of the task. */
  #flushQueued = false;
  #readQueued = false;

  constructor(conn: C, flow: UdpSession<C>, engine: DtlsSession, options: DtlsLayerOptions) {
    super('dtls', conn);
    this.#flow = flow;
    this.#engine = engine;
    this.#options = options;
    this.datagrams = new UdpChannel(this, options.receiveQueue);
    this.#deadline = options.handshakeTimeout > 0 ? performance.now() + options.handshakeTimeout : 0;
    this.#helloDatagrams = engine.role === 'server' ? [] : null;
    conn.tls = true;
    flow.datagrams.on('datagram', this.#onCiphertext);
    flow.once('close', () => this.#onFlowClosed());
  }

  /** The UDP flow underneath (its counters; do not send on it). */
  get flow(): UdpSession<C> {
    return this.#flow;
  }

  /** The engine session (its drop counters and handshake details). */
  get engine(): DtlsSession {
    return this.#engine;
  }

  /** Client: sends the ClientHello. Server: feeds a rebuilt (reassembled) ClientHello. */
  begin(first?: Uint8Array): void {
    if (first !== undefined) this.#onCiphertext(first);
    else this.#after(this.#engine.start());
  }

  /** A ciphertext datagram from the flow. */
  readonly #onCiphertext = (datagram: Uint8Array): void => {
    if (this.closed) return;
    const hello = this.#helloDatagrams;
    if (hello !== null && hello.length < MAX_HELLO_DATAGRAMS) hello.push(datagram);
    const status = this.#engine.receive(datagram);
    if ((status & SLOW_PATH) === 0 && this.established) {
      // one readAll for a whole batch of datagrams (the native socket delivers a batch in one task)
      if (status & DtlsStatus.DATA && !this.#readQueued) {
        this.#readQueued = true;
        queueMicrotask(this.#readLater);
      }
      return;
    }
    this.#after(status);
  };

  readonly #readLater = (): void => {
    this.#readQueued = false;
    if (!this.closed) this.#readRecords();
  };

  readonly #flushLater = (): void => {
    this.#flushQueued = false;
    if (!this.closed) this.#flush();
  };

  /** Everything a status can ask for, in order: send, key log, hello, up, records, end, timer. */
  #after(status: number): void {
    if (this.closed) return;
    if (status & DtlsStatus.OUTGOING) this.#flush();
    if (status & DtlsStatus.KEYLOG) this.#keylog();
    if (status & DtlsStatus.FAILED) {
      this.#failed(this.#engine.error);
      return;
    }
    if (status & DtlsStatus.CLIENT_HELLO && !this.#helloSeen) {
      this.#onClientHello();
      // an async hook is running: the handshake deadline still holds
      if (!this.closed && this.#engine.clientHelloPending) this.#arm();
      return;
    }
    if (status & DtlsStatus.ESTABLISHED && !this.established) this.#established();
    if (status & DtlsStatus.DATA) this.#readRecords();
    if (status & DtlsStatus.PEER_CLOSED) {
      void this.close();
      return;
    }
    // re-arm when the engine's timer changed; during the handshake the deadline also needs one running
    if (status & DtlsStatus.TIMER || (!this.established && this.#timer === undefined)) this.#arm();
  }

  #flush(): void {
    const out = this.#engine.takeOutgoing();
    if (out === null) return;
    const flow = this.#flow;
    for (let i = 0; i < out.length; i++) flow.transmit(out[i] as Buffer);
  }

  #readRecords(): void {
    const records = this.#engine.readAll();
    if (records === null) return;
    const channel = this.datagrams;
    for (let i = 0; i < records.length; i++) channel.deliver(records[i] as Buffer);
  }

  #keylog(): void {
    const lines = this.#engine.takeKeylog();
    const sink = this.#options.keylog;
    if (lines === null || sink === null) return;
    for (const line of lines) sink(Buffer.from(`${line}\n`), this.conn);
  }

  /** Server: the handshake paused on the ClientHello. Fill the model, ask the hook, go on. */
  #onClientHello(): void {
    this.#helloSeen = true;
    const datagrams = this.#helloDatagrams ?? [];
    this.#helloDatagrams = null;
    const parsed = parseDtlsClientHello(datagrams);
    if (parsed.status !== 'done') {
      const reason = parsed.status === 'error' ? parsed.error.message : 'no complete ClientHello';
      this.#fail('ERR_DTLS_CLIENT_HELLO', describeBadClientHello(datagrams[0] ?? new Uint8Array(), reason));
      return;
    }
    const hello = parsed.value;
    this.#helloVersion = hello.legacyVersion === 0xfeff ? 0xfeff : 0xfefd;
    const client = this.conn as Client;
    client.sni = hello.sni;
    client.alpnOffers = [...hello.alpnProtocols];
    const hook = this.#options.clientHello;
    if (hook === undefined) {
      this.#resume(undefined);
      return;
    }
    let answer: DtlsClientHelloAnswer | Promise<DtlsClientHelloAnswer>;
    try {
      answer = hook(hello, client);
    } catch (err) {
      this.#hookFailed(err);
      return;
    }
    if (answer instanceof Promise) {
      answer.then(
        (a) => this.#resume(a),
        (err: unknown) => this.#hookFailed(err),
      );
    } else {
      this.#resume(answer);
    }
  }

  #hookFailed(err: unknown): void {
    this.#fail(ERR_CLIENT_HELLO_HOOK, describeHookFailure(err), err);
  }

  #resume(answer: DtlsClientHelloAnswer): void {
    if (this.closed) return;
    if (answer !== undefined && 'refuse' in answer) {
      this.#refuse(answer.refuse);
      return;
    }
    if (answer?.cert !== undefined) {
      const pem = (v: string | Buffer): string => (typeof v === 'string' ? v : v.toString('utf8'));
      try {
        this.#engine.setCertificate({ cert: pem(answer.cert), key: pem(answer.key) });
      } catch (err) {
        this.#fail(
          'ERR_DTLS_CERTIFICATE',
          `ClientHello hook: unusable certificate: ${(err as Error).message}`,
          err,
        );
        return;
      }
      if (answer.ALPNProtocols !== undefined && answer.ALPNProtocols.length > 0) {
        try {
          this.#engine.setALPNProtocols(answer.ALPNProtocols);
        } catch (err) {
          this.#fail('ERR_DTLS_ALPN', `ClientHello hook: unusable ALPN: ${(err as Error).message}`, err);
          return;
        }
      }
    }
    this.#after(this.#engine.resume());
  }

  /**
   * A hook refused the client: a fatal alert (epoch 0, in the clear, after the sequence numbers
   * our HelloVerifyRequest may have used) so the client stops retransmitting, then the failure.
   */
  #refuse(refusal: { code: string; message: string; alert?: number }): void {
    if (refusal.alert !== undefined) {
      const v = this.#helloVersion;
      this.#flow.transmit(
        Uint8Array.of(0x15, v >> 8, v & 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 2, refusal.alert & 0xff),
      );
    }
    this.#fail(refusal.code, refusal.message);
  }

  /** The handshake completed: the model from what the engine negotiated, then `up`. */
  #established(): void {
    const engine = this.#engine;
    const info = engine.handshake();
    const conn = this.conn;
    conn.tlsVersion = info.version;
    conn.cipher = info.cipher;
    conn.alpn = info.alpn ?? '';
    conn.certificateList = engine.peerCertificates().map((der) => certificateFromDer(der));
    if (conn instanceof Client) {
      const own = engine.localCertificate();
      conn.mitmcert = own === null ? null : certificateFromDer(own);
    }
    conn.timestampTlsSetup = now();
    this.markUp();
  }

  /** One timer: the engine's retransmission timeout, or the handshake deadline if sooner. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.closed) return;
    let ms = this.#engine.timeout();
    if (!this.established && this.#deadline > 0) {
      const left = Math.max(0, this.#deadline - performance.now());
      ms = ms < 0 ? left : Math.min(ms, left);
    }
    if (ms < 0) return;
    this.#timer = setTimeout(this.#onTimer, ms);
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.closed) return;
    if (!this.established && this.#deadline > 0 && performance.now() >= this.#deadline) {
      const message = `handshake timed out after ${this.#options.handshakeTimeout} ms`;
      const role = this.#engine.role;
      const text =
        role === 'client'
          ? `The remote server did not complete the DTLS handshake. (${message})`
          : `The client stopped answering during the DTLS handshake. If this happens consistently for ${(this.conn as Client).sni ?? 'the listener'}, the client may not trust the certificate. (${message})`;
      this.#fail('ETIMEDOUT', text);
      return;
    }
    this.#after(this.#engine.onTimeout());
    if (this.#timer === undefined) this.#arm(); // unless #after armed it already
  };

  #failed(error: DtlsError | null): void {
    if (error === null) {
      this.#fail('ERR_DTLS_HANDSHAKE', 'DTLS handshake failed');
      return;
    }
    const message =
      this.#engine.role === 'client'
        ? describeServerDtlsError(error)
        : describeClientDtlsError(error, (this.conn as Client).sni);
    this.#fail(error.code, message, error);
  }

  /** Ends the session with an error: alerts out, engine gone, flow closed (which closes us). */
  #fail(code: string, message: string, cause?: unknown): void {
    if (this.closed) return;
    if (this.failureCode === null) {
      this.failureCode = code;
      this.failureCause = cause;
    }
    this.conn.error ??= message;
    if (!this.#engine.destroyed) {
      this.#flush();
      this.#engine.destroy();
    }
    this.#flow.destroy(new Error(message));
  }

  /** The flow is gone (closed by us, idle, evicted, an ICMP error): so is the session. */
  #onFlowClosed(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flow.datagrams.off('datagram', this.#onCiphertext);
    if (!this.#engine.destroyed) this.#engine.destroy();
    this.datagrams.end();
    if (!this.established && this.conn.error === null) {
      this.failureCode ??= 'ERR_DTLS_CLOSED';
      this.conn.error = 'The UDP flow closed during the DTLS handshake';
    }
    this.markClosed();
  }

  /** Sends one application record (one datagram); dropped (and counted) before `up` or after close. */
  transmit(record: Uint8Array): void {
    if (!this.established || this.#closing || this.closed) {
      this.datagrams.dropped++;
      return;
    }
    this.datagrams.sent++;
    // the datagrams of every record written in this task go out in one take (one call, one copy)
    if (this.#engine.write(record) & DtlsStatus.OUTGOING && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushLater);
    }
  }

  /** Largest application record that fits one datagram of the handshake MTU with the negotiated cipher. */
  get maxPayload(): number {
    return this.#engine.maxPayload;
  }

  /** Sends close_notify (when established), then closes the flow; resolves once CLOSED. */
  close(): Promise<void> {
    if (!this.closed && !this.#closing) {
      this.#closing = true;
      clearTimeout(this.#timer);
      this.#timer = undefined;
      const engine = this.#engine;
      if (!engine.destroyed && !engine.failed) {
        if (engine.close() & DtlsStatus.OUTGOING) this.#flush();
        if (engine.status & DtlsStatus.KEYLOG) this.#keylog();
      }
      void this.#flow.close();
    }
    return this.whenClosed();
  }

  /** Closes at once, without close_notify; `error` (if given) is recorded in `conn.error`. */
  destroy(error?: Error): void {
    if (this.closed) return;
    this.#closing = true;
    if (error) this.conn.error ??= error.message;
    if (!this.#engine.destroyed) {
      // records already written leave first, as a datagram sent before a socket's close does
      if (this.#flushQueued) this.#flush();
      this.#engine.destroy();
    }
    this.#flow.destroy(error);
  }
}
