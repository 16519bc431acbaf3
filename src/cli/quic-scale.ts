/**
 * The flags of a QUIC listener behind a load balancer, shared by `listen` and `proxy`:
 * `--quic-lb` (QUIC-LB connection IDs) and `--quic-secrets` (keys shared between instances).
 */
import type { CidGenerator } from '../transport/quic/cid.js';
import { parseQuicLbConfig, QuicLbConfigError, quicLbCids } from '../transport/quic/lb/index.js';
import { type QuicSecrets, QuicSecretsError, readQuicSecrets } from '../transport/quic/secrets.js';
import { UsageError } from './args.js';

export const quicScaleOptions = {
  'quic-lb': { type: 'string' },
  'quic-secrets': { type: 'string' },
} as const;

export const quicScaleUsage = `  --quic-lb SPEC        QUIC connection IDs a QUIC-LB balancer routes here (draft-ietf-quic-load-balancers):
                        CONFIG_ID:SERVER_ID_HEX:NONCE_LEN[:KEY_HEX], config 0..6, server ID 1..15 octets,
                        nonce 4..18 (both <= 19), a 16-octet AES key to encrypt them; or unroutable[:LENGTH]
                        (0b111 IDs: 4-tuple routing, no migration)
  --quic-secrets FILE   keys shared with the other instances behind the balancer, a JSON object
                        {"statelessResetKey": HEX, "tokenKey": HEX}, 32 octets or more each: Retry tokens
                        of any instance are good at all, and any resets connections another one held`;

export interface QuicScaleValues {
  'quic-lb'?: string;
  'quic-secrets'?: string;
}

/** The listener options the flags ask for; usage errors for a bad spec or file. */
export function quicScaleSettings(values: QuicScaleValues): { cids?: CidGenerator; secrets?: QuicSecrets } {
  const settings: { cids?: CidGenerator; secrets?: QuicSecrets } = {};
  try {
    if (values['quic-lb'] !== undefined) settings.cids = quicLbCids(parseQuicLbConfig(values['quic-lb']));
  } catch (e) {
    if (e instanceof QuicLbConfigError) throw new UsageError(`--quic-lb: ${e.message}`);
    throw e;
  }
  try {
    if (values['quic-secrets'] !== undefined) settings.secrets = readQuicSecrets(values['quic-secrets']);
  } catch (e) {
    if (e instanceof QuicSecretsError) throw new UsageError(`--quic-secrets: ${e.message}`);
    throw e;
  }
  return settings;
}
