/**
 * The impairment spec (`--impair SPEC`, `Proxy.start({ impair })`): a comma list of faults per
 * direction, as quic-network-simulator's scenarios and netem name them. Pure: no sockets, no clock.
 *
 *   loss=0.3,burst=3            both directions: 30% of datagrams lost, up to 3 in a row
 *   up:drop=3,4,7,down:delay=20 datagrams 3, 4 and 7 toward the server dropped; 20 ms back
 *   rate=10M,queue=25,seed=7    a 10 Mbit/s token bucket holding 25 datagrams, decisions seeded
 */

/** A spec that does not parse: `term` is the offending term as written; `code` is ERR_IMPAIR_SPEC. */
export class ImpairSpecError extends Error {
  override readonly name = 'ImpairSpecError';
  readonly code = 'ERR_IMPAIR_SPEC';
  constructor(
    readonly term: string,
    reason: string,
  ) {
    super(`bad term "${term}": ${reason}`);
  }
}

/** The faults of one direction. Zero (or empty, or null) means the fault is off. */
export interface DirectionFaults {
  /** Probability that a datagram is lost (with `burst`: that a burst of losses starts). */
  loss: number;
  /** Most datagrams lost in a row (each burst's length is drawn in 1..burst); 0 (default): each loss on its own. */
  burst: number;
  /** Datagrams dropped by their index in this direction (1 for the first, as the simulator's droplist). */
  drop: readonly number[];
  /** Probability that a datagram is held back until `gap` later ones have gone. */
  reorder: number;
  /** Datagrams that overtake a reordered one; default 1. */
  gap: number;
  /** Probability that a datagram is sent twice. */
  duplicate: number;
  /** Added latency, ms, and its random spread (+-jitter, never below zero). */
  delay: number;
  jitter: number;
  /** Bits per second through a token bucket (0: unlimited). */
  rate: number;
  /** Datagrams (stream chunks) waiting for the bucket at most; beyond, datagrams are dropped. */
  queue: number;
  /** Probability that one random byte of the first 50 is changed (QUIC Version Negotiation is spared). */
  corrupt: number;
  /** Datagrams longer than this are dropped (0: no limit). */
  mtu: number;
  /** The link passes for `onMs`, then drops everything for `offMs`, over and over. */
  blackhole: { onMs: number; offMs: number } | null;
}

/** A parsed spec. */
export interface ImpairSpec {
  /** Client to server. */
  up: DirectionFaults;
  /** Server to client. */
  down: DirectionFaults;
  /** NAT rebinding toward the server: a new source port (and with `address`, a new 127.x address) every `everyMs`. */
  rebind: { everyMs: number; address: boolean } | null;
  /** The PRNG's seed (same seed, same decisions); null: one is drawn when the impairment starts. */
  seed: number | null;
}

/** Datagrams that wait for the token bucket at most, by default. */
export const DEFAULT_QUEUE = 100;

/** Faults that need datagrams: TCP and TLS carry a byte stream, where a datagram cannot be lost. */
export const PACKET_FAULTS = ['loss', 'drop', 'reorder', 'duplicate', 'corrupt', 'mtu', 'rebind'] as const;

/** A direction without faults. */
export function noFaults(): DirectionFaults {
  return {
    loss: 0,
    burst: 0,
    drop: [],
    reorder: 0,
    gap: 1,
    duplicate: 0,
    delay: 0,
    jitter: 0,
    rate: 0,
    queue: DEFAULT_QUEUE,
    corrupt: 0,
    mtu: 0,
    blackhole: null,
  };
}

/** The packet faults a spec asks for (those a stream mode cannot apply), by name. */
export function packetFaults(spec: ImpairSpec): string[] {
  const names = new Set<string>();
  for (const d of [spec.up, spec.down]) {
    if (d.loss > 0) names.add('loss');
    if (d.drop.length > 0) names.add('drop');
    if (d.reorder > 0) names.add('reorder');
    if (d.duplicate > 0) names.add('duplicate');
    if (d.corrupt > 0) names.add('corrupt');
    if (d.mtu > 0) names.add('mtu');
  }
  if (spec.rebind !== null) names.add(spec.rebind.address ? 'rebind-addr' : 'rebind');
  return [...names];
}

