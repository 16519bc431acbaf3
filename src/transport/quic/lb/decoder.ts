/**
 * What a QUIC-LB load balancer does with a connection ID: read the config ID from the first
 * octet and recover the server ID (in clear, one AES block, or three or four Feistel passes).
 * Here for tests, tools and balancers written on wirelayer; servers never decode.
 */
import { type QuicLbRoutableConfig, type ResolvedQuicLbConfig, resolveQuicLbConfig } from './config.js';
import { FourPass } from './four-pass.js';
import { SINGLE_PASS_LENGTH, SinglePass } from './single-pass.js';

/** The config rotation codepoint of an ID (0..6; 7: unroutable), or -1 for an empty one. */
export function quicLbConfigId(cid: Uint8Array): number {
  return cid.length === 0 ? -1 : cid[0]! >> 5;
}

/** What a balancer knows of a configuration: the lengths and the key, not any one server's ID. */
export interface QuicLbDecoderConfig {
  readonly configId: number;
  readonly serverIdLength: number;
  readonly nonceLength: number;
  readonly key?: Uint8Array | null;
}

/** Decodes the IDs of one routable configuration. */
export class QuicLbDecoder {
  readonly config: ResolvedQuicLbConfig;
  readonly #single: SinglePass | null;
  readonly #four: FourPass | null;
  readonly #scratch: Buffer;

  constructor(config: QuicLbRoutableConfig | QuicLbDecoderConfig) {
    this.config = resolveQuicLbConfig(
      'serverIdLength' in config ? { ...config, serverId: new Uint8Array(config.serverIdLength) } : config,
    );
    const key = this.config.key;
    const length = this.config.cidLength - 1;
    this.#single = key !== null && length === SINGLE_PASS_LENGTH ? new SinglePass(key) : null;
    this.#four = key !== null && length !== SINGLE_PASS_LENGTH ? new FourPass(key, length, 1) : null;
    this.#scratch = Buffer.alloc(length);
  }

  /**
   * The server ID `cid` carries, or null when it is not this configuration's: another config
   * ID (0b111 included) or too short. Longer IDs decode (a server may append octets).
   */
  serverId(cid: Uint8Array): Buffer | null {
    const config = this.config;
    if (cid.length < config.cidLength || quicLbConfigId(cid) !== config.configId) return null;
    const sidLength = config.serverId.length;
    const length = config.cidLength - 1;
    const body = cid.subarray(1, 1 + length);
    if (this.#single !== null) return this.#single.decrypt(body).subarray(0, sidLength);
    if (this.#four !== null) {
      const scratch = this.#scratch;
      scratch.set(body);
      this.#four.decrypt(scratch, 0, length, 1, sidLength);
      return Buffer.from(scratch.subarray(0, sidLength));
    }
    return Buffer.from(body.subarray(0, sidLength));
  }
}

/** The server ID in `cid` under `config`, or null (see `QuicLbDecoder.serverId`). */
export function decodeQuicLbServerId(
  cid: Uint8Array,
  config: QuicLbRoutableConfig | QuicLbDecoderConfig,
): Buffer | null {
  return new QuicLbDecoder(config).serverId(cid);
}
