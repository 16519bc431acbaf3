/**
 * The PROXY protocol's version 2 header (haproxy's proxy-protocol.txt, section 2.2): what a load
 * balancer puts before the bytes it forwards to say who really sent them. Over UDP it leads every
 * datagram (family/transport `0x12` UDP over IPv4, `0x22` UDP over IPv6), as Envoy's UDP proxy
 * and its listener filter use it.
 *
 * Sans-IO: `ProxyHeaderReader.read` is the receive path's decoder (it never throws and builds
 * nothing but cached address names); `parseProxyHeader` gives the whole header as an object and
 * throws only `ProxyHeaderError`; `encodeProxyHeader` makes one.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ipv4Name, ipv6Name } from './address.js';

/** The 12 bytes every v2 header starts with (`hasProxyV2Signature` checks them). */
const SIGNATURE = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Signature, version/command, family/transport and the 16-bit length: the fixed part. */
export const PROXY_V2_FIXED_LENGTH = 16;
/** The address block of each family: two addresses and two ports (IPv4, IPv6), two paths (UNIX). */
const INET_BLOCK = 12;
const INET6_BLOCK = 36;
const UNIX_BLOCK = 216;
const UNIX_PATH = 108;

/** `LOCAL`: the balancer speaks for itself (a health check); `PROXY`: on behalf of the source. */
export type ProxyCommand = 'local' | 'proxy';

/** The family/transport byte's transports (DGRAM is UDP, for the INET families). */
export type ProxyTransport = 'stream' | 'dgram';

/**
 * The address block, one shape per family (byte 14's high nibble). The spec allows UNSPEC only
 * with an unspecified transport (0x00), and the others only with STREAM or DGRAM.
 */
export type ProxyAddresses =
  | { readonly family: 'unspec' }
  | {
      readonly family: 'inet' | 'inet6';
      readonly transport: ProxyTransport;
      /** An IP literal of the family (IPv6 in `inet_ntop`'s form when parsed). */
      readonly source: string;
      readonly sourcePort: number;
      readonly destination: string;
      readonly destinationPort: number;
    }
  | {
      readonly family: 'unix';
      readonly transport: ProxyTransport;
      /** The 108-byte `sun_path` fields as they are on the wire (given shorter, zero-padded). */
      readonly source: Uint8Array;
      readonly destination: Uint8Array;
    };

/** A type-length-value after the addresses (`PP2_TYPE_ALPN` 0x01, `PP2_TYPE_AUTHORITY` 0x02, ...). */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Uint8Array;
}

/** A parsed header. */
export interface ProxyHeader {
  readonly command: ProxyCommand;
  readonly addresses: ProxyAddresses;
  /** The TLVs in wire order (views into the parsed bytes). */
  readonly tlvs: readonly ProxyTlv[];
  /** Bytes the header takes: what follows is the payload. */
  readonly length: number;
}

/** What `encodeProxyHeader` takes. */
export interface ProxyHeaderInit {
  readonly command: ProxyCommand;
  readonly addresses: ProxyAddresses;
  readonly tlvs?: readonly ProxyTlv[];
}

/** Why a header was refused: a stable `code` per rule of section 2.2. */
export type ProxyHeaderErrorCode =
  /** Shorter than the 16 fixed bytes, or than the length it announces. */
  | 'ERR_PROXY_HEADER_TRUNCATED'
  /** Not the v2 signature. */
  | 'ERR_PROXY_HEADER_SIGNATURE'
  /** Version nibble not 2. */
  | 'ERR_PROXY_HEADER_VERSION'
  /** Command nibble neither LOCAL (0) nor PROXY (1). */
  | 'ERR_PROXY_HEADER_COMMAND'
  /** A family/transport byte the spec does not define (receivers must reject it). */
  | 'ERR_PROXY_HEADER_FAMILY'
  /** The announced length cannot hold the family's addresses. */
  | 'ERR_PROXY_HEADER_LENGTH'
  /** A TLV runs past the header's end. */
  | 'ERR_PROXY_HEADER_TLV'
  /** `encodeProxyHeader` was given something it cannot write. */
  | 'ERR_PROXY_HEADER_INVALID';

/** The one error the codec throws. `offset`: the byte where the header went wrong (-1 for encoding). */
export class ProxyHeaderError extends Error {
  override readonly name = 'ProxyHeaderError';
  constructor(
    readonly code: ProxyHeaderErrorCode,
    message: string,
    readonly offset: number,
  ) {
    super(offset >= 0 ? `${message} at offset ${offset}` : message);
  }
}

