/** Builders for synthetic hellos, records and datagrams (tests only). */

export function u16(v: number): number[] {
  return [(v >> 8) & 0xff, v & 0xff];
}

function u24(v: number): number[] {
  return [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];
}

export type Ext = readonly [type: number, data: Uint8Array];

export interface HelloSpec {
  readonly version?: number;
  readonly random?: Uint8Array;
  readonly sessionId?: Uint8Array;
  /** DTLS only. */
  readonly cookie?: Uint8Array;
  readonly ciphers: readonly number[];
  readonly compression?: readonly number[];
  /** null: no extensions block at all (SSLv3 style). */
  readonly extensions: readonly Ext[] | null;
}

export function clientHelloBody(spec: HelloSpec): Uint8Array {
  const out: number[] = [...u16(spec.version ?? 0x0303)];
  out.push(...(spec.random ?? new Uint8Array(32).fill(7)));
  const sid = spec.sessionId ?? new Uint8Array(0);
  out.push(sid.length, ...sid);
  if (spec.cookie) out.push(spec.cookie.length, ...spec.cookie);
  out.push(...u16(spec.ciphers.length * 2));
  for (const c of spec.ciphers) out.push(...u16(c));
  const comp = spec.compression ?? [0];
  out.push(comp.length, ...comp);
  if (spec.extensions) {
    const exts: number[] = [];
    for (const [type, data] of spec.extensions) exts.push(...u16(type), ...u16(data.length), ...data);
    out.push(...u16(exts.length), ...exts);
  }
  return Uint8Array.from(out);
}

export function handshake(type: number, body: Uint8Array): Uint8Array {
  return Uint8Array.from([type, ...u24(body.length), ...body]);
}

/** Cuts `payload` into TLS records of at most `maxFragment` bytes. */
export function tlsRecords(
  contentType: number,
  version: number,
  payload: Uint8Array,
  maxFragment = 16384,
): Uint8Array {
  const out: number[] = [];
  for (let o = 0; o < payload.length; o += maxFragment) {
    const frag = payload.subarray(o, Math.min(payload.length, o + maxFragment));
    out.push(contentType, ...u16(version), ...u16(frag.length), ...frag);
  }
  return Uint8Array.from(out);
}

export function dtlsRecord(
  contentType: number,
  version: number,
  epoch: number,
  seq: number,
  payload: Uint8Array,
): Uint8Array {
  const s = [5, 4, 3, 2, 1, 0].map((k) => Math.floor(seq / 2 ** (8 * k)) % 256);
  return Uint8Array.from([
    contentType,
    ...u16(version),
    ...u16(epoch),
    ...s,
    ...u16(payload.length),
    ...payload,
  ]);
}

/** One DTLS handshake fragment (header + bytes). */
export function dtlsFragment(
  type: number,
  seq: number,
  body: Uint8Array,
  offset: number,
  length: number,
): Uint8Array {
  return Uint8Array.from([
    type,
    ...u24(body.length),
    ...u16(seq),
    ...u24(offset),
    ...u24(length),
    ...body.subarray(offset, offset + length),
  ]);
}

const ascii = (s: string) => [...Buffer.from(s, 'latin1')];

export function sniExt(name: string): Ext {
  const n = ascii(name);
  return [0, Uint8Array.from([...u16(n.length + 3), 0, ...u16(n.length), ...n])];
}

export function alpnExt(protocols: readonly string[]): Ext {
  const list = protocols.flatMap((p) => [p.length, ...ascii(p)]);
  return [16, Uint8Array.from([...u16(list.length), ...list])];
}

export function u16VectorExt(type: number, values: readonly number[]): Ext {
  return [type, Uint8Array.from([...u16(values.length * 2), ...values.flatMap(u16)])];
}

export function u8VectorExt(type: number, values: readonly number[]): Ext {
  return [type, Uint8Array.from([values.length, ...values])];
}

export function supportedVersionsExt(values: readonly number[]): Ext {
  return [43, Uint8Array.from([values.length * 2, ...values.flatMap(u16)])];
}

/** key_share with a zero-filled key of the given length per group. */
export function keyShareExt(shares: ReadonlyArray<readonly [group: number, keyLength: number]>): Ext {
  const list = shares.flatMap(([g, n]) => [...u16(g), ...u16(n), ...new Array<number>(n).fill(0x5a)]);
  return [51, Uint8Array.from([...u16(list.length), ...list])];
}

export function emptyExt(type: number): Ext {
  return [type, new Uint8Array(0)];
}

/**
 * A ClientHello shaped like Chrome's (2025): GREASE cipher, extension, group and version, 15
 * ciphers, 16 extensions, an X25519MLKEM768 key share; about 1.8 KB with its record header.
 * Synthetic: no peer on this machine sends a post-quantum share.
 */
export function chromeLikeClientHello(): Uint8Array {
  const body = clientHelloBody({
    sessionId: new Uint8Array(32).fill(0x33),
    ciphers: [
      0x8a8a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
      0x009d, 0x002f, 0x0035,
    ],
    extensions: [
      [0x3a3a, new Uint8Array(0)],
      [0x002d, Uint8Array.from([1, 1])],
      keyShareExt([
        [0x4a4a, 1],
        [0x11ec, 1216],
        [29, 32],
      ]),
      alpnExt(['h2', 'http/1.1']),
      [0xfe0d, new Uint8Array(218).fill(0x42)],
      emptyExt(23),
      [0x44cd, Uint8Array.from([0, 3, 2, 0x68, 0x32])],
      sniExt('www.example.com'),
      u8VectorExt(11, [0]),
      u16VectorExt(10, [0x4a4a, 0x11ec, 29, 23, 24]),
      supportedVersionsExt([0x7a7a, 0x0304, 0x0303]),
      [0xff01, Uint8Array.from([0])],
      emptyExt(35),
      emptyExt(18),
      [5, Uint8Array.from([1, 0, 0, 0, 0])],
      u16VectorExt(13, [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]),
      [27, Uint8Array.from([2, 0, 2])],
      [0x1a1a, Uint8Array.from([0])],
    ],
  });
  return tlsRecords(0x16, 0x0301, handshake(1, body));
}
