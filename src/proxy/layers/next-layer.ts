/**
 * The next-layer decision, mitmproxy's order (addons/next_layer.py): the ignore/allow check
 * comes first (on the server address and the SNI); a flow it ignores is relayed raw, else the
 * mode's scheme picks the layers (`tls`/`dtls`/`quic` terminate both legs). Pure: no sockets.
 */
import type { Address } from '../../connection/index.js';

/** `--ignore-hosts` / `--allow-hosts`: regular expressions, matched case-insensitively anywhere. */
export interface HostPatterns {
  ignoreHosts?: readonly (string | RegExp)[];
  allowHosts?: readonly (string | RegExp)[];
}

/** What a flow is checked on: the server's address (and peername once known), and the SNI. */
export interface HostCandidates {
  address: Address;
  peername?: Address | null;
  sni?: string | null;
}

/** Case-insensitive, and stateless (`g` and `y` would make `test` remember where it stopped). */
const compile = (p: string | RegExp): RegExp =>
  typeof p === 'string' ? new RegExp(p, 'i') : new RegExp(p.source, `${p.flags.replace(/[giy]/g, '')}i`);

/**
 * mitmproxy's `ignore_hosts` and `allow_hosts`: each pattern is searched (not anchored) in
 * `host:port` of the server's peername, of its address, and of the SNI with the address's port.
 * A flow is ignored (passed through) when allow patterns exist and none matches any candidate,
 * or when an ignore pattern matches one.
 */
export class HostFilter {
  readonly #ignore: RegExp[];
  readonly #allow: RegExp[];

  constructor(patterns: HostPatterns = {}) {
    this.#ignore = (patterns.ignoreHosts ?? []).map(compile);
    this.#allow = (patterns.allowHosts ?? []).map(compile);
  }

  /** Whether any pattern was given (without, nothing is ever ignored). */
  get active(): boolean {
    return this.#ignore.length > 0 || this.#allow.length > 0;
  }

  /** True when the flow must be passed through untouched. */
  ignores(c: HostCandidates): boolean {
    if (!this.active) return false;
    const [host, port] = c.address;
    // mitmproxy's f"{host}:{port}", IPv6 without brackets
    const names = [`${host}:${port}`];
    if (c.peername) names.unshift(`${c.peername[0]}:${c.peername[1]}`);
    if (c.sni) names.push(`${c.sni}:${port}`);
    const matches = (list: RegExp[]): boolean => list.some((re) => names.some((n) => re.test(n)));
    if (this.#allow.length > 0 && !matches(this.#allow)) return true;
    return this.#ignore.length > 0 && matches(this.#ignore);
  }
}
