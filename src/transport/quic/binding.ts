/**
 * The quiche binding of `@matrixai/quic`, typed here with our own interfaces. Only the native
 * object is used, so the dependency is its platform package alone (`@matrixai/quic-linux-x64`,
 * which holds the `.node`): the main package's JS is never loaded, and its other platform
 * packages are not published at this version (so `npm ci` would fail on them). Methods whose
 * quiche result is `Done` return null.
 */
import { createRequire } from 'node:module';

/** An address as the binding takes and gives it (IP literals only: no name resolution). */
export interface HostPort {
  host: string;
  port: number;
}

export interface RecvInfo {
  /** Where the datagram came from. */
  from: HostPort;
  /** The local address it arrived on. */
  to: HostPort;
}

export interface SendInfo {
  from: HostPort;
  to: HostPort;
  /** quiche's pacing instant (an opaque external). */
  at: object;
}

export interface ConnectionError {
  isApp: boolean;
  errorCode: number;
  reason: Uint8Array;
}

export interface QuicheStats {
  recv: number;
  sent: number;
  lost: number;
  retrans: number;
  sentBytes: number;
  recvBytes: number;
  lostBytes: number;
  pathsCount: number;
  peerMaxIdleTimeout: number;
  peerActiveConnIdLimit: number;
  peerMaxDatagramFrameSize?: number;
}

export type PathEvent =
  | { type: 'New' | 'Validated' | 'Closed'; local: HostPort; peer: HostPort }
  | { type: 'ReusedSourceConnectionId'; seq: number; old: [HostPort, HostPort]; new: [HostPort, HostPort] }
  | { type: 'PeerMigrated'; old: HostPort; new: HostPort };

export interface QuicheConfig {
  verifyPeer(verify: boolean): void;
  grease(grease: boolean): void;
  logKeys(): void;
  loadVerifyLocationsFromFile(file: string): void;
  setApplicationProtos(protos: string[]): void;
  setMaxIdleTimeout(ms: number): void;
  setMaxRecvUdpPayloadSize(size: number): void;
  setMaxSendUdpPayloadSize(size: number): void;
  setInitialMaxData(v: number): void;
  setInitialMaxStreamDataBidiLocal(v: number): void;
  setInitialMaxStreamDataBidiRemote(v: number): void;
  setInitialMaxStreamDataUni(v: number): void;
  setInitialMaxStreamsBidi(v: number): void;
  setInitialMaxStreamsUni(v: number): void;
  setActiveConnectionIdLimit(v: number): void;
  setDisableActiveMigration(v: boolean): void;
  /** The stateless_reset_token transport parameter (a server's, for its first connection ID); null: none. */
  setStatelessResetToken(token: bigint | null): void;
  setCcAlgorithmName(name: string): void;
  enableDgram(enabled: boolean, recvQueueLen: number, sendQueueLen: number): void;
  setMaxStreamWindow(v: number): void;
  setMaxConnectionWindow(v: number): void;
  enablePacing(v: boolean): void;
}

export interface QuicheConfigConstructor {
  new (): QuicheConfig;
  /**
   * A config over a BoringSSL context built from memory: `ca`, `key` and `cert` are PEM
   * (`cert` may be a chain, leaf first; only the first key/cert pair is used).
   */
  withBoringSslCtx(
    verifyPeer: boolean,
    verifyAllowFail: boolean,
    ca?: Uint8Array | null,
    key?: Uint8Array[] | null,
    cert?: Uint8Array[] | null,
    sigalgs?: string | null,
  ): QuicheConfig;
}

