/**
 * A stateless refusal: a server Initial carrying CONNECTION_CLOSE, protected with the Initial
 * keys of the client's first DCID (RFC 9001, 5.2), so the client learns at once why it was
 * refused instead of timing out. No engine, no state.
 */
import {
  deriveInitialKeys,
  encodeVarint,
  longPacketTypeBits,
  type QuicVersion,
} from '../../handshake/quic/index.js';
import { newCid } from './cid.js';

const PN_LENGTH = 4;
const TAG_LENGTH = 16;

/** The datagram; `errorCode` is a transport error code (CONNECTION_CLOSE type 0x1c). */
export function connectionCloseInitial(
  version: QuicVersion,
  clientDcid: Uint8Array,
  clientScid: Uint8Array,
  errorCode: number,
  reason: string,
): Buffer {
  const keys = deriveInitialKeys(version, clientDcid);
  const why = Buffer.from(reason.slice(0, 64));
  let payload = Buffer.concat([
    Buffer.of(0x1c),
    encodeVarint(errorCode),
    encodeVarint(0), // frame type: none in particular
    encodeVarint(why.length),
    why,
  ]);
  // the header protection sample needs 16 bytes after the packet number's first 4
  if (payload.length + TAG_LENGTH < 20)
    payload = Buffer.concat([payload, Buffer.alloc(20 - TAG_LENGTH - payload.length)]);
  const scid = newCid();
  const header = Buffer.concat([
    Buffer.of(0xc0 | (longPacketTypeBits(version, 'initial') << 4) | (PN_LENGTH - 1)),
    Buffer.from([version >>> 24, (version >>> 16) & 0xff, (version >>> 8) & 0xff, version & 0xff]),
    Buffer.of(clientScid.length),
    clientScid,
    Buffer.of(scid.length),
    scid,
    encodeVarint(0), // token length
    encodeVarint(PN_LENGTH + payload.length + TAG_LENGTH, 2),
    Buffer.alloc(PN_LENGTH), // packet number 0
  ]);
  const sealed = keys.server.seal(0, header, payload);
  const mask = keys.server.headerMask(sealed.subarray(PN_LENGTH - PN_LENGTH, TAG_LENGTH));
  const pnAt = header.length - PN_LENGTH;
  header[0] = header[0]! ^ (mask[0]! & 0x0f);
  for (let i = 0; i < PN_LENGTH; i++) header[pnAt + i] = header[pnAt + i]! ^ mask[1 + i]!;
  return Buffer.concat([header, sealed]);
}
