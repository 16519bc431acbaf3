/**
 * Connection-ID steering of QUIC across workers that share a port with SO_REUSEPORT.
 *
 * Each worker issues only connection IDs whose 4 bytes at the generator's `steeringOffset`,
 * read as a big-endian u32, are its index modulo the worker count (`steeredCids`). A classic BPF
 * program on the reuseport group (`steeringProgram`, as Envoy's) reads those 4 bytes of each
 * datagram's destination connection ID in the kernel and picks that worker's socket, so a client
 * that changes address or port (NAT rebinding, migration) keeps reaching the worker that holds
 * its connection. Nothing runs per packet in JavaScript.
 *
 * Which bytes the program reads:
 * - a short header (first bit 0): the DCID at byte 1, of our length (short headers do not carry
 *   it), bytes `1 + steeringOffset`..+4;
 * - a long header whose DCID has our length: bytes `6 + steeringOffset`..+4. That covers a
 *   client's Handshake packets and its Initials after our first reply (their DCID is our SCID),
 *   and the Initial that answers our Retry (its DCID is the Retry's SCID, which the same worker
 *   made);
 * - another long header (the client's first Initials and 0-RTT, whose DCID the client chose,
 *   8 bytes or more): the DCID's first 4 bytes. Every packet before the client learns our ID
 *   carries that same DCID, so they all reach one worker, even across a port change; that
 *   worker then issues IDs that steer to itself;
 * - anything too short to hold the ID it names (a short header under 1 + our length, a long one
 *   cut inside its DCID): an index out of range, which makes the kernel fall back to its 4-tuple
 *   hash (a cBPF load past the end would return 0: worker 0 for all such garbage).
 */
import type { CidGenerator } from '../transport/quic/cid.js';

/** Draws of the wrapped generator per ID, at most, before it is judged unable to steer. */
const DRAWS_PER_WORKER = 1000;

/** An error of steering: a generator whose IDs cannot be steered. */
export class SteeringError extends Error {
  readonly code = 'ERR_CID_STEERING';
}

/**
 * A generator that issues only IDs of `base` that steer to worker `index` of `count`: it draws
 * from `base` until the u32 at `steeringOffset` is `index` modulo `count` (`count` draws
 * expected). Length and offset are the base's.
 */
export function steeredCids(base: CidGenerator, index: number, count: number): CidGenerator {
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count)
    throw new RangeError(`worker ${index} of ${count}`);
  const offset = base.steeringOffset;
  if (!Number.isInteger(offset) || offset < 0 || offset + 4 > base.length)
    throw new SteeringError(
      `connection IDs of ${base.length} bytes have no 4 steering bytes at offset ${offset}`,
    );
  if (count === 1) return base;
  const limit = DRAWS_PER_WORKER * count;
  return {
    length: base.length,
    steeringOffset: offset,
    // what the base says of spares and migration holds for its steered IDs too
    ...(base.issueSpares !== undefined ? { issueSpares: base.issueSpares } : {}),
    ...(base.disableActiveMigration !== undefined
      ? { disableActiveMigration: base.disableActiveMigration }
      : {}),
    next(): Buffer {
      for (let i = 0; i < limit; i++) {
        const id = base.next();
        if (id.readUInt32BE(offset) % count === index) return id;
      }
      throw new SteeringError(
        `${limit} connection IDs in a row did not steer to worker ${index} of ${count}: the generator's bytes at offset ${offset} do not vary`,
      );
    },
  };
}

/** What the program needs: the IDs' length and steering offset, the worker count, and where each worker's socket sits. */
export interface SteeringSpec {
  /** Length of the connection IDs the workers issue. */
  cidLength: number;
  /** Offset of the 4 steering bytes in them. */
  steeringOffset: number;
  /** Workers (the modulus). */
  workers: number;
  /**
   * The socket index (place in the reuseport group) of each worker's socket, or null for a
   * worker that has none (gone): its datagrams fall back to the 4-tuple hash. Default: worker i
   * at index i (the sockets were bound in worker order and none has left).
   */
  slots?: readonly (number | null)[];
}

// classic BPF opcodes (linux/filter.h)
const LD_W_ABS = 0x20;
const LD_B_ABS = 0x30;
const LD_W_LEN = 0x80;
const LD_MEM = 0x60;
const ST = 0x02;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const JA = 0x05;
const MOD_K = 0x94;
const RET_A = 0x16;
const RET_K = 0x06;

/** Out of every group's range: the kernel then picks by its 4-tuple hash. */
const FALLBACK = 0xffffffff;

type Label = string;
type Op =
  | { label: Label }
  | { code: number; k: number }
  | { code: number; k: number; jt: Label; jf: Label }
  | { ja: Label };

