/**
 * wirelayer handshake layer: sans-IO parsers of TLS, DTLS (and, in ./quic, QUIC) handshakes,
 * version and cipher tables, protocol detection and JA3/JA4 fingerprints.
 */
export * from './ciphers.js';
export * from './detect.js';
export * from './dtls/hello.js';
export * from './dtls/reassembler.js';
export * from './dtls/records.js';
export * from './errors.js';
export * from './extension-types.js';
export * from './groups.js';
export * from './ja3.js';
export * from './ja4.js';
export * from './quic/index.js';
export * from './signature-schemes.js';
export * from './tls/client-hello.js';
export * from './tls/hello-records.js';
export * from './tls/records.js';
export * from './tls/server-hello.js';
export * from './versions.js';
