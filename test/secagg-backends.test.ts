/**
 * The native addon and the WASM build (bindings/wasm/pkg) against the shared test vectors of the Rust
 * crates (crates/secagg/tests/vectors.json, checked there by `cargo test`): byte-identical masks, shares,
 * quantized sums and a whole seeded SecAgg+ round; then a full round with dropouts through WASM alone,
 * rounds mixing the two backends, and the backend choice (native first, WASM fallback, says which).
 *
 * A missing WASM build FAILS these tests (it is part of the set-up:
 * `bash bindings/wasm/setup-toolchain.sh && bash bindings/wasm/build.sh`).
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chooseBackend, loadWasm, type SecAggBackend } from '../ts/core/secagg/backend.ts';
import { SecAggUnavailableError } from '../ts/core/secagg/native.ts';

const vectors = JSON.parse(readFileSync(new URL('../crates/secagg/tests/vectors.json', import.meta.url), 'utf8'));
const hex = (s: string) => Buffer.from(s, 'hex');
const toHex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

const native = chooseBackend('native').api;
let wasm: SecAggBackend | undefined;
let wasmMissing = '';
try {
  wasm = loadWasm();
} catch (error) {
  wasmMissing = (error as Error).message;
}

/** The WASM backend, or a failure saying how to build it (never a skip: CI must build it). */
function requireWasm(): SecAggBackend {
  if (!wasm) {
    throw new Error(`bindings/wasm/pkg is not built, so the WASM backend cannot be checked: ${wasmMissing}. ` +
      'Run `bash bindings/wasm/setup-toolchain.sh && bash bindings/wasm/build.sh` (CI set-up does).');
  }
  return wasm;
}

function both(): [string, SecAggBackend][] {
  return [['native', native], ['wasm', requireWasm()]];
}

/** Everything the vectors pin, computed by one backend, in a comparable (JSON) form. */
async function compute(m: SecAggBackend) {
  const expandMask = vectors.expandMask.map((v: { seed: string; len: number }) => [...m.expandMask(hex(v.seed), v.len)]);
  const unmaskAggregate = [];
  for (const v of vectors.unmaskAggregate) {
    const terms = v.terms.map((x: { seed: string; op: 'add' | 'sub' }) => ({ seed: hex(x.seed), op: x.op }));
    unmaskAggregate.push([...(await m.unmaskAggregate(Uint32Array.from(v.sum), terms, v.bits))]);
  }
  const shamirSplit = vectors.shamirSplit.map((v: { secret: string; threshold: number; n: number; seed: string }) => {
    const s = m.shamirSplit(hex(v.secret), v.threshold, v.n, hex(v.seed));
    const back = m.shamirReconstruct(s.commitments, s.shares.slice(-v.threshold));
    return { commitments: s.commitments.map(toHex), shares: s.shares.map((x) => ({ holder: x.holder, share: toHex(x.share) })), reconstructed: toHex(back) };
  });
  const qv = vectors.quantizedSum;
  const q = new m.Quantizer(qv.clip, qv.bits, qv.maxSummands);
  const quantized = qv.inputs.map((x: { values: number[]; seed: string }) => q.quantize(Float32Array.from(x.values), hex(x.seed)));
  const sum = new Uint32Array(quantized[0].length);
  const mask = 2 ** qv.bits - 1;
  for (const x of quantized) x.forEach((v: number, i: number) => { sum[i] = (sum[i] + v) & mask; });
  const deq = q.dequantizeSum(sum, quantized.length);
  const quantizedSum = {
    step: q.step, levels: q.levels, errorBound3: q.errorBound(3), quantized: quantized.map((x: Uint32Array) => [...x]),
    sum: [...sum], dequantizedSumF32Bits: [...new Uint32Array(deq.buffer, deq.byteOffset, deq.length)],
  };
  return { expandMask, unmaskAggregate, shamirSplit, quantizedSum, round: await seededRound(m) };
}