const MESSAGES: Readonly<Record<ProxyHeaderErrorCode, string>> = {
  ERR_PROXY_HEADER_TRUNCATED: 'PROXY v2 header truncated',
  ERR_PROXY_HEADER_SIGNATURE: 'not a PROXY v2 signature',
  ERR_PROXY_HEADER_VERSION: 'PROXY header version is not 2',
  ERR_PROXY_HEADER_COMMAND: 'PROXY v2 command is neither LOCAL nor PROXY',
  ERR_PROXY_HEADER_FAMILY: 'PROXY v2 family/transport byte is not one the spec defines',
  ERR_PROXY_HEADER_LENGTH: "PROXY v2 length cannot hold the family's addresses",
  ERR_PROXY_HEADER_TLV: 'PROXY v2 TLV overruns the header',
  ERR_PROXY_HEADER_INVALID: 'cannot encode this PROXY v2 header',
};

/** Whether `bytes` start with the v2 signature (12 compares, no allocation). */
export function hasProxyV2Signature(bytes: Uint8Array): boolean {
  if (bytes.length < 12) return false;
  const s = SIGNATURE;
  for (let i = 0; i < 12; i++) if (bytes[i] !== s[i]) return false;
  return true;
}

/** The block size of a valid family/transport byte, or -1 when the spec does not define the byte. */
function blockSize(familyTransport: number): number {
  switch (familyTransport) {
    case 0x00:
      return 0;
    case 0x11:
    case 0x12:
      return INET_BLOCK;
    case 0x21:
    case 0x22:
      return INET6_BLOCK;
    case 0x31:
    case 0x32:
      return UNIX_BLOCK;
    default:
      return -1;
  }
}

/**
 * The receive path's decoder: `read()` checks a header whole (signature, version, command,
 * family/transport, lengths, every TLV's bounds) and leaves what it found in its fields; it
 * never throws, and for INET/INET6 builds no string a recent datagram did not (the address
 * names come from the datagram socket's caches). One reader serves one socket: its fields are
 * the last header read.
 */
export class ProxyHeaderReader {
  /** 0 LOCAL, 1 PROXY. */
  command = 0;
  /** Byte 14 (`0x12` UDP over IPv4, `0x22` UDP over IPv6, ...). */
  familyTransport = 0;
  /** INET/INET6 only (else ''/0). */
  source = '';
  sourcePort = 0;
  destinationPort = 0;
  /** Bytes the header takes. */
  length = 0;
  /** Why the last `read()` failed (null after a success), and where. */
  error: ProxyHeaderErrorCode | null = null;
  errorOffset = 0;
  readonly #words = new Int32Array(4);
  /** The bytes last read (for `destination`, named only when asked: the receive path never does). */
  #bytes: Uint8Array | null = null;

  /** INET/INET6 only (else ''): the address the client sent to. */
  get destination(): string {
    const b = this.#bytes;
    if (b === null) return '';
    const f = PROXY_V2_FIXED_LENGTH;
    if (this.familyTransport >> 4 === 1) return ipv4Name(word(b, f + 4));
    if (this.familyTransport >> 4 !== 2) return '';
    const w = this.#words;
    for (let i = 0; i < 4; i++) w[i] = word(b, f + 16 + 4 * i);
    return ipv6Name(w, 0);
  }

