import { isIPv4, isIPv6 } from 'node:net';
import type { Address } from './types.js';

/**
 * mitmproxy's `human.format_address`: `1.2.3.4:80`, `[::1]:443`, IPv4-mapped IPv6 as IPv4,
 * an unspecified address as `*:port`, a hostname as `host:port`, none as `<no address>`.
 */
export function formatAddress(address: Address | null | undefined): string {
  if (!address) return '<no address>';
  const [host, port] = address;
  if (isIPv4(host)) return host === '0.0.0.0' ? `*:${port}` : `${host}:${port}`;
  const scope = host.indexOf('%');
  const bare = scope === -1 ? host : host.slice(0, scope);
  if (isIPv6(bare)) {
    const groups = ipv6Groups(bare);
    if (groups.every((g) => g === 0)) return `*:${port}`;
    if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
      const [a, b] = [groups[6]!, groups[7]!];
      return `${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}:${port}`;
    }
    return `[${compressIPv6(groups)}${scope === -1 ? '' : host.slice(scope)}]:${port}`;
  }
  return `${host}:${port}`;
}

/** The eight 16-bit groups of a valid IPv6 literal (a trailing dotted quad allowed). */
function ipv6Groups(text: string): number[] {
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    const [a, b, c, d] = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const gap = text.indexOf('::');
  if (gap === -1) return parse(text);
  const left = parse(text.slice(0, gap));
  const right = parse(text.slice(gap + 2));
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/**
 * RFC 5952 text of eight 16-bit groups (as Python's ipaddress prints it): lower case, leading
 * zeros dropped, the longest run of two or more zero groups (the first on a tie) as `::`.
 */
export function compressIPv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
