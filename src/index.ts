export * from './capture/index.js';
export * from './certs/index.js';
export * from './connection/index.js';
export * from './handshake/index.js';
export * from './inspect/index.js';
export * from './proxy/index.js';
export * from './transport/index.js';
export * from './transport/tls/index.js';
