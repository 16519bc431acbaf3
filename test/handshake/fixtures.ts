/**
 * Fixture loading and the decoding of `openssl s_client -trace` output, the independent
 * record of what was sent and received that the parsers are checked against.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const TLS_DIR = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const DTLS_DIR = fileURLToPath(new URL('../fixtures/dtls/', import.meta.url));

export function tlsStream(name: string, side: 'client' | 'server'): Uint8Array {
  return new Uint8Array(readFileSync(`${TLS_DIR}${name}.${side}.bin`));
}

export function tlsPeerOutput(name: string): string {
  return readFileSync(`${TLS_DIR}${name}.peer.txt`, 'latin1');
}

export interface Datagram {
  readonly dir: 'c' | 's';
  readonly bytes: Uint8Array;
}

export function dtlsDatagrams(name: string): Datagram[] {
  return readFileSync(`${DTLS_DIR}${name}.hex`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [dir, hex] = line.split(' ');
      return { dir: dir as 'c' | 's', bytes: new Uint8Array(Buffer.from(hex, 'hex')) };
    });
}

export function dtlsPeerOutput(name: string): string {
  return readFileSync(`${DTLS_DIR}${name}.peer.txt`, 'latin1');
}

export interface TraceMessage {
  readonly type: string;
  readonly lines: string[];
}

/** Handshake messages decoded by `-trace`, in order (both directions). */
export function traceMessages(trace: string): TraceMessage[] {
  const out: TraceMessage[] = [];
  let cur: TraceMessage | null = null;
  for (const line of trace.split('\n')) {
    const m = /^\s{4}(\w+), Length=\d+/.exec(line);
    if (m) {
      cur = { type: m[1], lines: [] };
      out.push(cur);
    } else if (/^(Sent|Received) Record/.test(line)) {
      cur = null;
    } else if (cur) cur.lines.push(line);
  }
  return out;
}

export interface TracedHello {
  readonly version: number;
  readonly ciphers: number[];
  readonly extensions: number[];
  readonly cookie: string | null;
  readonly groups: number[];
}

/** Decodes a ClientHello, ServerHello or HelloVerifyRequest block of the trace. */
export function tracedHello(msg: TraceMessage): TracedHello {
  let version = -1;
  const ciphers: number[] = [];
  const extensions: number[] = [];
  const groups: number[] = [];
  let cookie: string | null = null;
  let inCiphers = false;
  for (const line of msg.lines) {
    const v = /(?:client|server)_version=0x([0-9a-f]+)/.exec(line);
    if (v) version = Number.parseInt(v[1], 16);
    if (/cipher_suites \(len=/.test(line)) inCiphers = true;
    else if (/compression_method/.test(line)) inCiphers = false;
    const c = /\{0x([0-9A-F]{2}), 0x([0-9A-F]{2})\}/.exec(line);
    if (c && (inCiphers || /cipher_suite \{/.test(line))) ciphers.push(Number.parseInt(c[1] + c[2], 16));
    const e = /extension_type=[\w-]+\((\d+)\)/.exec(line);
    if (e) extensions.push(Number(e[1]));
    const g = /NamedGroup: .*\((\d+)\)$/.exec(line);
    if (g) groups.push(Number(g[1]));
    const k = /cookie \(len=\d+\): ?([0-9A-F]*)/.exec(line);
    if (k) cookie = k[1].toLowerCase();
  }
  return { version, ciphers, extensions, cookie, groups };
}

/** "Protocol  : TLSv1.2" and "Cipher    : ECDHE-..." of the session summary; "ALPN protocol: h2". */
export function sessionSummary(trace: string): { protocol: string; cipher: string; alpn: string | null } {
  const protocol = /^\s+Protocol\s+: (\S+)/m.exec(trace)?.[1] ?? '';
  const cipher = /^\s+Cipher\s+: (\S+)/m.exec(trace)?.[1] ?? '';
  const alpn = /^ALPN protocol: (\S+)/m.exec(trace)?.[1] ?? null;
  return { protocol, cipher, alpn };
}
