/**
 * The oracle: what tshark (which dissects TLS, DTLS and, decrypting Initials itself, QUIC)
 * reads from the hellos of a capture, put in the shape of an inspect record. Only the cipher
 * names come from wirelayer's IANA table; versions, GREASE and JA4 are worked out here anew.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { wiresharkCipherName } from '../helpers/cipher-names.js';

export const TSHARK = '/usr/bin/tshark';

const HRR_RANDOM = 'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c';

/** What tshark shows of one connection, with inspect's keys (ja4 computed from tshark's fields). */
export interface TsharkRecord {
  protocol: 'tls' | 'dtls' | 'quic';
  client: [string, number];
  server: [string, number];
  sni: string | null;
  alpn_offers: string[];
  offered_ciphers: string[];
  tls_version: string | null;
  cipher: string | null;
  alpn: string | null;
  ja3: string | null;
  ja4: string | null;
  /** tshark's JA3 string, to compare with ours before hashing. */
  ja3_full: string | null;
}

const FIELDS = [
  'frame.protocols',
  'ip.src',
  'ipv6.src',
  'ip.dst',
  'ipv6.dst',
  'tcp.srcport',
  'udp.srcport',
  'tcp.dstport',
  'udp.dstport',
  'quic.version',
  'P.handshake.type',
  'P.handshake.extensions_server_name',
  'P.handshake.extensions_alpn_str',
  'P.handshake.ciphersuite',
  'P.handshake.version',
  'P.handshake.extensions.supported_version',
  'P.handshake.extension.type',
  'P.handshake.sig_hash_alg',
  'P.handshake.ja3',
  'P.handshake.ja3_full',
  'P.handshake.random',
] as const;
type Field = (typeof FIELDS)[number];
type Row = Record<Field, string[]>;

function rows(file: string, prefix: 'tls' | 'dtls'): Row[] {
  const fields = FIELDS.map((f) => f.replace(/^P\./, `${prefix}.`));
  const out = execFileSync(
    TSHARK,
    [
      '-r',
      file,
      '-Y',
      `${prefix}.handshake.type == 1 or ${prefix}.handshake.type == 2`,
      '-T',
      'fields',
      '-E',
      'occurrence=a',
      '-E',
      'aggregator=|',
      ...fields.flatMap((f) => ['-e', f]),
    ],
    { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return out
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const cells = line.split('\t');
      const row = {} as Row;
      FIELDS.forEach((f, i) => {
        row[f] = cells[i] ? cells[i]!.split('|') : [];
      });
      return row;
    });
}

const isGrease = (v: number) => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
const num = (s: string) => Number.parseInt(s, s.startsWith('0x') ? 16 : 10);

const VERSION_NAMES: Record<number, string> = {
  768: 'SSLv3',
  769: 'TLSv1',
  770: 'TLSv1.1',
  771: 'TLSv1.2',
  772: 'TLSv1.3',
  65279: 'DTLSv1',
  65277: 'DTLSv1.2',
  65276: 'DTLSv1.3',
};

