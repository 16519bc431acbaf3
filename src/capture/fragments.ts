import { LruMap } from '../collections/lru-map.js';
import { type IpDatagram, walkIpv6Extensions } from './ip.js';
import { type Skipped, skipped } from './skip.js';

/** Bounds on what fragment reassembly may hold. */
export interface FragmentLimits {
  /** Datagrams being reassembled at once; the oldest is dropped beyond it. Default 256. */
  readonly maxDatagrams?: number;
}

interface Piece {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

interface Pending {
  readonly pieces: Piece[];
  /** Known once the last fragment (no "more fragments" flag) has been seen. */
  total: number | null;
  /** The protocol of the fragment at offset 0 (for IPv6, the fragment header's next header). */
  protocol: number;
  first: IpDatagram | null;
}

/** The largest payload an IP datagram can carry (without IPv6 jumbograms, which are not fragmented). */
const MAX_PAYLOAD = 65_535;
/** More pieces than this for one datagram means duplicates without end: give it up. */
const MAX_PIECES = 128;

/**
 * Puts IPv4 and IPv6 fragments back together (RFC 791 / RFC 8200), keyed by addresses, protocol
 * and identification. Overlapping fragments: the first bytes received win. Fragments cut short by
 * the snapshot length, or beyond 64 KiB, are dropped, and so is the whole datagram they belong to.
 */
export class IpFragmentReassembler {
  /** Datagrams in reassembly; past the limit the least recently fed one is given up. */
  readonly #pending: LruMap<string, Pending>;

  constructor(limits: FragmentLimits = {}) {
    this.#pending = new LruMap(limits.maxDatagrams ?? 256);
  }

  /** Datagrams still waiting for fragments. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Takes one fragment; returns the whole datagram once every byte of it has arrived. */
  push(fragment: IpDatagram): IpDatagram | Skipped {
    const info = fragment.fragment;
    if (info === null) return fragment;
    const key = fragmentKey(fragment, info.id);
    let pending = this.#pending.get(key);
    const end = info.offset + fragment.payload.length;
    if (fragment.truncated || end > MAX_PAYLOAD || (info.more && fragment.payload.length % 8 !== 0)) {
      this.#pending.delete(key);
      return skipped('fragment');
    }
    if (pending === undefined) {
      pending = { pieces: [], total: null, protocol: fragment.protocol, first: null };
      this.#pending.set(key, pending);
    }
    if (pending.pieces.length >= MAX_PIECES) {
      this.#pending.delete(key);
      return skipped('fragment');
    }
    if (!info.more) pending.total = end;
    if (info.offset === 0) {
      pending.first = fragment;
      pending.protocol = fragment.protocol;
    }
    pending.pieces.push({ offset: info.offset, bytes: fragment.payload });
    const whole = assemble(pending);
    if (whole === null) return skipped('fragment');
    this.#pending.delete(key);
    return complete(pending.first!, pending.protocol, whole);
  }
}

function fragmentKey(datagram: IpDatagram, id: number): string {
  const hex = (bytes: Uint8Array) =>
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  // IPv6 fragments of one datagram may name different upper protocols only if corrupt; key on v4's field alone.
  const protocol = datagram.version === 4 ? datagram.protocol : -1;
  return `${datagram.version}/${protocol}/${id}/${hex(datagram.source)}/${hex(datagram.destination)}`;
}

/** The reassembled payload once the pieces cover [0, total); null while any byte is missing. */
function assemble(pending: Pending): Uint8Array | null {
  if (pending.total === null || pending.first === null) return null;
  const pieces = [...pending.pieces].sort((a, b) => a.offset - b.offset);
  let covered = 0;
  for (const piece of pieces) {
    if (piece.offset > covered) return null;
    covered = Math.max(covered, piece.offset + piece.bytes.length);
  }
  if (covered < pending.total) return null;
  const whole = new Uint8Array(pending.total);
  // Write later arrivals first so the earliest bytes received for any position win.
  for (let i = pending.pieces.length - 1; i >= 0; i--) {
    const piece = pending.pieces[i]!;
    const room = Math.max(0, Math.min(piece.bytes.length, pending.total - piece.offset));
    whole.set(piece.bytes.subarray(0, room), piece.offset);
  }
  return whole;
}

function complete(first: IpDatagram, protocol: number, payload: Uint8Array): IpDatagram | Skipped {
  if (first.version === 4) return { ...first, protocol, payload, truncated: false, fragment: null };
  const walked = walkIpv6Extensions(protocol, payload);
  if (walked.kind === 'skipped') return walked;
  // A second fragment header inside the reassembled payload is nonsense.
  if (walked.fragment !== null) return skipped('malformed');
  return { ...first, protocol: walked.protocol, payload: walked.payload, truncated: false, fragment: null };
}
