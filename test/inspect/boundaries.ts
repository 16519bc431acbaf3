/** Where the packets of a capture file start (tests only). */

/** Offsets where each packet record (pcap) or block (pcapng) starts, and the file's end. */
export function recordBoundaries(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  if (view.getUint32(0, false) === 0x0a0d0d0a) {
    for (let o = 0; o < bytes.length; o += view.getUint32(o + 4, true)) out.push(o);
  } else {
    const le = view.getUint32(0, true) === 0xa1b2c3d4 || view.getUint32(0, true) === 0xa1b23c4d;
    for (let o = 24; o < bytes.length; o += 16 + view.getUint32(o + 8, le)) out.push(o);
  }
  out.push(bytes.length);
  return out;
}

/** A pcap as if captured with snapshot length `snap` (what `editcap -s SNAP` does). */
export function snapPcap(bytes: Uint8Array, snap: number): Uint8Array {
  const parts: Uint8Array[] = [bytes.subarray(0, 24)];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let o = 24; o < bytes.length; ) {
    const captured = view.getUint32(o + 8, true);
    const kept = Math.min(captured, snap);
    const header = Uint8Array.from(bytes.subarray(o, o + 16));
    new DataView(header.buffer).setUint32(8, kept, true);
    parts.push(header, bytes.subarray(o + 16, o + 16 + kept));
    o += 16 + captured;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  new DataView(out.buffer).setUint32(16, snap, true); // the file header's snaplen
  return out;
}
