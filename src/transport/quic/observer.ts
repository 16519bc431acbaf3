/**
 * The seam to the handshake layer: follows a connection's Initial packets (both directions,
 * decrypted with the Initial keys anyone on the path can derive) and yields what quiche does
 * not report: the parsed ClientHello (SNI, ALPN offers) before `accept`, the cipher suite of
 * the ServerHello, and the QUIC version on the wire.
 */
import { cipherSuiteName } from '../../handshake/ciphers.js';
import { type InitialHandshake, InitialTracker, type QuicSender } from '../../handshake/quic/index.js';
import { type ClientHello, parseClientHello } from '../../handshake/tls/client-hello.js';
import { parseServerHello } from '../../handshake/tls/server-hello.js';

/** Bytes of a TLS handshake message header (type, 3-byte length). */
const HANDSHAKE_HEADER = 4;
/** Datagrams an observer looks at before it gives up (a handshake needs a handful). */
const MAX_OBSERVED = 64;

export class InitialObserver {
  readonly #tracker: InitialTracker;
  #observed = 0;
  #clientHello: ClientHello | null = null;
  #cipher: string | null = null;
  #version: number | undefined;
  /** The last parse problem, for diagnostics. */
  problem: string | null = null;

  /**
   * `originalDcid`: the client's first DCID when we are the client (we know it); a server
   * learns it from the first Initial it is fed.
   */
  constructor(originalDcid?: Uint8Array) {
    this.#tracker = new InitialTracker(originalDcid ? { originalDcid } : {});
  }

  /** True once the ServerHello has been seen: nothing more to learn. */
  get done(): boolean {
    return this.#cipher !== null || this.#observed >= MAX_OBSERVED;
  }

  /** The version of the first long header seen (the one on the wire). */
  get version(): number | undefined {
    return this.#version;
  }

  /** The parsed ClientHello, once all of it has arrived. */
  get clientHello(): ClientHello | null {
    return this.#clientHello;
  }

  /** The IANA name of the cipher suite the ServerHello chose (not a HelloRetryRequest's). */
  get cipher(): string | null {
    return this.#cipher;
  }

  /** Feeds a datagram; only long-header datagrams are looked at. Never throws. */
  observe(datagram: Uint8Array, sender: QuicSender): void {
    if (this.done || datagram.length < 5 || (datagram[0]! & 0x80) === 0) return;
    this.#observed++;
    if (this.#version === undefined) {
      const version =
        ((datagram[1]! << 24) | (datagram[2]! << 16) | (datagram[3]! << 8) | datagram[4]!) >>> 0;
      if (version !== 0) this.#version = version;
    }
    const result = this.#tracker.receive(datagram, sender);
    if (result.status === 'error') {
      this.problem = result.error.message;
      return;
    }
    if (result.status === 'done') this.#learn(result.value);
  }

  #learn(hs: InitialHandshake): void {
    if (this.#clientHello === null && hs.clientHello) {
      const parsed = parseClientHello(hs.clientHello.subarray(HANDSHAKE_HEADER));
      if (parsed.status === 'done') this.#clientHello = parsed.value;
      else if (parsed.status === 'error') this.problem = parsed.error.message;
    }
    if (this.#cipher === null && hs.serverHello) {
      const parsed = parseServerHello(hs.serverHello.subarray(HANDSHAKE_HEADER));
      if (parsed.status === 'done') this.#cipher = cipherSuiteName(parsed.value.cipherSuite);
      else if (parsed.status === 'error') this.problem = parsed.error.message;
    }
  }
}
