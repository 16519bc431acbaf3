/**
 * Byte-by-byte builders of capture files and packets for the capture tests: every header written
 * out field by field, so a test says exactly what is on the wire.
 */

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

function u16(value: number, le = false): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, value, le);
  return b;
}
function u32(value: number, le = false): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, le);
  return b;
}
const pad4 = (bytes: Uint8Array): Uint8Array => concat(bytes, new Uint8Array((4 - (bytes.length % 4)) % 4));

// ---- containers ----

export interface SynthPacket {
  readonly seconds: number;
  readonly fraction?: number;
  readonly data: Uint8Array;
  readonly originalLength?: number;
}

/** A classic pcap file. `fraction` is micro- or nanoseconds as `nano` says. */
export function pcapFile(options: {
  linkType: number;
  le?: boolean;
  nano?: boolean;
  packets: SynthPacket[];
}): Uint8Array {
  const le = options.le ?? true;
  const header = concat(
    u32(options.nano ? 0xa1b23c4d : 0xa1b2c3d4, le),
    u16(2, le),
    u16(4, le),
    u32(0, le),
    u32(0, le),
    u32(262144, le),
    u32(options.linkType, le),
  );
  const records = options.packets.map((p) =>
    concat(
      u32(p.seconds, le),
      u32(p.fraction ?? 0, le),
      u32(p.data.length, le),
      u32(p.originalLength ?? p.data.length, le),
      p.data,
    ),
  );
  return concat(header, ...records);
}

function block(type: number, body: Uint8Array, le: boolean): Uint8Array {
  const padded = pad4(body);
  const length = padded.length + 12;
  return concat(u32(type, le), u32(length, le), padded, u32(length, le));
}

function options(list: { code: number; value: Uint8Array }[], le: boolean): Uint8Array {
  if (list.length === 0) return new Uint8Array(0);
  return concat(
    ...list.map((o) => concat(u16(o.code, le), u16(o.value.length, le), pad4(o.value))),
    u16(0, le),
    u16(0, le),
  );
}

export const pcapng = {
  shb(le = true): Uint8Array {
    // byte-order magic, version 1.0, section length -1 (unknown)
    return block(
      0x0a0d0d0a,
      concat(u32(0x1a2b3c4d, le), u16(1, le), u16(0, le), u32(0xffffffff, le), u32(0xffffffff, le)),
      le,
    );
  },
  idb(
    linkType: number,
    le = true,
    opts: { tsresol?: number; tsoffset?: bigint; snapLength?: number } = {},
  ): Uint8Array {
    const list: { code: number; value: Uint8Array }[] = [];
    list.push({ code: 2, value: text('synth0') }); // if_name, to prove other options are stepped over
    if (opts.tsresol !== undefined) list.push({ code: 9, value: Uint8Array.of(opts.tsresol) });
    if (opts.tsoffset !== undefined) {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigInt64(0, opts.tsoffset, le);
      list.push({ code: 14, value: b });
    }
    return block(
      1,
      concat(u16(linkType, le), u16(0, le), u32(opts.snapLength ?? 0, le), options(list, le)),
      le,
    );
  },
  /** Enhanced Packet Block; `units` is the timestamp in the interface's resolution. */
  epb(
    interfaceId: number,
    units: bigint,
    data: Uint8Array,
    le = true,
    originalLength = data.length,
  ): Uint8Array {
    return block(
      6,
      concat(
        u32(interfaceId, le),
        u32(Number(units >> 32n), le),
        u32(Number(units & 0xffffffffn), le),
        u32(data.length, le),
        u32(originalLength, le),
        pad4(data),
        options([{ code: 1, value: text('a comment') }], le),
      ),
      le,
    );
  },
  spb(data: Uint8Array, le = true): Uint8Array {
    return block(3, concat(u32(data.length, le), data), le);
  },
  /** The obsolete Packet Block (type 2): 16-bit interface id and drop count. */
  opb(interfaceId: number, units: bigint, data: Uint8Array, le = true): Uint8Array {
    return block(
      2,
      concat(
        u16(interfaceId, le),
        u16(0, le),
        u32(Number(units >> 32n), le),
        u32(Number(units & 0xffffffffn), le),
        u32(data.length, le),
        u32(data.length, le),
        data,
      ),
      le,
    );
  },
  other(type: number, body: Uint8Array, le = true): Uint8Array {
    return block(type, body, le);
  },
};

// ---- link layers ----

const MAC_A = hex('020000000001');
const MAC_B = hex('020000000002');

export function ethernet(
  ethertype: number,
  payload: Uint8Array,
  vlanIds: number[] = [],
  padTo = 0,
): Uint8Array {
  const tags = vlanIds.map((id, i) => concat(u16(i === 0 && vlanIds.length > 1 ? 0x88a8 : 0x8100), u16(id)));
  // With tags, each tag's TPID sits where the EtherType would be; the real EtherType comes last.
  const frame = concat(MAC_A, MAC_B, ...tags, u16(ethertype), payload);
  return frame.length < padTo ? concat(frame, new Uint8Array(padTo - frame.length)) : frame;
}

