// End-to-end smoke test of the native addon: one SecAgg+ round with
// dropout, through msgpack Buffers, checked against the plain sum.
//   usage: bash bindings/build.sh --quiet && node bindings/smoke.cjs
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const m = require('./native.cjs');

async function main() {
  // Test vector: AES-256-CTR keystream for the zero seed (dc95c078...).
  assert.deepEqual([...m.expandMask(Buffer.alloc(32), 2)], [0x78c095dc, 0x898940a2]);

  // Shamir with a wrong share detected.
  const secret = Buffer.alloc(32, 0);
  secret[0] = 42;
  const sh = m.shamirSplit(secret, 3, 5, Buffer.alloc(32, 1));
  assert.equal(sh.commitments.length, 3);
  assert.deepEqual(m.shamirReconstruct(sh.commitments, sh.shares.slice(2)), secret);
  const bad = sh.shares.slice(0, 3).map((s) => ({ holder: s.holder, share: Buffer.from(s.share) }));
  bad[1].share[0] ^= 1;
  assert.throws(() => m.shamirReconstruct(sh.commitments, bad), /\[InvalidShare\].*held by client 1/);

  const n = 10;
  const len = 10000;
  const q = new m.Quantizer(1.0, 24, n);
  const config = {
    experimentId: 'smoke',
    round: 1,
    cohort: Array.from({ length: n }, (_, i) => i),
    neighbours: 6,
    threshold: 3,
    bits: 24,
    vectorLen: len,
    graphSeed: Buffer.alloc(32, 9),
  };
  const server = new m.SecAggServer(config);
  const clients = config.cohort.map((id) => new m.SecAggClient(config, id));
  const floats = clients.map(() => Float32Array.from({ length: len }, () => Math.random() * 2 - 1));
  const inputs = floats.map((x) => q.quantize(x));

  for (const c of clients) server.receiveAdvertise(c.advertiseKeys());
  for (const { recipient, message } of server.finishAdvertise()) {
    server.receiveShareKeys(clients[recipient].shareKeys(message));
  }
  const dropped = new Set([2, 7]); // 20% drop after sharing keys
  for (const { recipient, message } of server.finishShareKeys()) {
    if (dropped.has(recipient)) continue;
    server.receiveMaskedInput(await clients[recipient].maskedInput(message, inputs[recipient]));
  }
  for (const { recipient, message } of server.finishMaskedInput()) {
    server.receiveUnmaskResponse(clients[recipient].unmask(message));
  }
  const t0 = performance.now();
  const result = await server.finish();
  const ms = performance.now() - t0;

  assert.deepEqual(result.dropped, [2, 7]);
  assert.equal(result.included.length, n - 2);
  const plain = new Uint32Array(len);
  for (const id of result.included) for (let i = 0; i < len; i++) plain[i] = (plain[i] + inputs[id][i]) & 0xffffff;
  assert.deepEqual(result.sum, plain);
  const mean = q.dequantizeSum(result.sum, result.included.length);
  const bound = q.errorBound(result.included.length);
  for (let i = 0; i < len; i++) {
    const exact = result.included.reduce((s, id) => s + floats[id][i], 0);
    assert.ok(Math.abs(exact - mean[i]) <= bound, `coordinate ${i}`);
  }

  // Replayed message from this round into a new round is rejected clearly.
  const server2 = new m.SecAggServer({ ...config, round: 2 });
  assert.throws(() => server2.receiveAdvertise(new m.SecAggClient(config, 0).advertiseKeys()), /\[WrongRound\]/);

  console.log(`smoke: ok (unmask of ${len} words with 2 dropouts in ${ms.toFixed(1)} ms)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
