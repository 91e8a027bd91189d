/**
 * Sealing a payload to one receiver: HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * AES-256-GCM, from @hpke/core. Only the holder of the receiver's X25519 private key can open it, so the
 * operator of the NATS server in between (TLS ends there) learns nothing. The header of the envelope is the
 * HPKE `info` and the AEAD's associated data, so a sealed body cannot be moved under another header.
 * Sender authenticity comes from the envelope's Ed25519 signature, not from here.
 */
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });

export interface SealingKeyPair { publicKey: Uint8Array; privateKey: Uint8Array }
export interface Sealed { enc: Uint8Array; ct: Uint8Array }

export async function generateSealingKeyPair(): Promise<SealingKeyPair> {
  const pair = await suite.kem.generateKeyPair();
  return {
    publicKey: new Uint8Array(await suite.kem.serializePublicKey(pair.publicKey)),
    privateKey: new Uint8Array(await suite.kem.serializePrivateKey(pair.privateKey)),
  };
}

/** A receiver's public key, parsed once (deserializing costs more than sealing). */
export class SealingPublicKey {
  private key?: Promise<CryptoKey>;
  constructor(readonly raw: Uint8Array) {
    if (raw.length !== 32) throw new Error(`an X25519 public key has 32 bytes, this one ${raw.length}`);
  }

  async seal(header: Uint8Array, plaintext: Uint8Array): Promise<Sealed> {
    this.key ??= suite.kem.deserializePublicKey(this.raw);
    const { enc, ct } = await suite.seal({ recipientPublicKey: await this.key, info: header }, plaintext, header);
    return { enc: new Uint8Array(enc), ct: new Uint8Array(ct) };
  }
}

export class SealingPrivateKey {
  private readonly key: Promise<CryptoKey>;
  constructor(raw: Uint8Array) {
    if (raw.length !== 32) throw new Error(`an X25519 private key has 32 bytes, this one ${raw.length}`);
    this.key = suite.kem.deserializePrivateKey(raw);
  }

  /** Throws when the payload was not sealed to this key under this header. */
  async open(header: Uint8Array, sealed: Sealed): Promise<Uint8Array> {
    const plaintext = await suite.open({ recipientKey: await this.key, enc: sealed.enc, info: header }, sealed.ct, header);
    return new Uint8Array(plaintext);
  }
}
