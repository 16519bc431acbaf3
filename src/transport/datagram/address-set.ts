/**
 * A set of addresses and CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`), asked once per
 * datagram whether its sender is in it. `net.BlockList` answers (IPv4-mapped IPv6 senders, as a
 * dual-stack socket reports IPv4 peers, match IPv4 blocks), but costs about a microsecond a
 * question, so answers are cached per address string: the senders asked about are a few
 * balancers, whose names the datagram socket already caches, so a question is one Map lookup.
 */
import { BlockList, isIP } from 'node:net';

/** Cached answers at most; beyond, the cache starts over (a flood of senders costs a BlockList check each). */
const CACHE_MAX = 4096;

/** `ERR_INVALID_ARG_VALUE`, as Node's own option checks throw it. */
function invalidEntry(entry: string): TypeError & { code: string } {
  return Object.assign(
    new TypeError(`not an IP address or CIDR block (ADDRESS/PREFIX): ${JSON.stringify(entry)}`),
    { code: 'ERR_INVALID_ARG_VALUE' },
  );
}

/** Addresses and CIDR blocks (see the file comment). */
export class AddressSet {
  readonly #list = new BlockList();
  readonly #cache = new Map<string, boolean>();
  /** The entries as given, for messages and tests. */
  readonly entries: readonly string[];

  /**
   * Throws a TypeError (`code` ERR_INVALID_ARG_VALUE) for an entry that is neither an IP literal
   * nor `LITERAL/PREFIX` with a prefix in 0..32 (IPv4) or 0..128 (IPv6).
   */
  constructor(entries: Iterable<string>) {
    const given: string[] = [];
    for (const raw of entries) {
      const entry = raw.trim();
      const slash = entry.indexOf('/');
      const address = slash === -1 ? entry : entry.slice(0, slash);
      const family = isIP(address);
      if (family === 0) throw invalidEntry(raw);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (slash === -1) this.#list.addAddress(address, type);
      else {
        const text = entry.slice(slash + 1);
        const prefix = Number(text);
        if (!/^\d{1,3}$/.test(text) || prefix > (family === 6 ? 128 : 32)) throw invalidEntry(raw);
        this.#list.addSubnet(address, prefix, type);
      }
      given.push(entry);
    }
    this.entries = given;
  }

  /** `ADDRESS[/PREFIX][,ADDRESS[/PREFIX]...]`, as the command line takes it. */
  static parse(text: string): AddressSet {
    return new AddressSet(text.split(',').filter((entry) => entry.trim().length > 0));
  }

  /** Whether an IP literal is in the set (anything else is not). */
  has(address: string): boolean {
    const cached = this.#cache.get(address);
    if (cached !== undefined) return cached;
    const family = isIP(address);
    const inSet = family !== 0 && this.#list.check(address, family === 6 ? 'ipv6' : 'ipv4');
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.set(address, inSet);
    return inSet;
  }
}