/** The seeded round of the vectors, hashing every message in the order the file documents. */
async function seededRound(m: SecAggBackend) {
  const r = vectors.round;
  const config = { ...r.config, graphSeed: hex(r.config.graphSeed) };
  const transcript = createHash('sha256');
  const log = (b: Uint8Array) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    transcript.update(len).update(b);
  };
  const neighboursOf = Object.fromEntries(config.cohort.map((id: number) => [String(id), m.neighboursOf(config, id)]));
  const server = new m.SecAggServer(config);
  const clients = new Map<number, InstanceType<SecAggBackend['SecAggClient']>>(
    config.cohort.map((id: number) => [id, new m.SecAggClient(config, id, hex(r.clientSeeds[id]))]));
  for (const c of clients.values()) {
    const msg = c.advertiseKeys();
    log(msg);
    server.receiveAdvertise(msg);
  }
  const replies = [];
  for (const { recipient, message } of server.finishAdvertise()) {
    log(message);
    replies.push(clients.get(recipient)!.shareKeys(message));
  }
  for (const msg of replies) { log(msg); server.receiveShareKeys(msg); }
  const masked: [number, Buffer][] = [];
  for (const { recipient, message } of server.finishShareKeys()) {
    log(message);
    if (r.dropAfterShareKeys.includes(recipient)) continue;
    masked.push([recipient, await clients.get(recipient)!.maskedInput(message, Uint32Array.from(r.inputs[recipient]))]);
  }
  const maskedInputSha256: Record<string, string> = {};
  for (const [id, msg] of masked) {
    log(msg);
    maskedInputSha256[id] = createHash('sha256').update(msg).digest('hex');
    server.receiveMaskedInput(msg);
  }
  const responses = [];
  for (const { recipient, message } of server.finishMaskedInput()) {
    log(message);
    responses.push(clients.get(recipient)!.unmask(message));
  }
  for (const msg of responses) { log(msg); server.receiveUnmaskResponse(msg); }
  const result = await server.finish();
  return {
    neighboursOf, transcriptSha256: transcript.digest('hex'), maskedInputSha256,
    sum: [...result.sum], included: result.included, dropped: result.dropped,
  };
}

function expected() {
  const qv = vectors.quantizedSum;
  return {
    expandMask: vectors.expandMask.map((v: { words: number[] }) => v.words),
    unmaskAggregate: vectors.unmaskAggregate.map((v: { result: number[] }) => v.result),
    shamirSplit: vectors.shamirSplit.map((v: { secret: string; commitments: string[]; shares: unknown[] }) => ({ commitments: v.commitments, shares: v.shares, reconstructed: v.secret })),
    quantizedSum: {
      step: qv.step, levels: qv.levels, errorBound3: qv.errorBound3, quantized: qv.inputs.map((x: { quantized: number[] }) => x.quantized),
      sum: qv.sum, dequantizedSumF32Bits: qv.dequantizedSumF32Bits,
    },
    round: {
      neighboursOf: vectors.round.neighboursOf, transcriptSha256: vectors.round.transcriptSha256, maskedInputSha256: vectors.round.maskedInputSha256,
      sum: vectors.round.sum, included: vectors.round.included, dropped: vectors.round.dropped,
    },
  };
}

for (const name of ['native', 'wasm'] as const) {
  test(`${name}: reproduces the crates' shared test vectors byte for byte`, async (t) => {
    const m = name === 'native' ? native : requireWasm();
    const got = await compute(m);
    const want = expected();
    for (const key of Object.keys(want) as (keyof typeof want)[]) t.deepEqual(got[key], want[key], `${name}: ${key}`);
  });
}

test('native and WASM agree with each other on every vector (same bytes, same result types)', async (t) => {
  const [[, a], [, b]] = both();
  t.deepEqual(await compute(b), await compute(a));
  // Same shapes through the one interface: Buffers out of both.
  t.true(Buffer.isBuffer(b.shamirReconstruct(...(() => {
    const s = b.shamirSplit(hex(vectors.shamirSplit[0].secret), 3, 5, hex(vectors.shamirSplit[0].seed));
    return [s.commitments, s.shares] as const;
  })())));
  t.true(b.expandMask(Buffer.alloc(32), 3) instanceof Uint32Array);
});

