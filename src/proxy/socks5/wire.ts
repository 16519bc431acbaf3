/**
 * SOCKS5's wire format (RFC 1928) and its username/password method (RFC 1929), sans-IO: parsers
 * over the bytes read so far (null: need more; a typed Socks5Error: bad input, with the reply
 * code the client gets for it) and builders of what we send. No sockets, no timers.
 */
import { isIP } from 'node:net';
import { compressIPv6 } from '../../connection/address.js';

/** The protocol version every SOCKS5 message but RFC 1929's starts with. */
export const SOCKS_VERSION = 5;
/** RFC 1929's own version byte. */
export const USERPASS_VERSION = 1;

/** Authentication methods (RFC 1928 section 3). */
export const AuthMethod = {
  NONE: 0x00,
  GSSAPI: 0x01,
  USERPASS: 0x02,
  NO_ACCEPTABLE: 0xff,
} as const;

/** Request commands (section 4). */
export const Command = { CONNECT: 1, BIND: 2, UDP_ASSOCIATE: 3 } as const;
export type Command = (typeof Command)[keyof typeof Command];

/** Address types (section 5). */
export const AddressType = { IPV4: 1, DOMAIN: 3, IPV6: 4 } as const;

/** Reply codes (section 6). */
export const Reply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;
export type Reply = (typeof Reply)[keyof typeof Reply];

/** Stable codes of what a parser refuses. */
export type Socks5ErrorCode =
  | 'ERR_SOCKS5_VERSION'
  | 'ERR_SOCKS5_METHODS'
  | 'ERR_SOCKS5_AUTH_FORMAT'
  | 'ERR_SOCKS5_COMMAND'
  | 'ERR_SOCKS5_ADDRESS_TYPE'
  | 'ERR_SOCKS5_HOST_NAME'
  | 'ERR_SOCKS5_DATAGRAM';

/** Bad SOCKS5 input: `code` says what, `reply` is the code a request gets for it (null: no reply fits). */
export class Socks5Error extends Error {
  override readonly name = 'Socks5Error';
  constructor(
    readonly code: Socks5ErrorCode,
    message: string,
    readonly reply: Reply | null,
  ) {
    super(message);
  }
}

/** A destination as a request or a datagram header names it. */
export interface Socks5Address {
  /** An IP literal, or the domain name as sent (ATYP 3). */
  host: string;
  port: number;
  /** Whether `host` is a name to resolve (ATYP 3). */
  domain: boolean;
}

/** A parsed message and how many bytes it took. */
export interface Parsed<T> {
  value: T;
  length: number;
}

/** The client's greeting: the methods it offers. */
export interface Greeting {
  methods: readonly number[];
}

/** RFC 1929's credentials. */
export interface Credentials {
  username: string;
  password: string;
}

/** A request: the command and its address (DST.ADDR, DST.PORT). */
export interface Request {
  /** The command byte as sent (CONNECT, BIND, UDP ASSOCIATE, or anything else). */
  command: number;
  address: Socks5Address;
}

/** A UDP datagram's header (section 7) and where its data starts. */
export interface DatagramHeader {
  frag: number;
  address: Socks5Address;
  /** Bytes of header: the data is `datagram.subarray(headerLength)`. */
  headerLength: number;
}

/** The longest host name DNS allows (RFC 1035: 253 characters without the root's dot). */
const MAX_HOST_NAME = 253;
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Whether a name can be resolved as a host name: at most 253 characters, labels of 1..63 letters, digits, `-`, `_`. */
export function isHostName(name: string): boolean {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length === 0 || bare.length > MAX_HOST_NAME) return false;
  return bare.split('.').every((label) => LABEL.test(label));
}

/** `VER NMETHODS METHODS...`: null until whole. */
export function parseGreeting(buf: Uint8Array): Parsed<Greeting> | null {
  if (buf.length < 1) return null;
  if (buf[0] !== SOCKS_VERSION)
    throw new Socks5Error('ERR_SOCKS5_VERSION', `Not SOCKS5: version byte ${buf[0]}`, null);
  if (buf.length < 2) return null;
  const n = buf[1]!;
  if (n === 0) throw new Socks5Error('ERR_SOCKS5_METHODS', 'The greeting offers no method', null);
  if (buf.length < 2 + n) return null;
  return { value: { methods: [...buf.subarray(2, 2 + n)] }, length: 2 + n };
}

