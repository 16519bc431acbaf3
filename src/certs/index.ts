export {
  CA_CERT_FILE,
  CA_FILE,
  CertificateAuthority,
  defaultConfDir,
  type IssuedCertificate,
  type IssueOptions,
} from './ca.js';
export { generateKey, type KeyOptions, type KeyType, keyToPem, privateKeyFrom } from './keys.js';
export { CertStore, type CertStoreOptions } from './store.js';
export {
  buildCertificate,
  buildCertificateDer,
  type CertificateSpec,
  keyIdentifier,
  type NameAttribute,
} from './x509.js';
