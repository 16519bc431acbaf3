/**
 * Just enough of a TLS hello reader to check what the QUIC layer hands over (tests only;
 * the real ClientHello/ServerHello parsers live in src/handshake/).
 */

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;

/** The 32-byte random of a ClientHello or ServerHello message (type, length, body). */
export function helloRandom(message: Uint8Array): Uint8Array {
  return message.subarray(6, 38);
}

function serverHelloCipherAt(message: Uint8Array): number {
  return 39 + message[38]!;
}

/** The cipher_suite a ServerHello (or HelloRetryRequest) chose. */
export function serverHelloCipher(message: Uint8Array): number {
  return u16(message, serverHelloCipherAt(message));
}

function extensionsFrom(message: Uint8Array, at: number): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const end = at + 2 + u16(message, at);
  for (let p = at + 2; p + 4 <= end; ) {
    const type = u16(message, p);
    const length = u16(message, p + 2);
    out.set(type, message.subarray(p + 4, p + 4 + length));
    p += 4 + length;
  }
  return out;
}

export function clientHelloExtensions(message: Uint8Array): Map<number, Uint8Array> {
  let p = 38;
  p += 1 + message[p]!; // legacy_session_id
  p += 2 + u16(message, p); // cipher_suites
  p += 1 + message[p]!; // legacy_compression_methods
  return extensionsFrom(message, p);
}

export function serverHelloExtensions(message: Uint8Array): Map<number, Uint8Array> {
  return extensionsFrom(message, serverHelloCipherAt(message) + 3);
}

/** The server_name of a ClientHello. */
export function sni(message: Uint8Array): string | undefined {
  const ext = clientHelloExtensions(message).get(0);
  if (!ext) return undefined;
  return Buffer.from(ext.subarray(5, 5 + u16(ext, 3))).toString('ascii');
}

/** The groups a ClientHello sent key shares for. */
export function keyShareGroups(message: Uint8Array): number[] {
  const ext = clientHelloExtensions(message).get(51);
  if (!ext) return [];
  const groups: number[] = [];
  for (let p = 2; p + 4 <= ext.length; p += 4 + u16(ext, p + 2)) groups.push(u16(ext, p));
  return groups;
}

/** IANA code of the cipher names gtlsclient prints ("Negotiated cipher suite is ..."). */
export const GNUTLS_CIPHER_CODES: Record<string, number> = {
  'AES-128-GCM': 0x1301,
  'AES-256-GCM': 0x1302,
  'CHACHA20-POLY1305': 0x1303,
  'AES-128-CCM': 0x1304,
};