type Direction = 'up' | 'down';
type Key = keyof DirectionFaults | 'rebind' | 'rebind-addr' | 'seed';

const KEYS: readonly Key[] = [
  'loss',
  'burst',
  'drop',
  'reorder',
  'gap',
  'duplicate',
  'delay',
  'jitter',
  'rate',
  'queue',
  'corrupt',
  'mtu',
  'blackhole',
  'rebind',
  'rebind-addr',
  'seed',
];

/** A fault that needs another one in the same direction, and the one it needs. */
const COMPANIONS: readonly [keyof DirectionFaults, keyof DirectionFaults][] = [
  ['burst', 'loss'],
  ['gap', 'reorder'],
  ['queue', 'rate'],
];

const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

function probability(term: string, value: string): number {
  const percent = value.endsWith('%');
  const text = percent ? value.slice(0, -1) : value;
  if (!NUMBER.test(text)) throw new ImpairSpecError(term, 'not a probability (0..1, or 0%..100%)');
  const p = Number(text) / (percent ? 100 : 1);
  if (p > 1) throw new ImpairSpecError(term, 'a probability is 0..1 (or 0%..100%)');
  return p;
}

function milliseconds(term: string, value: string, positive: boolean): number {
  if (value.startsWith('-')) throw new ImpairSpecError(term, 'a time cannot be negative');
  if (!NUMBER.test(value)) throw new ImpairSpecError(term, 'not a number of milliseconds');
  const ms = Number(value);
  if (positive && ms === 0) throw new ImpairSpecError(term, 'must be more than 0 ms');
  return ms;
}

function integer(term: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value.startsWith('-')) throw new ImpairSpecError(term, 'cannot be negative');
  if (!/^\d+$/.test(value)) throw new ImpairSpecError(term, 'not an integer');
  const n = Number(value);
  if (n < min || n > max) throw new ImpairSpecError(term, `an integer in ${min}..${max}`);
  return n;
}

const RATE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1e3, m: 1e6, g: 1e9 };

/** Bits per second: `800000`, `800k`, `10M`, `1G` (SI, as netem and iperf3 write them). */
function bitRate(term: string, value: string): number {
  const m = /^(\d+(?:\.\d*)?|\.\d+)([kKmMgG]?)(?:bit|bps)?$/.exec(value);
  if (value.startsWith('-')) throw new ImpairSpecError(term, 'a rate cannot be negative');
  if (m === null) throw new ImpairSpecError(term, 'not a rate in bits per second (e.g. 800k, 10M)');
  const bits = Number(m[1]) * RATE_UNITS[m[2]!.toLowerCase()]!;
  if (bits < 1) throw new ImpairSpecError(term, 'a rate is at least 1 bit/s');
  return bits;
}

/**
 * Parses a spec. Terms are `[up:|down:]KEY=VALUE`; unprefixed ones apply to both directions,
 * except `rebind`/`rebind-addr` (toward the server) and `seed` (one for both). The numbers after
 * `drop=` continue its list (`drop=3,4,7`). Throws ImpairSpecError naming the first bad term:
 * an unknown fault, a probability outside 0..1, a negative time, a fault given twice, or
 * `burst`/`gap`/`queue` without the `loss`/`reorder`/`rate` they shape.
 */