/** RFC 1929's `VER ULEN UNAME PLEN PASSWD` (VER 1, lengths 1..255): null until whole. */
export function parseCredentials(buf: Uint8Array): Parsed<Credentials> | null {
  if (buf.length < 1) return null;
  if (buf[0] !== USERPASS_VERSION)
    throw new Socks5Error(
      'ERR_SOCKS5_AUTH_FORMAT',
      `Not a username/password request: version byte ${buf[0]}`,
      null,
    );
  if (buf.length < 2) return null;
  const ulen = buf[1]!;
  if (ulen === 0) throw new Socks5Error('ERR_SOCKS5_AUTH_FORMAT', 'Empty username', null);
  if (buf.length < 3 + ulen) return null;
  const plen = buf[2 + ulen]!;
  if (plen === 0) throw new Socks5Error('ERR_SOCKS5_AUTH_FORMAT', 'Empty password', null);
  const end = 3 + ulen + plen;
  if (buf.length < end) return null;
  const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  return {
    value: { username: text(buf.subarray(2, 2 + ulen)), password: text(buf.subarray(3 + ulen, end)) },
    length: end,
  };
}

/**
 * An address at `offset` (`ATYP DST.ADDR DST.PORT`): null when the bytes end first. ATYP outside
 * 1/3/4 and names that are no host name (empty, too long, other characters) are errors.
 */
function parseAddress(buf: Uint8Array, offset: number): Parsed<Socks5Address> | null {
  if (buf.length < offset + 1) return null;
  const atyp = buf[offset]!;
  let host: string;
  let end: number;
  if (atyp === AddressType.IPV4) {
    end = offset + 1 + 4;
    if (buf.length < end + 2) return null;
    host = `${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}.${buf[offset + 4]}`;
  } else if (atyp === AddressType.IPV6) {
    end = offset + 1 + 16;
    if (buf.length < end + 2) return null;
    host = ipv6Text(buf, offset + 1);
  } else if (atyp === AddressType.DOMAIN) {
    if (buf.length < offset + 2) return null;
    const n = buf[offset + 1]!;
    end = offset + 2 + n;
    if (buf.length < end + 2) return null;
    host = Buffer.from(buf.buffer, buf.byteOffset + offset + 2, n).toString('latin1');
    if (!isHostName(host))
      throw new Socks5Error(
        'ERR_SOCKS5_HOST_NAME',
        `Not a host name (${n} bytes): ${JSON.stringify(host.slice(0, 64))}`,
        Reply.HOST_UNREACHABLE,
      );
  } else {
    throw new Socks5Error(
      'ERR_SOCKS5_ADDRESS_TYPE',
      `Address type ${atyp} is not one of 1 (IPv4), 3 (domain name), 4 (IPv6)`,
      Reply.ADDRESS_TYPE_NOT_SUPPORTED,
    );
  }
  const port = (buf[end]! << 8) | buf[end + 1]!;
  return { value: { host, port, domain: atyp === AddressType.DOMAIN }, length: end + 2 - offset };
}

/** `VER CMD RSV ATYP DST.ADDR DST.PORT`: null until whole. The command is returned as sent. */
export function parseRequest(buf: Uint8Array): Parsed<Request> | null {
  if (buf.length < 1) return null;
  if (buf[0] !== SOCKS_VERSION)
    throw new Socks5Error('ERR_SOCKS5_VERSION', `Not SOCKS5: version byte ${buf[0]}`, Reply.GENERAL_FAILURE);
  if (buf.length < 3) return null;
  const address = parseAddress(buf, 3);
  if (address === null) return null;
  return { value: { command: buf[1]!, address: address.value }, length: 3 + address.length };
}

/**
 * The header of a datagram of a UDP association (`RSV RSV FRAG ATYP DST.ADDR DST.PORT`); a
 * datagram shorter than its header is an error (`ERR_SOCKS5_DATAGRAM`), as are the address
 * errors. FRAG is returned for the caller to judge.
 */
