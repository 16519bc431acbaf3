import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CaptureError, readFlows, readPackets } from '../../src/capture/index.js';
import { concat, pcapng } from './synth.js';

const dir = join(import.meta.dirname, '../fixtures/capture');
const captures = readdirSync(dir)
  .filter((name) => /\.pcap(ng)?$/.test(name))
  .map((name) => readFileSync(join(dir, name)));

/** Reading must give results and at most a CaptureError: anything thrown fails the property. */
function readsCleanly(bytes: Uint8Array): void {
  const contents = readPackets(bytes);
  expect(contents.error === null || contents.error instanceof CaptureError).toBe(true);
  if (contents.error !== null) {
    expect(typeof contents.error.code).toBe('string');
    expect(contents.error.offset).toBeGreaterThanOrEqual(0);
    expect(contents.error.offset).toBeLessThanOrEqual(bytes.length);
  }
  const flows = readFlows(bytes, { maxBytesPerDirection: 4096 });
  expect(flows.error?.code).toBe(contents.error?.code);
  expect(flows.packetCount).toBe(contents.packets.length);
  for (const flow of flows.flows) {
    if (flow.protocol === 'tcp') expect(flow.clientToServer.length).toBeLessThanOrEqual(4096);
  }
}

const MAGICS = [
  Uint8Array.of(0xd4, 0xc3, 0xb2, 0xa1),
  Uint8Array.of(0xa1, 0xb2, 0xc3, 0xd4),
  Uint8Array.of(0x4d, 0x3c, 0xb2, 0xa1),
  Uint8Array.of(0x0a, 0x0d, 0x0d, 0x0a),
];

describe('fuzzing the capture layer: only results or a CaptureError', () => {
  it('random bytes, with and without a real magic number', () => {
    fc.assert(
      fc.property(fc.nat(MAGICS.length), fc.uint8Array({ maxLength: 2000 }), (magic, tail) => {
        readsCleanly(magic === MAGICS.length ? tail : concat(MAGICS[magic]!, tail));
      }),
      { numRuns: 2000 },
    );
  });

  it('random pcapng blocks after a valid section header and interface', () => {
    const head = concat(pcapng.shb(), pcapng.idb(1), pcapng.idb(276, true, { tsresol: 9 }));
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 10 }), (bodies) => {
        readsCleanly(concat(head, ...bodies));
      }),
      { numRuns: 1000 },
    );
  });

  it('real captures cut anywhere: the packets before the cut, then a truncation error', () => {
    fc.assert(
      fc.property(fc.nat(captures.length - 1), fc.double({ min: 0, max: 1, noNaN: true }), (which, where) => {
        const whole = captures[which]!;
        const cut = whole.subarray(0, Math.floor(whole.length * where));
        readsCleanly(cut);
        const all = readPackets(whole).packets;
        const { packets, error } = readPackets(cut);
        expect(packets.length).toBeLessThanOrEqual(all.length);
        for (const [i, p] of packets.entries()) expect(p.offset).toBe(all[i]!.offset);
        if (error !== null) expect(['truncated', 'unknown-format']).toContain(error.code);
      }),
      { numRuns: 500 },
    );
  });

  it('real captures with bytes changed, inserted or removed', () => {
    fc.assert(
      fc.property(
        fc.nat(captures.length - 1),
        fc.array(
          fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 }), fc.nat(2)),
          {
            minLength: 1,
            maxLength: 12,
          },
        ),
        (which, edits) => {
          let bytes: Uint8Array = Uint8Array.from(captures[which]!);
          for (const [where, value, kind] of edits) {
            const at = Math.floor(bytes.length * where);
            if (kind === 0 && at < bytes.length) bytes[at] = value;
            else if (kind === 1)
              bytes = concat(bytes.subarray(0, at), Uint8Array.of(value), bytes.subarray(at));
            else bytes = concat(bytes.subarray(0, at), bytes.subarray(at + 1));
          }
          readsCleanly(bytes);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('mutations confined to packet data never stop the file from being read', () => {
    // Headers stay intact, so every record is read; the decoders must absorb any packet bytes.
    fc.assert(
      fc.property(
        fc.nat(captures.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 40,
        }),
        (which, edits) => {
          const bytes = Uint8Array.from(captures[which]!);
          const packets = readPackets(bytes).packets;
          for (const [p, at, value] of edits) {
            const packet = packets[p % packets.length]!;
            if (packet.data.length > 0) {
              bytes[packet.data.byteOffset + (at % packet.data.length)] = value;
            }
          }
          const result = readFlows(bytes);
          expect(result.error).toBeNull();
          expect(result.packetCount).toBe(packets.length);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