export function parseImpairSpec(text: string): ImpairSpec {
  const spec: ImpairSpec = { up: noFaults(), down: noFaults(), rebind: null, seed: null };
  const given = { up: new Map<Key, string>(), down: new Map<Key, string>() };
  const terms = text.split(',').map((t) => t.trim());
  if (text.trim() === '') throw new ImpairSpecError(text, 'an empty spec (give faults, e.g. loss=0.02)');
  let dropList: number[] | null = null;
  for (const term of terms) {
    if (term === '') throw new ImpairSpecError(term, 'an empty term (two commas in a row?)');
    // a bare index continues the drop list before it
    if (dropList !== null && /^\d+$/.test(term)) {
      dropList.push(integer(term, term, 1));
      continue;
    }
    dropList = null;
    const prefix = /^(up|down):/.exec(term);
    const body = prefix ? term.slice(prefix[0].length) : term;
    const eq = body.indexOf('=');
    if (eq === -1) throw new ImpairSpecError(term, 'not KEY=VALUE');
    const key = body.slice(0, eq).trim() as Key;
    const value = body.slice(eq + 1).trim();
    if (!KEYS.includes(key))
      throw new ImpairSpecError(term, `unknown fault "${key}" (one of ${KEYS.join(', ')})`);
    if (value === '') throw new ImpairSpecError(term, 'no value');
    const asked = prefix ? [prefix[1] as Direction] : null;
    if (key === 'seed' || key === 'rebind' || key === 'rebind-addr') {
      if (key === 'seed' && asked !== null)
        throw new ImpairSpecError(term, 'one seed serves both directions (no up:/down:)');
      if (key !== 'seed' && asked?.[0] === 'down')
        throw new ImpairSpecError(term, 'rebinding changes the source the server sees: up only');
      if (given.up.has(key) || (key !== 'seed' && spec.rebind !== null))
        throw new ImpairSpecError(term, key === 'seed' ? 'given twice' : 'rebinding given twice');
      given.up.set(key, term);
      if (key === 'seed') spec.seed = integer(term, value, 0, 0xffff_ffff);
      else spec.rebind = { everyMs: milliseconds(term, value, true), address: key === 'rebind-addr' };
      continue;
    }
    const directions: Direction[] = asked ?? ['up', 'down'];
    for (const d of directions) {
      if (given[d].has(key)) throw new ImpairSpecError(term, `${key} given twice for ${d}`);
      given[d].set(key, term);
    }
    const set = <K extends keyof DirectionFaults>(k: K, v: DirectionFaults[K]): void => {
      for (const d of directions) spec[d][k] = v;
    };
    switch (key) {
      case 'loss':
      case 'reorder':
      case 'duplicate':
      case 'corrupt':
        set(key, probability(term, value));
        break;
      case 'burst':
      case 'gap':
      case 'queue':
        set(key, integer(term, value, 1, 1_000_000));
        break;
      case 'mtu':
        set(key, integer(term, value, 1, 65_535));
        break;
      case 'delay':
      case 'jitter':
        set(key, milliseconds(term, value, false));
        break;
      case 'rate':
        set(key, bitRate(term, value));
        break;
      case 'drop': {
        // one list, shared by the directions it names (its later entries are pushed to it)
        dropList = [integer(term, value, 1)];
        set(key, dropList);
        break;
      }
      case 'blackhole': {
        const m = /^([^/]+)\/([^/]+)$/.exec(value);
        if (m === null) throw new ImpairSpecError(term, 'blackhole=ON_MS/OFF_MS');
        set(key, { onMs: milliseconds(term, m[1]!, true), offMs: milliseconds(term, m[2]!, true) });
        break;
      }
    }
  }
  for (const d of ['up', 'down'] as const) {
    for (const [needs, what] of COMPANIONS) {
      const term = given[d].get(needs);
      if (term !== undefined && !given[d].has(what))
        throw new ImpairSpecError(term, `${needs} shapes ${what}: give ${what} for ${d} too`);
    }
  }
  return spec;
}

/** True when a direction has nothing to do (its datagrams can skip the impairer). */
export function isClear(d: DirectionFaults): boolean {
  return (
    d.loss === 0 &&
    d.drop.length === 0 &&
    d.reorder === 0 &&
    d.duplicate === 0 &&
    d.delay === 0 &&
    d.jitter === 0 &&
    d.rate === 0 &&
    d.corrupt === 0 &&
    d.mtu === 0 &&
    d.blackhole === null
  );
}
