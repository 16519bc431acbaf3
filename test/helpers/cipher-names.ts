/**
 * IANA cipher suite names from outside the code under test, so no test compares our cipher
 * table with itself: OpenSSL's own mapping (`openssl ciphers -stdname`) for the names openssl
 * prints, and Wireshark's (`tshark -G values`) for suite codes. Each lookup of an unknown name
 * or code throws, so a missing name can never make two nulls compare equal.
 */
import { execFileSync } from 'node:child_process';

let openssl: Map<string, string> | null = null;
let wireshark: Map<number, string> | null = null;

/** The IANA name OpenSSL gives its own cipher name (`ECDHE-RSA-AES256-GCM-SHA384`, or a TLS 1.3 name). */
export function opensslStandardName(name: string): string {
  if (openssl === null) {
    openssl = new Map();
    const out = execFileSync('openssl', ['ciphers', '-stdname', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'], {
      encoding: 'utf8',
    });
    for (const line of out.split('\n')) {
      const m = /^(\S+)\s+-\s+(\S+)/.exec(line);
      if (m) openssl.set(m[2]!, m[1]!);
    }
  }
  const found = openssl.get(name);
  if (found === undefined) throw new Error(`openssl has no standard name for cipher ${name}`);
  return found;
}

/** Wireshark's name for a cipher suite code (its `tls.handshake.ciphersuite` value strings). */
export function wiresharkCipherName(code: number): string {
  if (wireshark === null) {
    wireshark = new Map();
    // the whole dump is ~90 MB: let grep keep the one field's lines
    const out = execFileSync(
      'sh',
      ['-c', "tshark -G values 2>/dev/null | grep -P '^V\\ttls\\.handshake\\.ciphersuite\\t'"],
      {
        encoding: 'utf8',
      },
    );
    for (const line of out.split('\n')) {
      const m = /^V\ttls\.handshake\.ciphersuite\t(\d+)\t(\S+)/.exec(line);
      if (m) wireshark.set(Number(m[1]), m[2]!);
    }
  }
  const found = wireshark.get(code);
  if (found === undefined)
    throw new Error(`tshark has no name for cipher suite 0x${code.toString(16).padStart(4, '0')}`);
  return found;
}
