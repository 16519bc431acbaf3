import type { RemoteInfo } from 'node:dgram';
import { CertificateAuthority, CertStore } from '../../certs/index.js';
import type { Address, Client } from '../../connection/index.js';
import { detectDatagram } from '../../handshake/detect.js';
import { parseDtlsClientHello } from '../../handshake/dtls/hello.js';
import type { ClientHello } from '../../handshake/tls/client-hello.js';
import type { DatagramBackend, DatagramSocket } from '../datagram/index.js';
import { BaseListener } from '../listener.js';
import type { DatagramSession } from '../types.js';
import type { UdpFlowSession } from '../udp/flow.js';
import { UdpListener, type UdpListenerStats } from '../udp/listener.js';
import { DtlsContext } from './engine.js';
import { type DtlsGateStats, DtlsHelloGate, GateVerdict } from './gate.js';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  type DtlsListenOptions,
  engineContextOptions,
  type KeylogSink,
  keylogSink,
} from './options.js';
import { DtlsLayerSession } from './session.js';

/** A DTLS listener's counters: its UDP flows, and its door (cookie exchange, reassembly). */
export interface DtlsListenerStats extends UdpListenerStats, DtlsGateStats {
  /** Handshakes completed. */
  handshakes: number;
  /** Sessions that failed before they were up. */
  handshakeFailures: number;
  /** Raw UDP sessions (with `detect`). */
  rawFlows: number;
  /** Flows the `passthrough` option passed through, as raw UDP sessions. */
  passthroughFlows: number;
}

/** What the door decided for the flow about to open (the UDP listener opens it synchronously). */
type Admission =
  | { kind: 'dtls'; rebuilt: Uint8Array | null }
  | { kind: 'raw' }
  | { kind: 'passthrough'; hello: ClientHello };

/**
 * Accepts DTLS sessions on one UDP socket: the DTLS layer over a UDP listener's flows.
 *
 * A datagram from a peer without a flow is judged before any state is made for it: a ClientHello
 * without a valid cookie gets a HelloVerifyRequest from the listener's socket and nothing else
 * (a spoofed source costs no flow); with one, the flow opens (`start`), its Client model is
 * filled from the ClientHello while the handshake is paused (and the `clientHello` hook may
 * choose the certificate), and the session is yielded once established (`session`). With
 * `detect`, a flow whose first datagram is not a DTLS ClientHello is a raw UDP session instead.
 *
 * Flows keep the UDP listener's bounds (maxFlows, idle timeout, receive queues); a session
 * ends on close_notify, on its idle timeout, on eviction or on failure (`sessionError` before up).
 */
export class DtlsListener extends BaseListener<DatagramSession<Client>> {
  readonly #udp: UdpListener;
  readonly #context: DtlsContext;
  readonly #gate: DtlsHelloGate;
  readonly #options: DtlsListenOptions;
  readonly #keylog: KeylogSink | null;
  #admission: Admission | null = null;
  #handshakes = 0;
  #handshakeFailures = 0;
  #rawFlows = 0;
  #passthroughFlows = 0;

