/**
 * Damaged captures: real fixtures cut at every packet boundary and inside every record, and
 * with bytes flipped. Inspection never throws; a cut file gives exactly the records of the
 * packets before the cut, and an error naming where.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readFlows } from '../../src/capture/index.js';
import {
  INSPECT_RECORD_KEYS,
  type InspectRecord,
  inspectCapture,
  inspectFlow,
} from '../../src/inspect/index.js';
import { recordBoundaries, snapPcap } from './boundaries.js';

const FIXTURES = join(import.meta.dirname, '../fixtures');
const FILES = [
  ...readdirSync(join(FIXTURES, 'inspect'))
    .filter((f) => f.endsWith('.pcap'))
    .map((f) => `inspect/${f}`),
  'capture/tls12-ipv6.pcapng',
  'capture/dtls12-any-sll2.pcap',
];

/** A record of a cut capture agrees with the whole capture's, with fields not yet seen empty. */
function isPrefixOf(partial: InspectRecord, whole: InspectRecord): boolean {
  return INSPECT_RECORD_KEYS.every((key) => {
    const a = partial[key];
    if (a === null || (Array.isArray(a) && a.length === 0)) return true;
    return JSON.stringify(a) === JSON.stringify(whole[key]);
  });
}

describe.each(FILES)('%s', (file) => {
  const bytes = new Uint8Array(readFileSync(join(FIXTURES, file)));
  const whole = inspectCapture(bytes);
  const boundaries = recordBoundaries(bytes);

  it('reads whole, with a record and no notes', () => {
    expect(whole.error).toBeNull();
    expect(whole.notes).toEqual([]);
    expect(whole.records.length).toBeGreaterThan(0);
  });

  it('cut anywhere: the records of the whole packets before the cut, and where it was cut', () => {
    for (const [i, start] of boundaries.entries()) {
      const end = boundaries[i + 1] ?? bytes.length;
      const atBoundary = inspectCapture(bytes.subarray(0, start));
      if (start >= 24) expect(atBoundary.error, `cut at ${start}`).toBeNull();
      for (const at of new Set([start + 1, start + 7, start + 15, (start + end) >> 1, end - 1])) {
        if (at <= start || at >= end) continue;
        const cut = inspectCapture(bytes.subarray(0, at));
        expect(cut.records, `cut at ${at}`).toEqual(atBoundary.records);
        expect(cut.error?.code, `cut at ${at}`).toBe('truncated');
        expect(cut.error?.offset, `cut at ${at}`).toBe(start);
      }
      for (const [k, record] of atBoundary.records.entries()) {
        expect(isPrefixOf(record, whole.records[k]!), `cut at ${start}: ${JSON.stringify(record)}`).toBe(
          true,
        );
      }
      expect(atBoundary.notes.filter((n) => n.message.startsWith('internal error'))).toEqual([]);
    }
  });

  // snapPcap rewrites pcap records only: the case exists for .pcap fixtures
  if (file.endsWith('.pcap'))
    it('captured with a small snapshot length: the connection, and a note why its hellos are missing', () => {
      const snapped = inspectCapture(snapPcap(bytes, 150));
      expect(snapped.error).toBeNull();
      expect(snapped.records.map((r) => [r.protocol, r.client, r.server])).toEqual(
        whole.records.map((r) => [r.protocol, r.client, r.server]),
      );
      expect(snapped.records[0]!.ja4).toBeNull();
      expect(snapped.notes[0]!.message).toMatch(
        /^(ClientHello incomplete|an Initial from the client was cut)/,
      );
      expect(snapped.notes[0]!.message).toMatch(/snapshot length/);
    });

  it('bytes flipped anywhere: no throw, contract-shaped records', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (flips) => {
          const damaged = Uint8Array.from(bytes);
          for (const [at, mask] of flips) damaged[at]! ^= mask;
          // inspectFlow straight, so that a throw from any layer fails here rather than becoming a note.
          for (const flow of readFlows(damaged).flows) inspectFlow(flow);
          const result = inspectCapture(damaged);
          for (const record of result.records) expect(Object.keys(record)).toEqual([...INSPECT_RECORD_KEYS]);
          expect(result.notes.filter((n) => n.message.startsWith('internal error'))).toEqual([]);
        },
      ),
      {
        numRuns: Number(process.env.INSPECT_FUZZ_RUNS ?? 150),
        seed: Number(process.env.INSPECT_FUZZ_SEED ?? 20260125),
      },
    );
  });
});