  /** Decodes the header at the start of `bytes`: true, or false with `error` set. */
  read(bytes: Uint8Array): boolean {
    if (bytes.length < PROXY_V2_FIXED_LENGTH) {
      // a shorter buffer that is not even a signature's start (nothing at all included) has no header
      if (bytes.length === 0) return this.#fail('ERR_PROXY_HEADER_SIGNATURE', 0);
      for (let i = 0; i < bytes.length && i < 12; i++)
        if (bytes[i] !== SIGNATURE[i]) return this.#fail('ERR_PROXY_HEADER_SIGNATURE', i);
      return this.#fail('ERR_PROXY_HEADER_TRUNCATED', bytes.length);
    }
    for (let i = 0; i < 12; i++)
      if (bytes[i] !== SIGNATURE[i]) return this.#fail('ERR_PROXY_HEADER_SIGNATURE', i);
    const versionCommand = bytes[12]!;
    if (versionCommand >> 4 !== 2) return this.#fail('ERR_PROXY_HEADER_VERSION', 12);
    const command = versionCommand & 0x0f;
    if (command > 1) return this.#fail('ERR_PROXY_HEADER_COMMAND', 12);
    const familyTransport = bytes[13]!;
    const block = blockSize(familyTransport);
    if (block < 0) return this.#fail('ERR_PROXY_HEADER_FAMILY', 13);
    const announced = (bytes[14]! << 8) | bytes[15]!;
    if (announced < block) return this.#fail('ERR_PROXY_HEADER_LENGTH', 14);
    const end = PROXY_V2_FIXED_LENGTH + announced;
    if (end > bytes.length) return this.#fail('ERR_PROXY_HEADER_TRUNCATED', bytes.length);
    // TLVs: a type, a 16-bit length, the value, each wholly inside the header
    for (let at = PROXY_V2_FIXED_LENGTH + block; at < end; ) {
      if (at + 3 > end) return this.#fail('ERR_PROXY_HEADER_TLV', at);
      const next = at + 3 + ((bytes[at + 1]! << 8) | bytes[at + 2]!);
      if (next > end) return this.#fail('ERR_PROXY_HEADER_TLV', at);
      at = next;
    }
    this.command = command;
    this.familyTransport = familyTransport;
    this.length = end;
    this.error = null;
    this.#bytes = null;
    const f = PROXY_V2_FIXED_LENGTH;
    if (block === INET_BLOCK) {
      this.#bytes = bytes;
      this.source = ipv4Name(word(bytes, f));
      this.sourcePort = (bytes[f + 8]! << 8) | bytes[f + 9]!;
      this.destinationPort = (bytes[f + 10]! << 8) | bytes[f + 11]!;
    } else if (block === INET6_BLOCK) {
      this.#bytes = bytes;
      const w = this.#words;
      for (let i = 0; i < 4; i++) w[i] = word(bytes, f + 4 * i);
      this.source = ipv6Name(w, 0);
      this.sourcePort = (bytes[f + 32]! << 8) | bytes[f + 33]!;
      this.destinationPort = (bytes[f + 34]! << 8) | bytes[f + 35]!;
    } else {
      this.source = '';
      this.sourcePort = 0;
      this.destinationPort = 0;
    }
    return true;
  }

  #fail(code: ProxyHeaderErrorCode, offset: number): false {
    this.error = code;
    this.errorOffset = offset;
    return false;
  }
}

/** A big-endian 32-bit word as a signed integer (the form the address caches take). */
function word(b: Uint8Array, o: number): number {
  return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}

/**
 * Parses the v2 header at the start of `bytes` (a datagram: the payload follows it at
 * `header.length`). Throws only `ProxyHeaderError`.
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyHeader {
  const reader = new ProxyHeaderReader();
  if (!reader.read(bytes)) {
    const code = reader.error!;
    throw new ProxyHeaderError(code, MESSAGES[code], reader.errorOffset);
  }
  const ft = reader.familyTransport;
  const transport: ProxyTransport = (ft & 0x0f) === 1 ? 'stream' : 'dgram';
  const f = PROXY_V2_FIXED_LENGTH;
  let addresses: ProxyAddresses;
  switch (ft >> 4) {
    case 0:
      addresses = { family: 'unspec' };
      break;
    case 1:
    case 2:
      addresses = {
        family: ft >> 4 === 1 ? 'inet' : 'inet6',
        transport,
        source: reader.source,
        sourcePort: reader.sourcePort,
        destination: reader.destination,
        destinationPort: reader.destinationPort,
      };
      break;
    default:
      addresses = {
        family: 'unix',
        transport,
        source: bytes.subarray(f, f + UNIX_PATH),
        destination: bytes.subarray(f + UNIX_PATH, f + UNIX_BLOCK),
      };
  }
  const tlvs: ProxyTlv[] = [];
  for (let at = f + blockSize(ft); at < reader.length; ) {
    const end = at + 3 + ((bytes[at + 1]! << 8) | bytes[at + 2]!);
    tlvs.push({ type: bytes[at]!, value: bytes.subarray(at + 3, end) });
    at = end;
  }
  return { command: reader.command === 0 ? 'local' : 'proxy', addresses, tlvs, length: reader.length };
}

const invalid = (why: string): ProxyHeaderError =>
  new ProxyHeaderError('ERR_PROXY_HEADER_INVALID', `${MESSAGES.ERR_PROXY_HEADER_INVALID}: ${why}`, -1);

/** Writes an IPv4 literal's 4 bytes at `at`. */
function writeIpv4(text: string, out: Uint8Array, at: number): void {
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i]);
}

