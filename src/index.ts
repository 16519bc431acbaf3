export * from './connection/index.js';
export * from './transport/index.js';