export function parseDatagramHeader(datagram: Uint8Array): DatagramHeader {
  if (datagram.length < 4)
    throw new Socks5Error('ERR_SOCKS5_DATAGRAM', `A ${datagram.length}-byte datagram has no header`, null);
  const address = parseAddress(datagram, 3);
  if (address === null)
    throw new Socks5Error(
      'ERR_SOCKS5_DATAGRAM',
      `A ${datagram.length}-byte datagram is shorter than its header`,
      null,
    );
  return { frag: datagram[2]!, address: address.value, headerLength: 3 + address.length };
}

/**
 * Whether a datagram is addressed as `header` (a destination already known: its header, FRAG
 * 0): the hot path's lookup, with no parse and nothing allocated.
 */
export function sameDestination(datagram: Uint8Array, header: Uint8Array): boolean {
  const n = header.length;
  if (datagram.length < n) return false;
  // RSV is ignored (clients send zeros); FRAG (byte 2) is checked by the caller
  for (let i = 3; i < n; i++) if (datagram[i] !== header[i]) return false;
  return true;
}

/**
 * The header length a datagram's ATYP says it has (IPv4 10, IPv6 22, a name 7 + its length),
 * or -1 when the datagram is shorter or the ATYP is none of them: a lookup's first step, no parse.
 */
export function datagramHeaderLength(datagram: Uint8Array): number {
  const n = datagram.length;
  if (n < 5) return -1;
  const atyp = datagram[3];
  const length =
    atyp === AddressType.IPV4
      ? 10
      : atyp === AddressType.IPV6
        ? 22
        : atyp === AddressType.DOMAIN
          ? 7 + datagram[4]!
          : -1;
  return length <= n ? length : -1;
}

/**
 * FNV-1a over the address bytes of a header (ATYP to PORT, `headerLength` from
 * `datagramHeaderLength`): a small integer to find a destination by, with nothing allocated.
 */
export function destinationHash(datagram: Uint8Array, headerLength: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 3; i < headerLength; i++) h = Math.imul(h ^ datagram[i]!, 0x01000193);
  return h >>> 0;
}

/** The method selection message (`VER METHOD`). */
export function methodSelection(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, method]);
}

/** RFC 1929's status (`VER STATUS`): 0 for success. */
export function credentialsStatus(ok: boolean): Buffer {
  return Buffer.from([USERPASS_VERSION, ok ? 0 : 1]);
}

/** `ATYP ADDR PORT` of an address: an IP literal as such, anything else as a domain name. */
export function encodeAddress(host: string, port: number): Buffer {
  const family = isIP(host);
  let body: Buffer;
  if (family === 4) body = Buffer.from([AddressType.IPV4, ...host.split('.').map(Number)]);
  else if (family === 6) body = Buffer.concat([Buffer.from([AddressType.IPV6]), ipv6Bytes(host)]);
  else {
    const name = Buffer.from(host, 'latin1');
    if (name.length > 255) throw new RangeError(`host name longer than 255 bytes: ${host.slice(0, 64)}`);
    body = Buffer.concat([Buffer.from([AddressType.DOMAIN, name.length]), name]);
  }
  const out = Buffer.allocUnsafe(body.length + 2);
  body.copy(out);
  out.writeUInt16BE(port, body.length);
  return out;
}

/** A reply (`VER REP RSV ATYP BND.ADDR BND.PORT`); the bound address defaults to 0.0.0.0:0. */
export function reply(code: Reply, bindHost = '0.0.0.0', bindPort = 0): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, code, 0]), encodeAddress(bindHost, bindPort)]);
}

/** The header a datagram to or from `host:port` carries (FRAG 0). */
export function datagramHeader(host: string, port: number): Buffer {
  return Buffer.concat([Buffer.from([0, 0, 0]), encodeAddress(host, port)]);
}

/** RFC 5952 text of the 16 bytes at `offset` (the model's form, `compressIPv6`). */
function ipv6Text(buf: Uint8Array, offset: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((buf[offset + 2 * i]! << 8) | buf[offset + 2 * i + 1]!);
  return compressIPv6(groups);
}

/** The 16 bytes of an IPv6 literal (`::`, and a dotted IPv4 tail, as RFC 4291 writes them). */
function ipv6Bytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  let head = text;
  let v4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    v4 = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left = '', right] = head.split('::');
  const groups = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16));
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const all = [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(all[i]!, 2 * i);
  if (v4.length === 4) for (let i = 0; i < 4; i++) out[12 + i] = v4[i]!;
  return out;
}
