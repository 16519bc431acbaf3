import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

const dir = new URL('../fixtures/certs/', import.meta.url);
export const fixturePath = (name: string): string => new URL(name, dir).pathname;
export const readFixture = (name: string): string => readFileSync(new URL(name, dir), 'utf8');

export const EC_CERT_PEM = readFixture('ec-cert.pem');
export const EC_KEY_PEM = readFixture('ec-key.pem');
export const RSA_CERT_PEM = readFixture('rsa-cert.pem');
export const RSA_KEY_PEM = readFixture('rsa-key.pem');
export const EC_CERT = new X509Certificate(EC_CERT_PEM);
export const RSA_CERT = new X509Certificate(RSA_CERT_PEM);