/** A round with random secrets, as bindings/smoke.cjs runs it on the addon; clients and server may differ. */
async function randomRound(serverSide: SecAggBackend, clientSide: SecAggBackend, n = 10, len = 5000) {
  const q = new clientSide.Quantizer(1.0, 24, n);
  const config = {
    experimentId: 'backends', round: 1, cohort: Array.from({ length: n }, (_, i) => i),
    neighbours: 6, threshold: 3, bits: 24, vectorLen: len, graphSeed: randomBytes(32),
  };
  const server = new serverSide.SecAggServer(config);
  const clients = config.cohort.map((id) => new clientSide.SecAggClient(config, id));
  const floats = clients.map(() => Float32Array.from({ length: len }, () => Math.random() * 2 - 1));
  const inputs = floats.map((x) => q.quantize(x));
  for (const c of clients) server.receiveAdvertise(c.advertiseKeys());
  for (const { recipient, message } of server.finishAdvertise()) server.receiveShareKeys(clients[recipient].shareKeys(message));
  const dropped = new Set([2, 7]);
  for (const { recipient, message } of server.finishShareKeys()) {
    if (!dropped.has(recipient)) server.receiveMaskedInput(await clients[recipient].maskedInput(message, inputs[recipient]));
  }
  for (const { recipient, message } of server.finishMaskedInput()) server.receiveUnmaskResponse(clients[recipient].unmask(message));
  const result = await server.finish();
  const plain = new Uint32Array(len);
  for (const id of result.included) for (let i = 0; i < len; i++) plain[i] = (plain[i] + inputs[id][i]) & 0xffffff;
  const mean = q.dequantizeSum(result.sum, result.included.length);
  const bound = q.errorBound(result.included.length);
  let worst = 0;
  for (let i = 0; i < len; i++) worst = Math.max(worst, Math.abs(result.included.reduce((s, id) => s + floats[id][i], 0) - mean[i]));
  return { result, plain, worst, bound, config };
}

test('wasm: a full SecAgg+ round with 20% dropout sums exactly and dequantizes within the bound', async (t) => {
  const w = requireWasm();
  const { result, plain, worst, bound, config } = await randomRound(w, w);
  t.deepEqual(result.dropped, [2, 7]);
  t.is(result.included.length, 8);
  t.deepEqual(result.sum, plain);
  t.true(worst <= bound, `worst error ${worst} > bound ${bound}`);
  // A message replayed into another round is refused with the addon's error code.
  const server2 = new w.SecAggServer({ ...config, round: 2 });
  t.throws(() => server2.receiveAdvertise(new w.SecAggClient(config, 0).advertiseKeys()), { message: /^\[WrongRound\]/ });
  // A tampered share is caught and named, as with the addon.
  const secret = Buffer.alloc(32);
  secret[0] = 42;
  const sh = w.shamirSplit(secret, 3, 5, Buffer.alloc(32, 1));
  const bad = sh.shares.slice(0, 3).map((s) => ({ holder: s.holder, share: Buffer.from(s.share) }));
  bad[1].share[0] ^= 1;
  t.throws(() => w.shamirReconstruct(sh.commitments, bad), { message: /\[InvalidShare\].*held by client 1/ });
  // Argument errors throw synchronously from maskedInput, as the addon's do.
  const c = new w.SecAggClient(config, 0);
  t.throws(() => c.maskedInput(Buffer.from([0xc0]), new Uint32Array(1)), { message: /\[Decode\]/ });
});

test('native server with WASM clients, and the reverse: the wire format is the same', async (t) => {
  const [[, n], [, w]] = both();
  for (const [server, clients] of [[n, w], [w, n]] as const) {
    const { result, plain } = await randomRound(server, clients, 6, 1000);
    t.deepEqual(result.sum, plain);
  }
});

test('backend choice: native first, WASM when the addon is missing or asked for, and it says which', (t) => {
  requireWasm();
  t.like(chooseBackend(undefined), { kind: 'native', description: 'native addon' });
  t.like(chooseBackend('wasm'), { kind: 'wasm', description: 'WASM (SECFLOW_SECAGG_BACKEND=wasm)' });
  const fallback = chooseBackend(undefined, '../../../bindings/no-such-addon.cjs');
  t.is(fallback.kind, 'wasm');
  t.regex(fallback.description, /^WASM \(native addon unavailable: .*no-such-addon/);
  t.throws(() => chooseBackend('native', '../../../bindings/no-such-addon.cjs'), { instanceOf: SecAggUnavailableError });
  t.throws(() => chooseBackend(undefined, '../../../bindings/no-such-addon.cjs', '../../../bindings/wasm/pkg/missing.js'), {
    instanceOf: SecAggUnavailableError, message: /neither loads.*bindings\/wasm\/setup-toolchain\.sh/,
  });
  t.throws(() => chooseBackend('fast'), { message: /must be native, wasm or auto/ });
});
