/**
 * A participant's two key pairs: Ed25519 signs every message it sends (node:crypto, OpenSSL), X25519
 * receives sealed payloads (HPKE, see sealing.ts). Public keys travel as base64 of their 32 raw bytes (the
 * roster); private keys stay in the participant's kit, written 0600.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { generateSealingKeyPair } from './sealing.ts';

export interface SigningKeyPair { privateKey: KeyObject; publicKey: KeyObject }

export function generateSigningKeyPair(): SigningKeyPair {
  return generateKeyPairSync('ed25519');
}

/** The raw 32-byte Ed25519 public key as base64 (what the roster lists). */
export function signingPublicKeyB64(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url').toString('base64');
}

export function signingPublicKeyFromB64(b64: string): KeyObject {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new Error(`an Ed25519 public key has 32 bytes, this one ${raw.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

export function signingPrivateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

export function signingPrivateKeyFromPem(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the signing key is ${key.asymmetricKeyType}, not Ed25519`);
  return key;
}

export function signBytes(privateKey: KeyObject, data: Uint8Array): Uint8Array {
  return sign(null, data, privateKey);
}

export function verifyBytes(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, data, publicKey, signature);
  } catch {
    return false; // a signature of the wrong length is simply not valid
  }
}

export { generateSealingKeyPair };
