/**
 * The record `wirelayer inspect` prints per connection, and how it is filled from the hellos.
 */
import type { Endpoint } from '../capture/index.js';
import type { TlsVersion } from '../connection/types.js';
import {
  type ClientHello,
  cipherSuiteName,
  isGrease,
  type Ja4Transport,
  ja3,
  ja4,
  type ServerHello,
} from '../handshake/index.js';

/** What carried the handshake: TLS over TCP, DTLS over UDP, or QUIC. */
export type InspectProtocol = 'tls' | 'dtls' | 'quic';

/**
 * One connection seen in a capture. Keys are snake_case and in this order, as printed by
 * `wirelayer inspect --json` (README, Command line); `INSPECT_RECORD_KEYS` lists them.
 */
export interface InspectRecord {
  readonly protocol: InspectProtocol;
  /** The endpoint that sent the ClientHello. */
  readonly client: Endpoint;
  readonly server: Endpoint;
  /** First host_name of the ClientHello's server_name, or null. */
  readonly sni: string | null;
  /** The ClientHello's ALPN protocols, in wire order (empty when none, or no ClientHello was read). */
  readonly alpn_offers: readonly string[];
  /**
   * The ClientHello's cipher suites by IANA name, in wire order, GREASE values left out;
   * SCSVs kept (`TLS_EMPTY_RENEGOTIATION_INFO_SCSV`); an unassigned code as `0x` and 4 hex digits.
   */
  readonly offered_ciphers: readonly string[];
  /**
   * The version the ServerHello chose (supported_versions, else legacy_version); for QUIC the
   * QUIC version of the server's Initial (`QUICv1`, `QUICv2`). Null when no ServerHello was seen.
   */
  readonly tls_version: TlsVersion | null;
  /** The ServerHello's cipher suite (IANA name), or null. */
  readonly cipher: string | null;
  /**
   * The ALPN protocol the ServerHello selected. Only TLS/DTLS 1.2 and older carry it there; TLS
   * 1.3 and QUIC send it in the encrypted EncryptedExtensions, so it is null for them.
   */
  readonly alpn: string | null;
  /** JA3 (MD5 hex) of the ClientHello, or null. */
  readonly ja3: string | null;
  /** JA4 of the ClientHello (`t`, `d` or `q` prefix), or null. */
  readonly ja4: string | null;
}

/** The keys of an `InspectRecord`, in the order they are printed. */
export const INSPECT_RECORD_KEYS = [
  'protocol',
  'client',
  'server',
  'sni',
  'alpn_offers',
  'offered_ciphers',
  'tls_version',
  'cipher',
  'alpn',
  'ja3',
  'ja4',
] as const satisfies readonly (keyof InspectRecord)[];

/** A cipher suite's IANA name, or `0x` and its 4 hex digits when the code is unassigned. */
export function cipherLabel(code: number): string {
  return cipherSuiteName(code) ?? `0x${code.toString(16).padStart(4, '0')}`;
}

/** The fields of a record that come from the two hellos. */
export type HelloFields = Omit<InspectRecord, 'protocol' | 'client' | 'server'>;

/**
 * Fills the hello fields. `version` is what the ServerHello negotiated, already named (the
 * caller knows whether it is a TLS, DTLS or QUIC version); ignored when there is no ServerHello.
 */
export function helloFields(
  clientHello: ClientHello | null,
  serverHello: ServerHello | null,
  version: TlsVersion | null,
  transport: Ja4Transport,
): HelloFields {
  return {
    sni: clientHello?.sni ?? null,
    alpn_offers: clientHello ? [...clientHello.alpnProtocols] : [],
    offered_ciphers: clientHello ? clientHello.cipherSuites.filter((c) => !isGrease(c)).map(cipherLabel) : [],
    tls_version: serverHello ? version : null,
    cipher: serverHello ? cipherLabel(serverHello.cipherSuite) : null,
    alpn: serverHello?.alpn ?? null,
    ja3: clientHello ? ja3(clientHello).hash : null,
    ja4: clientHello ? ja4(clientHello, transport).ja4 : null,
  };
}

/** A connection's record, and what could not be read of its handshake. */
export interface InspectedConnection {
  readonly record: InspectRecord;
  /**
   * Why a field is missing although the bytes were there: a hello cut short by the end of the
   * capture or a lost segment, or one that does not parse. Empty when nothing went wrong.
   */
  readonly notes: readonly string[];
}
