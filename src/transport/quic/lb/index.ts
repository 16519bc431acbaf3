export {
  parseQuicLbConfig,
  type QuicLbConfig,
  QuicLbConfigError,
  type QuicLbEncoding,
  type QuicLbRoutableConfig,
  type QuicLbUnroutableConfig,
} from './config.js';
export { decodeQuicLbServerId, QuicLbDecoder, type QuicLbDecoderConfig, quicLbConfigId } from './decoder.js';
export { encodeQuicLbCid, type QuicLbCids, quicLbCids } from './generator.js';