/** Writes an IPv6 literal's 16 bytes at `at` (a trailing dotted quad allowed; `isIPv6` checked it). */
function writeIpv6(text: string, out: Uint8Array, at: number): void {
  let groups = text;
  const lastColon = groups.lastIndexOf(':');
  const tail: number[] = [];
  if (groups.indexOf('.', lastColon) !== -1) {
    const [a, b, c, d] = groups
      .slice(lastColon + 1)
      .split('.')
      .map(Number) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    groups = groups.slice(0, lastColon + 1);
    // `x:1.2.3.4` leaves a separator to drop; `::1.2.3.4` leaves the gap, which stays
    if (!groups.endsWith('::')) groups = groups.slice(0, -1);
  }
  const split = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const gap = groups.indexOf('::');
  let all: number[];
  if (gap === -1) all = [...split(groups), ...tail];
  else {
    const left = split(groups.slice(0, gap));
    const right = [...split(groups.slice(gap + 2)), ...tail];
    all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  for (let i = 0; i < 8; i++) {
    out[at + 2 * i] = all[i]! >> 8;
    out[at + 2 * i + 1] = all[i]! & 0xff;
  }
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw invalid(`port ${port}`);
}

/** An address of the family, without an IPv6 zone (`%eth0`: the header has no room for it). */
function literal(text: string, family: 'inet' | 'inet6'): string {
  const bare = family === 'inet6' ? text.replace(/%.*$/, '') : text;
  if (family === 'inet' ? !isIPv4(bare) : !isIPv6(bare)) throw invalid(`${text} is not an ${family} address`);
  return bare;
}

/**
 * A v2 header (signature to last TLV). Throws `ProxyHeaderError` (`ERR_PROXY_HEADER_INVALID`)
 * for addresses not of their family, ports out of range, UNIX paths over 108 bytes, or more
 * than 65,535 bytes after the fixed part.
 */
export function encodeProxyHeader(init: ProxyHeaderInit): Buffer {
  const { addresses } = init;
  const tlvs = init.tlvs ?? [];
  let ft: number;
  let block: number;
  if (addresses.family === 'unspec') {
    ft = 0x00;
    block = 0;
  } else {
    const transport = addresses.transport === 'stream' ? 1 : 2;
    ft = (addresses.family === 'inet' ? 0x10 : addresses.family === 'inet6' ? 0x20 : 0x30) | transport;
    block = blockSize(ft);
  }
  let length = block;
  for (const tlv of tlvs) {
    if (!Number.isInteger(tlv.type) || tlv.type < 0 || tlv.type > 0xff) throw invalid(`TLV type ${tlv.type}`);
    if (tlv.value.length > 0xffff) throw invalid(`TLV of ${tlv.value.length} bytes`);
    length += 3 + tlv.value.length;
  }
  if (length > 0xffff) throw invalid(`${length} bytes after the fixed part`);
  const out = Buffer.alloc(PROXY_V2_FIXED_LENGTH + length);
  out.set(SIGNATURE, 0);
  out[12] = init.command === 'local' ? 0x20 : 0x21;
  out[13] = ft;
  out.writeUInt16BE(length, 14);
  const f = PROXY_V2_FIXED_LENGTH;
  if (addresses.family === 'inet' || addresses.family === 'inet6') {
    checkPort(addresses.sourcePort);
    checkPort(addresses.destinationPort);
    const source = literal(addresses.source, addresses.family);
    const destination = literal(addresses.destination, addresses.family);
    const size = addresses.family === 'inet' ? 4 : 16;
    const write = addresses.family === 'inet' ? writeIpv4 : writeIpv6;
    write(source, out, f);
    write(destination, out, f + size);
    out.writeUInt16BE(addresses.sourcePort, f + 2 * size);
    out.writeUInt16BE(addresses.destinationPort, f + 2 * size + 2);
  } else if (addresses.family === 'unix') {
    for (const path of [addresses.source, addresses.destination])
      if (path.length > UNIX_PATH) throw invalid(`UNIX path of ${path.length} bytes`);
    out.set(addresses.source, f);
    out.set(addresses.destination, f + UNIX_PATH);
  }
  let at = f + block;
  for (const tlv of tlvs) {
    out[at] = tlv.type;
    out.writeUInt16BE(tlv.value.length, at + 1);
    out.set(tlv.value, at + 3);
    at += 3 + tlv.value.length;
  }
  return out;
}