  private constructor(udp: UdpListener, context: DtlsContext, options: DtlsListenOptions) {
    super('dtls', options.signal);
    this.#udp = udp;
    this.#context = context;
    this.#gate = new DtlsHelloGate(context);
    this.#options = options;
    this.#keylog = keylogSink(options.keylog);
    udp.on('session', (flow: UdpFlowSession) => this.#onFlow(flow));
    // the socket's errors: counted by the UDP listener (stats.socketErrors), reported as ours
    udp.on('error', (err: Error) => this.emit('error', err));
  }

  /**
   * Binds (default 127.0.0.1, port 0) and resolves once bound. Without `cert` and `key` the
   * listener presents leaves of the wirelayer CA (`certs`/`confdir`): one for the SNI the client
   * sent, else one for its host. The CA is read (or made, the first time) here, not during a handshake.
   */
  static async listen(options: DtlsListenOptions = {}): Promise<DtlsListener> {
    options.signal?.throwIfAborted();
    let own: { cert: string; key: string } | undefined;
    if (options.cert === undefined || options.key === undefined) {
      // no certificate of its own: leaves from the wirelayer CA, for the host now and per SNI later
      const certs = options.certs ?? new CertStore(await CertificateAuthority.open(options.confdir));
      const leaf = (name: string): { cert: string; key: string } => {
        const issued = certs.get(name);
        return { cert: issued.certPem, key: issued.keyPem };
      };
      own = leaf(options.host === undefined || options.host === '127.0.0.1' ? 'localhost' : options.host);
      const hook = options.clientHello;
      options = {
        ...options,
        clientHello: async (hello, client) =>
          (hook ? await hook(hello, client) : undefined) ?? (hello.sni ? leaf(hello.sni) : undefined),
      };
    }
    const context = new DtlsContext(engineContextOptions('server', options, own));
    let listener: DtlsListener | null = null;
    let udp: UdpListener;
    try {
      udp = await UdpListener.listen({
        ...options,
        signal: undefined,
        admit: (datagram, rinfo, reply) =>
          listener === null ? false : listener.#admit(datagram, rinfo, reply),
      });
    } catch (err) {
      context.destroy();
      throw err;
    }
    listener = new DtlsListener(udp, context, options);
    return listener;
  }

  get address(): Address {
    return this.#udp.address;
  }

  /** The listening socket (see `UdpListener.socket`). */
  get socket(): DatagramSocket {
    return this.#udp.socket;
  }

  /** Which datagram socket the listener runs on (`native`, `dgram`, or a proxy's `tunnel`). */
  get datagramBackend(): DatagramBackend | 'tunnel' {
    return this.#udp.datagramBackend;
  }

  override get stats(): DtlsListenerStats {
    return {
      ...this.#udp.stats,
      sessionErrors: this.listenerStats().sessionErrors,
      ...this.#gate.stats,
      handshakes: this.#handshakes,
      handshakeFailures: this.#handshakeFailures,
      rawFlows: this.#rawFlows,
      passthroughFlows: this.#passthroughFlows,
    };
  }

  /** The door: runs before any flow state exists for the sender. */
  #admit(
    datagram: Buffer,
    rinfo: RemoteInfo,
    reply: (datagram: Uint8Array, to: RemoteInfo) => void,
  ): boolean {
    if (detectDatagram(datagram) !== 'dtls') {
      if (this.#options.detect !== true) {
        this.#gate.stats.dropped++;
        return false;
      }
      this.#admission = { kind: 'raw' };
      return true;
    }
    const passthrough = this.#options.passthrough;
    if (passthrough !== undefined) {
      // only a first hello (no cookie yet): one that went through our cookie exchange is ours
      const parsed = parseDtlsClientHello([datagram]);
      if (parsed.status === 'done' && parsed.value.cookie?.length === 0 && passthrough(parsed.value, rinfo)) {
        this.#admission = { kind: 'passthrough', hello: parsed.value };
        return true;
      }
    }
    const gate = this.#gate;
    const verdict = gate.check(datagram, `${rinfo.address}:${rinfo.port}`, performance.now());
    if (verdict === GateVerdict.REPLY) {
      if (gate.reply !== null) reply(gate.reply, rinfo);
      return false;
    }
    if (verdict === GateVerdict.DROP) return false;
    this.#admission = { kind: 'dtls', rebuilt: verdict === GateVerdict.ADMIT_REBUILT ? gate.rebuilt : null };
    return true;
  }

  /** A flow opened (its first datagram follows at once). */
  #onFlow(flow: UdpFlowSession): void {
    const admission = this.#admission ?? { kind: 'dtls', rebuilt: null };
    this.#admission = null;
    if (admission.kind === 'raw') {
      this.#rawFlows++;
      this.sessionStarted(flow);
      this.sessionUp(flow);
      return;
    }
    if (admission.kind === 'passthrough') {
      this.#passthroughFlows++;
      const client = flow.conn;
      client.tls = true;
      client.sni = admission.hello.sni;
      client.alpnOffers = [...admission.hello.alpnProtocols];
      this.sessionStarted(flow);
      this.emit('passthrough', flow, admission.hello);
      this.sessionUp(flow);
      return;
    }
    const options = this.#options;
    let engine: ReturnType<DtlsContext['createSession']>;
    try {
      engine = this.#context.createSession({ peer: `${flow.address}:${flow.port}` });
    } catch (err) {
      flow.destroy(err as Error);
      return;
    }
    const session = new DtlsLayerSession<Client>(flow.conn, flow, engine, {
      handshakeTimeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      keylog: this.#keylog,
      clientHello: options.clientHello,
      receiveQueue: options.receiveQueue,
    });
    session.once('up', () => {
      this.#handshakes++;
      this.sessionUp(session);
    });
    session.once('close', () => {
      if (session.established) return;
      this.#handshakeFailures++;
      session.conn.error ??= 'DTLS handshake failed';
      this.sessionFailed(
        session,
        session.failureCode ?? 'ERR_DTLS_HANDSHAKE',
        session.failureCause ?? session.engine.error ?? undefined,
      );
    });
    this.sessionStarted(session);
    if (admission.rebuilt !== null) session.begin(admission.rebuilt);
  }

  /** Closes the socket (the sessions have sent their close_notify by now: BaseListener.close). */
  protected async stopAccepting(): Promise<void> {
    await this.#udp.close();
    this.#context.destroy();
  }
}
