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
