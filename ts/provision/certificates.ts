/**
 * The federation's X.509 material, made with @peculiar/x509 on Node's WebCrypto: a root CA (ECDSA P-256),
 * a server certificate for NATS, and one client certificate per participant (mutual TLS). The CA key never
 * leaves the provisioner's folder.
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import { isIP } from 'node:net';
import { createPrivateKey, KeyObject, randomBytes, webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface IssuedCertificate { certificatePem: string; privateKeyPem: string }
export interface CertificateAuthority extends IssuedCertificate { subject: string }

async function newKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

function privateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']) as Promise<CryptoKey>;
}

/** Random positive serial numbers (RFC 5280: unique per CA, at most 20 bytes). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return bytes.toString('hex');
}

function validity(days: number) {
  const notBefore = new Date(Date.now() - 5 * 60_000); // tolerate clocks a few minutes behind
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * DAY_MS) };
}

const escapeDn = (value: string) => value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);

export async function createCertificateAuthority(federation: string, days: number): Promise<CertificateAuthority> {
  const keys = await newKeyPair();
  const subject = `CN=FL-SecFlow federation ${escapeDn(federation)} CA, O=FL-SecFlow`;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(), name: subject, ...validity(days), keys, signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { subject, certificatePem: certificate.toString('pem'), privateKeyPem: privateKeyPem(keys.privateKey) };
}

export interface LeafRequest {
  ca: CertificateAuthority;
  commonName: string;
  organizationalUnit: string;
  days: number;
  /** Server certificates: the DNS names and IP addresses clients connect to. */
  hosts?: string[];
}

export async function issueCertificate(request: LeafRequest): Promise<IssuedCertificate> {
  const keys = await newKeyPair();
  const caCertificate = new x509.X509Certificate(request.ca.certificatePem);
  const server = !!request.hosts;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
    await x509.AuthorityKeyIdentifierExtension.create(caCertificate, false),
  ];
  if (server) {
    extensions.push(new x509.SubjectAlternativeNameExtension(request.hosts!.map((h) => ({ type: isIP(h) ? 'ip' : 'dns', value: h }) as const)));
  }
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${escapeDn(request.commonName)}, OU=${escapeDn(request.organizationalUnit)}, O=FL-SecFlow`,
    issuer: caCertificate.subject,
    ...validity(request.days),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: await importPrivateKey(request.ca.privateKeyPem),
    extensions,
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: privateKeyPem(keys.privateKey) };
}