/** Every connection with a ClientHello, in the order tshark first shows each. */
export function tsharkRecords(file: string): TsharkRecord[] {
  const records = new Map<string, TsharkRecord>();
  for (const prefix of ['tls', 'dtls'] as const) {
    for (const row of rows(file, prefix)) {
      const src: [string, number] = [
        (row['ip.src'][0] ?? row['ipv6.src'][0])!,
        num((row['tcp.srcport'][0] ?? row['udp.srcport'][0])!),
      ];
      const dst: [string, number] = [
        (row['ip.dst'][0] ?? row['ipv6.dst'][0])!,
        num((row['tcp.dstport'][0] ?? row['udp.dstport'][0])!),
      ];
      const types = row['P.handshake.type'].map(num);
      const quic = row['frame.protocols'][0]!.split(':').includes('quic');
      // DTLS fragments: the fields come with the frame that completes the message.
      if (row['P.handshake.ciphersuite'].length === 0) continue;
      if (types.includes(1)) {
        const key = JSON.stringify([src, dst]);
        if (records.has(key)) continue; // a repeated hello (cookie, HelloRetryRequest): the first counts
        records.set(
          key,
          clientHelloRecord(row, prefix === 'dtls' ? 'dtls' : quic ? 'quic' : 'tls', src, dst),
        );
      } else if (types.includes(2)) {
        const record = records.get(JSON.stringify([dst, src]));
        if (record === undefined || row['P.handshake.random'][0] === HRR_RANDOM) continue;
        const supported = row['P.handshake.extensions.supported_version'][0];
        const version = num((supported ?? row['P.handshake.version'][0])!);
        record.tls_version = quic
          ? ({ 1: 'QUICv1', 1798521807: 'QUICv2' } as Record<number, string>)[num(row['quic.version'][0]!)]!
          : (VERSION_NAMES[version] ?? null);
        record.cipher = cipherName(num(row['P.handshake.ciphersuite'][0]!));
        record.alpn = row['P.handshake.extensions_alpn_str'][0] ?? null;
      }
    }
  }
  return [...records.values()];
}

/** tshark's own name for the suite, so the comparison with `inspect` is not our table against itself. */
function cipherName(code: number): string {
  return wiresharkCipherName(code);
}

function clientHelloRecord(
  row: Row,
  protocol: TsharkRecord['protocol'],
  client: [string, number],
  server: [string, number],
): TsharkRecord {
  const ciphers = row['P.handshake.ciphersuite'].map(num).filter((c) => !isGrease(c));
  const extensions = row['P.handshake.extension.type'].map(num).filter((e) => !isGrease(e));
  const alpn = row['P.handshake.extensions_alpn_str'];
  return {
    protocol,
    client,
    server,
    sni: row['P.handshake.extensions_server_name'][0] ?? null,
    alpn_offers: alpn,
    offered_ciphers: ciphers.map(cipherName),
    tls_version: null,
    cipher: null,
    alpn: null,
    ja3: row['P.handshake.ja3'][0] ?? null,
    ja3_full: row['P.handshake.ja3_full'][0] ?? null,
    ja4: ja4(protocol, row, ciphers, extensions, alpn[0]),
  };
}

/** JA4 (FoxIO's technical_details/JA4.md) from tshark's fields of a ClientHello. */
function ja4(
  protocol: TsharkRecord['protocol'],
  row: Row,
  ciphers: number[],
  extensions: number[],
  firstAlpn: string | undefined,
): string {
  const versions = row['P.handshake.extensions.supported_version'].map(num).filter((v) => !isGrease(v));
  const legacy = num(row['P.handshake.version'][0]!);
  // Newest offered: DTLS codes count down.
  const dtls = protocol === 'dtls';
  const newest = versions.length
    ? versions.reduce((a, b) => (dtls ? Math.min(a, b) : Math.max(a, b)))
    : legacy;
  const code =
    { 772: '13', 771: '12', 770: '11', 769: '10', 768: 's3', 65279: 'd1', 65277: 'd2', 65276: 'd3' }[
      newest
    ] ?? '00';
  const two = (n: number) => String(Math.min(n, 99)).padStart(2, '0');
  const alpn = firstAlpn ? firstAlpn[0]! + firstAlpn[firstAlpn.length - 1]! : '00';
  const a = `${protocol[0]}${code}${extensions.includes(0) ? 'd' : 'i'}${two(ciphers.length)}${two(extensions.length)}${alpn}`;
  const hex = (v: number) => v.toString(16).padStart(4, '0');
  const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
  const b = [...ciphers]
    .sort((x, y) => x - y)
    .map(hex)
    .join(',');
  const exts = extensions
    .filter((e) => e !== 0 && e !== 16)
    .sort((x, y) => x - y)
    .map(hex)
    .join(',');
  const sigs = row['P.handshake.sig_hash_alg']
    .map(num)
    .filter((s) => !isGrease(s))
    .map(hex)
    .join(',');
  return `${a}_${hash(b)}_${hash(sigs ? `${exts}_${sigs}` : exts)}`;
}
