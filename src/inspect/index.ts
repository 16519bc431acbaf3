/**
 * `wirelayer inspect`, sans-IO: every TLS (over TCP), DTLS and QUIC connection in a pcap/pcapng
 * capture, each as one record of what its ClientHello offered and its ServerHello chose.
 *
 * ```ts
 * const { records, notes, error } = inspectCapture(await readFile('handshakes.pcapng'));
 * for (const r of records) console.log(r.protocol, r.sni, r.tls_version, r.cipher, r.ja4);
 * if (error) console.error(describeCaptureError(error)); // records hold what came before it
 * ```
 */
export { describeCaptureError, formatEndpoint, formatTable, recordJson } from './format.js';
export { type InspectNote, type InspectResult, inspectCapture, inspectFlow } from './inspect.js';
export {
  cipherLabel,
  type HelloFields,
  helloFields,
  INSPECT_RECORD_KEYS,
  type InspectedConnection,
  type InspectProtocol,
  type InspectRecord,
} from './record.js';