/** Resolves labels into relative jumps (conditional ones must land within 255 instructions). */
function assemble(ops: readonly Op[]): Uint32Array {
  const at = new Map<Label, number>();
  const code: Exclude<Op, { label: Label }>[] = [];
  for (const op of ops) {
    if ('label' in op) at.set(op.label, code.length);
    else code.push(op);
  }
  const out = new Uint32Array(code.length * 2);
  const target = (label: Label, from: number): number => {
    const to = at.get(label);
    if (to === undefined || to <= from) throw new Error(`steering program: bad jump to ${label}`);
    return to - from - 1;
  };
  code.forEach((op, i) => {
    if ('ja' in op) {
      out[2 * i] = JA;
      out[2 * i + 1] = target(op.ja, i);
    } else if ('jt' in op) {
      const jt = target(op.jt, i);
      const jf = target(op.jf, i);
      if (jt > 255 || jf > 255) throw new Error('steering program: a conditional jump too far');
      out[2 * i] = (op.code | (jt << 16) | (jf << 24)) >>> 0;
      out[2 * i + 1] = op.k >>> 0;
    } else {
      out[2 * i] = op.code;
      out[2 * i + 1] = op.k >>> 0;
    }
  });
  return out;
}

/**
 * The classic BPF program (for `attachReusePortProgram`) that steers QUIC datagrams to the
 * worker their destination connection ID names; see the file comment for which bytes it reads.
 */
export function steeringProgram(spec: SteeringSpec): Uint32Array {
  const { cidLength: length, steeringOffset: offset, workers } = spec;
  if (!Number.isInteger(workers) || workers < 1 || workers > 1024)
    throw new RangeError(`workers: 1 to 1024, not ${workers}`);
  if (!Number.isInteger(length) || length < 4 || length > 20 || offset < 0 || offset + 4 > length)
    throw new SteeringError(`connection IDs of ${length} bytes have no 4 steering bytes at offset ${offset}`);
  const slots = spec.slots;
  if (slots !== undefined && slots.length !== workers)
    throw new RangeError(`slots: one per worker (${workers}), not ${slots.length}`);
  const identity = slots === undefined || slots.every((slot, i) => slot === i);
  const ops: Op[] = [
    { code: LD_W_LEN, k: 0 },
    { code: ST, k: 0 }, // M[0] = payload length
    { code: LD_B_ABS, k: 0 },
    { code: JSET_K, k: 0x80, jt: 'long', jf: 'short' },
    { label: 'short' },
    { code: LD_MEM, k: 0 },
    { code: JGE_K, k: 1 + length, jt: 'short-id', jf: 'hash' },
    { label: 'short-id' },
    { code: LD_W_ABS, k: 1 + offset },
    { ja: 'steer' },
    { label: 'long' },
    { code: LD_MEM, k: 0 },
    { code: JGE_K, k: 6, jt: 'long-dcid', jf: 'hash' },
    { label: 'long-dcid' },
    { code: LD_B_ABS, k: 5 }, // the DCID's length
    { code: JEQ_K, k: length, jt: 'ours', jf: 'theirs' },
    { label: 'ours' },
    { code: LD_MEM, k: 0 },
    { code: JGE_K, k: 6 + length, jt: 'ours-id', jf: 'hash' },
    { label: 'ours-id' },
    { code: LD_W_ABS, k: 6 + offset },
    { ja: 'steer' },
    { label: 'theirs' },
    { code: JGE_K, k: 4, jt: 'theirs-len', jf: 'hash' },
    { label: 'theirs-len' },
    { code: LD_MEM, k: 0 },
    { code: JGE_K, k: 10, jt: 'theirs-id', jf: 'hash' },
    { label: 'theirs-id' },
    { code: LD_W_ABS, k: 6 },
    { ja: 'steer' },
    { label: 'hash' },
    { code: RET_K, k: FALLBACK },
    // last, so the conditional jumps above stay short whatever the table's size
    { label: 'steer' },
    { code: MOD_K, k: workers },
  ];
  if (identity) {
    ops.push({ code: RET_A, k: 0 });
  } else {
    // worker -> socket index, a compare per worker (a group that lost sockets: see WorkerGroup)
    slots!.forEach((slot, worker) => {
      ops.push(
        { code: JEQ_K, k: worker, jt: `ret-${worker}`, jf: `next-${worker}` },
        { label: `ret-${worker}` },
        { code: RET_K, k: slot ?? FALLBACK },
        { label: `next-${worker}` },
      );
    });
    ops.push({ code: RET_K, k: FALLBACK });
  }
  return assemble(ops);
}