export function sll(protocol: number, payload: Uint8Array, arphrd = 772): Uint8Array {
  return concat(u16(0), u16(arphrd), u16(6), MAC_A, u16(0), u16(protocol), payload);
}

export function sll2(protocol: number, payload: Uint8Array, arphrd = 772): Uint8Array {
  return concat(u16(protocol), u16(0), u32(1), u16(arphrd), Uint8Array.of(0, 6), MAC_A, u16(0), payload);
}

/** DLT_NULL / DLT_LOOP header: the address family as 4 bytes in the given order. */
export function loopback(family: number, payload: Uint8Array, le: boolean): Uint8Array {
  return concat(u32(family, le), payload);
}

// ---- network and transport ----

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;

export interface Ipv4Options {
  src?: string;
  dst?: string;
  protocol: number;
  payload: Uint8Array;
  id?: number;
  /** Fragment offset in bytes (multiple of 8). */
  fragmentOffset?: number;
  moreFragments?: boolean;
  /** IP options, a multiple of 4 bytes. */
  options?: Uint8Array;
  /** Overrides the total length field (e.g. 0 for offloaded segments). */
  totalLength?: number;
}

const v4 = (address: string): Uint8Array => Uint8Array.from(address.split('.').map(Number));

export function ipv4(o: Ipv4Options): Uint8Array {
  const opts = o.options ?? new Uint8Array(0);
  const headerLength = 20 + opts.length;
  const flags = (o.moreFragments ? 0x2000 : 0) | ((o.fragmentOffset ?? 0) / 8);
  return concat(
    Uint8Array.of(0x40 | (headerLength / 4), 0),
    u16(o.totalLength ?? headerLength + o.payload.length),
    u16(o.id ?? 1),
    u16(flags),
    Uint8Array.of(64, o.protocol),
    u16(0),
    v4(o.src ?? '10.0.0.1'),
    v4(o.dst ?? '10.0.0.2'),
    opts,
    o.payload,
  );
}

/** Parses IPv6 text with at most one `::` (enough for tests). */
export function v6(address: string): Uint8Array {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const parse = (s: string | undefined) => (s ? s.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const h = parse(head);
  const t = parse(tail);
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  return concat(...groups.map((g) => u16(g)));
}

export interface Ipv6Options {
  src?: string;
  dst?: string;
  /** Extension headers in order, each with its own type; the last one's next header is `protocol`. */
  extensions?: { type: number; body: Uint8Array }[];
  protocol: number;
  payload: Uint8Array;
}

export function ipv6(o: Ipv6Options): Uint8Array {
  const ext = o.extensions ?? [];
  const chain: Uint8Array[] = [];
  for (let i = 0; i < ext.length; i++) {
    const next = i + 1 < ext.length ? ext[i + 1]!.type : o.protocol;
    chain.push(concat(Uint8Array.of(next), ext[i]!.body));
  }
  const rest = concat(...chain, o.payload);
  return concat(
    Uint8Array.of(0x60, 0, 0, 0),
    u16(rest.length),
    Uint8Array.of(ext.length > 0 ? ext[0]!.type : o.protocol, 64),
    v6(o.src ?? '2001:db8::1'),
    v6(o.dst ?? '2001:db8::2'),
    rest,
  );
}

/** Body (after the next-header byte) of an 8n-byte option-style extension header. */
export function extensionBody(lengthUnits: number): Uint8Array {
  const body = new Uint8Array((lengthUnits + 1) * 8 - 1);
  body[0] = lengthUnits;
  body[1] = 1; // PadN option filling the rest
  body[2] = body.length - 3;
  return body;
}

/** Body (after the next-header byte) of an IPv6 fragment header. */
export function fragmentBody(offset: number, more: boolean, id: number): Uint8Array {
  return concat(Uint8Array.of(0), u16(offset | (more ? 1 : 0)), u32(id));
}

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export interface TcpOptions {
  sport: number;
  dport: number;
  seq: number;
  ack?: number;
  flags: number;
  payload?: Uint8Array;
  /** TCP options, a multiple of 4 bytes. */
  options?: Uint8Array;
}

export function tcp(o: TcpOptions): Uint8Array {
  const opts = o.options ?? new Uint8Array(0);
  return concat(
    u16(o.sport),
    u16(o.dport),
    u32(o.seq),
    u32(o.ack ?? 0),
    Uint8Array.of(((20 + opts.length) / 4) << 4, o.flags),
    u16(65535),
    u16(0),
    u16(0),
    opts,
    o.payload ?? new Uint8Array(0),
  );
}

export function udp(sport: number, dport: number, payload: Uint8Array): Uint8Array {
  return concat(u16(sport), u16(dport), u16(8 + payload.length), u16(0), payload);
}

/** A raw-IP (LINKTYPE_RAW) pcap of the given IP packets, one per second. */
export function rawPcap(packets: Uint8Array[]): Uint8Array {
  return pcapFile({
    linkType: 101,
    packets: packets.map((data, i) => ({ seconds: 1_700_000_000 + i, data })),
  });
}
