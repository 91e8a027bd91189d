/**
 * The Rust addon as TypeScript sees it: the same known-answer vectors the crates' `cargo test` checks
 * (crates/secagg/src/prg.rs), so native and Rust agree byte for byte, plus a whole SecAgg+ round.
 */
import test from 'ava';
import { createRequire } from 'node:module';
import type * as Native from '../bindings/native.d.cts';

const native = createRequire(import.meta.url)('../bindings/native.cjs') as typeof Native;

test('mask PRG known answers match the Rust crate (AES-256-CTR, zero and counting seeds)', (t) => {
  t.deepEqual([...native.expandMask(Buffer.alloc(32), 4)], [0x78c095dc, 0x898940a2, 0x14a248ad, 0x87208492]);
  const counting = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  t.deepEqual([...native.expandMask(counting, 4)], [3053490418, 3500099882, 1788539817, 2155294429]);
});

test('Shamir: any t shares rebuild the secret, a tampered share is caught and named', (t) => {
  const secret = Buffer.alloc(32);
  secret[0] = 42;
  const split = native.shamirSplit(secret, 3, 5, Buffer.alloc(32, 1));
  t.deepEqual(native.shamirReconstruct(split.commitments, split.shares.slice(2)), secret);
  t.deepEqual(native.shamirReconstruct(split.commitments, [split.shares[0], split.shares[2], split.shares[4]]), secret);
  const bad = split.shares.slice(0, 3).map((s) => ({ holder: s.holder, share: Buffer.from(s.share) }));
  bad[1].share[0] ^= 1;
  t.throws(() => native.shamirReconstruct(split.commitments, bad), { message: /\[InvalidShare\]/ });
});

test('quantized sums dequantize to the float sum within the stated bound', (t) => {
  const n = 5;
  const q = new native.Quantizer(1.0, 32, n);
  const xs = Array.from({ length: n }, (_, k) => Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * (k + 1)) * 0.9));
  const sum = new Uint32Array(1000);
  for (const x of xs) q.quantize(x, Buffer.alloc(32, 3)).forEach((v, i) => { sum[i] = (sum[i] + v) >>> 0; });
  const back = q.dequantizeSum(sum, n);
  const bound = q.errorBound(n);
  const worst = Math.max(...Array.from(back, (v, i) => Math.abs(v - xs.reduce((s, x) => s + x[i], 0))));
  t.true(worst <= bound, `worst error ${worst} > bound ${bound}`);
});
