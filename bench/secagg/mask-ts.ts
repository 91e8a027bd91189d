/**
 * Plain TypeScript masking, the same arithmetic as crates/secagg (prg.rs + masking.rs):
 * mask word i of seed s = little-endian u32 at bytes 4i..4i+4 of AES-256-CTR(key = s, 128-bit big-endian counter
 * starting from the all-zero block), i.e. OpenSSL's 'aes-256-ctr' with a zero IV; masks are added/subtracted mod 2^32
 * and the result reduced mod 2^bits. The keystream comes from node:crypto (OpenSSL, AES-NI), the adds from JS.
 */
import { createCipheriv } from 'node:crypto';
import { endianness } from 'node:os';

if (endianness() !== 'LE') throw new Error('mask-ts assumes a little-endian machine');

export type Op = 'add' | 'sub';
export interface Term {
  seed: Buffer;
  op: Op;
}

const BLOCK_WORDS = 16 * 1024; // 64 KiB of keystream per cipher.update (stays in L2)
const ZEROS = Buffer.alloc(BLOCK_WORDS * 4);
const ZERO_IV = Buffer.alloc(16);

function words(buf: Buffer, n: number): Uint32Array {
  if (buf.byteOffset % 4 === 0) return new Uint32Array(buf.buffer, buf.byteOffset, n);
  return new Uint32Array(Uint8Array.from(buf).buffer, 0, n);
}

/** First len words of the mask of seed (for checking against native.expandMask). */
export function expandMaskTs(seed: Buffer, len: number): Uint32Array {
  const c = createCipheriv('aes-256-ctr', seed, ZERO_IV);
  const out = new Uint32Array(len);
  for (let off = 0; off < len; off += BLOCK_WORDS) {
    const n = Math.min(BLOCK_WORDS, len - off);
    out.set(words(c.update(ZEROS.subarray(0, n * 4)), n), off);
  }
  return out;
}

/** acc ±= mask(seed) mod 2^32, one keystream block at a time. */
export function applyMaskTs(acc: Uint32Array, term: Term): void {
  const c = createCipheriv('aes-256-ctr', term.seed, ZERO_IV);
  const len = acc.length;
  for (let off = 0; off < len; off += BLOCK_WORDS) {
    const n = Math.min(BLOCK_WORDS, len - off);
    const ks = words(c.update(n === BLOCK_WORDS ? ZEROS : ZEROS.subarray(0, n * 4)), n);
    if (term.op === 'add') for (let i = 0; i < n; i++) acc[off + i] += ks[i]!;
    else for (let i = 0; i < n; i++) acc[off + i] -= ks[i]!;
  }
}

export function reduce(acc: Uint32Array, bits: number): void {
  if (bits >= 32) return;
  const m = (2 ** bits - 1) >>> 0;
  for (let i = 0; i < acc.length; i++) acc[i] &= m;
}

/** Director: remove the terms from a copy of sum, reduce mod 2^bits. */
export function unmaskAggregateTs(sum: Uint32Array, terms: Term[], bits: number): Uint32Array {
  const acc = sum.slice();
  for (const t of terms) applyMaskTs(acc, t);
  reduce(acc, bits);
  return acc;
}

/** acc += x mod 2^32 (the plain sum baseline and the director's aggregation of masked inputs). */
export function addInto(acc: Uint32Array, x: Uint32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] += x[i]!;
}

/** Raw OpenSSL AES-256-CTR keystream, bytes/s on one core (64 KiB updates, like applyMaskTs). */
export function opensslKeystreamRate(totalBytes: number): number {
  const c = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), ZERO_IV);
  c.update(ZEROS); // warm-up
  const t0 = performance.now();
  let done = 0;
  while (done < totalBytes) {
    c.update(ZEROS);
    done += ZEROS.length;
  }
  return done / ((performance.now() - t0) / 1000);
}