export interface QuicheConnection {
  /** Creates (truncates) `path` and writes the NSS key log lines there. */
  setKeylog(path: string): void;
  /** Bytes processed; throws on a fatal error (the message is quiche's error name). */
  recv(data: Uint8Array, info: RecvInfo): number;
  send(out: Uint8Array): [number, SendInfo] | null;
  streamRecv(streamId: number, out: Uint8Array): [number, boolean] | null;
  streamSend(streamId: number, data: Uint8Array, fin: boolean): number | null;
  streamShutdown(streamId: number, direction: 0 | 1, err: number): undefined | null;
  streamCapacity(streamId: number): number;
  streamReadable(streamId: number): boolean;
  streamWritable(streamId: number, len: number): boolean;
  streamFinished(streamId: number): boolean;
  peerStreamsLeftBidi(): number;
  peerStreamsLeftUni(): number;
  readable(): Iterable<number>;
  writable(): Iterable<number>;
  maxSendUdpPayloadSize(): number;
  dgramRecv(out: Uint8Array): number | null;
  dgramSend(data: Uint8Array): undefined | null;
  dgramMaxWritableLen(): number | null;
  isDgramSendQueueFull(): boolean;
  /** Milliseconds until `onTimeout` is due, or null for none. */
  timeout(): number | null;
  onTimeout(): void;
  newSourceCid(scid: Uint8Array, resetToken: bigint, retireIfNeeded: boolean): number;
  activeSourceCids(): number;
  sourceCidsLeft(): number;
  retiredScidNext(): Uint8Array | null;
  pathEventNext(): PathEvent | null;
  close(app: boolean, err: number, reason: Uint8Array): undefined | null;
  applicationProto(): Uint8Array;
  serverName(): string | null;
  peerCertChain(): Uint8Array[] | null;
  sourceId(): Uint8Array;
  destinationId(): Uint8Array;
  isEstablished(): boolean;
  isReadable(): boolean;
  isInEarlyData(): boolean;
  isDraining(): boolean;
  isClosed(): boolean;
  isTimedOut(): boolean;
  peerError(): ConnectionError | null;
  localError(): ConnectionError | null;
  stats(): QuicheStats;
  traceId(): string;
}

export interface QuicheConnectionConstructor {
  connect(
    serverName: string | null,
    scid: Uint8Array,
    local: HostPort,
    remote: HostPort,
    config: QuicheConfig,
  ): QuicheConnection;
  accept(
    scid: Uint8Array,
    odcid: Uint8Array | null,
    local: HostPort,
    remote: HostPort,
    config: QuicheConfig,
  ): QuicheConnection;
}

export interface QuicheHeader {
  ty: number;
  version: number;
  dcid: Uint8Array;
  scid: Uint8Array;
  token?: Uint8Array;
  versions?: number[];
}

/** The native module's surface that wirelayer uses. */
export interface Quiche {
  readonly PROTOCOL_VERSION: number;
  readonly MAX_CONN_ID_LEN: number;
  readonly MIN_CLIENT_INITIAL_LEN: number;
  readonly MAX_DATAGRAM_SIZE: number;
  readonly MAX_UDP_PACKET_SIZE: number;
  /** Writes a Version Negotiation packet into `out`; returns its length. */
  negotiateVersion(scid: Uint8Array, dcid: Uint8Array, out: Uint8Array): number;
  /** Writes a Retry packet into `out`; returns its length. */
  retry(
    scid: Uint8Array,
    dcid: Uint8Array,
    newScid: Uint8Array,
    token: Uint8Array,
    version: number,
    out: Uint8Array,
  ): number;
  versionIsSupported(version: number): boolean;
  readonly Config: QuicheConfigConstructor;
  readonly Connection: QuicheConnectionConstructor;
  readonly Header: { fromSlice(data: Uint8Array, dcidLen: number): QuicheHeader };
}

/** Stream directions of `streamShutdown`. */
export const Shutdown = { READ: 0, WRITE: 1 } as const;

/** Where the platform package of `@matrixai/quic` keeps the `.node` for this machine. */
function platformPackages(): string[] {
  const { platform, arch } = process;
  if (platform === 'darwin') return [`@matrixai/quic-darwin-${arch}`, '@matrixai/quic-darwin-universal'];
  return [`@matrixai/quic-${platform}-${arch}`];
}

let loaded: Quiche | null = null;

/**
 * Loads the native binding once (synchronously, on first use, so importing wirelayer never
 * fails on a machine without it). Throws with every place it looked.
 */
export function quiche(): Quiche {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  for (const name of platformPackages()) {
    try {
      loaded = require(name) as Quiche;
      return loaded;
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
    }
  }
  throw new Error(`QUIC engine unavailable (quiche binding of @matrixai/quic): ${errors.join('; ')}`);
}
