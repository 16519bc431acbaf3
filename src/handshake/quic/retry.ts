import { createDecipheriv } from 'node:crypto';
import type { RetryPacket } from './header.js';
import { versionParameters } from './version.js';

/**
 * Checks a Retry packet's integrity tag (RFC 9001, 5.8; RFC 9369, 3.3.3): AES-128-GCM with
 * the version's fixed key and nonce over the Retry pseudo-packet, which prefixes the packet
 * with the client's original Destination Connection ID. `datagram` is the datagram `retry`
 * was parsed from.
 */
export function verifyRetryIntegrity(
  datagram: Uint8Array,
  retry: RetryPacket,
  originalDcid: Uint8Array,
): boolean {
  const { retryKey, retryNonce } = versionParameters(retry.version);
  const withoutTag = datagram.subarray(
    retry.offset,
    retry.offset + retry.packetLength - retry.integrityTag.length,
  );
  const pseudo = new Uint8Array(1 + originalDcid.length + withoutTag.length);
  pseudo[0] = originalDcid.length;
  pseudo.set(originalDcid, 1);
  pseudo.set(withoutTag, 1 + originalDcid.length);
  const decipher = createDecipheriv('aes-128-gcm', retryKey, retryNonce, { authTagLength: 16 });
  decipher.setAAD(pseudo);
  decipher.setAuthTag(retry.integrityTag);
  try {
    decipher.final();
    return true;
  } catch {
    return false;
  }
}
