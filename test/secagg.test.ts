/**
 * Secure aggregation glue (ts/core/secagg) with the native addon, in process: the same participant and
 * aggregator classes the envoys and the director drive over NATS, wired directly.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import { SecAggSchema } from '../ts/core/config/experiment.ts';
import { SecureAggregator } from '../ts/director/round/aggregator.ts';
import { loadNative, loadNativeFrom } from '../ts/core/secagg/native.ts';
import { planSecureRound, taskParams, type SecureRoundPlan } from '../ts/core/secagg/params.ts';
import { SecureParticipant } from '../ts/envoy/release/participant.ts';
import { FedAvg } from '../ts/director/strategies/fedavg.ts';

const native = loadNative();

interface Envoy { name: string; examples: number; delta: Float32Array }

function setup(envoys: Envoy[], options: { experimentId?: string; round?: number; secagg?: Record<string, unknown> } = {}) {
  const plan = planSecureRound({
    experimentId: options.experimentId ?? 'exp/run1', round: options.round ?? 0, secagg: SecAggSchema.parse({ enabled: true, ...options.secagg }),
    cohort: envoys.map((e) => ({ envoy: e.name, examples: e.examples })), vectorLen: envoys[0].delta.length, graphSeed: randomBytes(32),
  });
  const participants = new Map(envoys.map((e) => [e.name, new SecureParticipant(native, taskParams(plan, e.name), plan.round)]));
  return { plan, participants, aggregator: new SecureAggregator(native, plan) };
}

/** All four stages; envoys in `dropAfterShares` vanish between share keys and masked input. */
async function runRound(envoys: Envoy[], dropAfterShares: string[] = [], plan?: ReturnType<typeof setup>) {
  const { participants, aggregator } = plan ?? setup(envoys);
  for (const [name, p] of participants) aggregator.receive('advertise', name, p.advertise());
  for (const [name, keys] of aggregator.close('advertise')) aggregator.receive('share_keys', name, participants.get(name)!.shareKeys(keys));
  const masked = new Map<string, Uint8Array>();
  for (const [name, bundle] of aggregator.close('share_keys')) {
    if (dropAfterShares.includes(name)) continue;
    const { message } = await participants.get(name)!.maskedInput(bundle, envoys.find((e) => e.name === name)!.delta);
    masked.set(name, message);
    aggregator.receive('masked_input', name, message);
  }
  for (const [name, request] of aggregator.close('masked_input')) aggregator.receive('unmask', name, participants.get(name)!.unmask(request));
  return { aggregate: await aggregator.finish(), masked };
}

function deltas(names: string[], examples: number[], length: number): Envoy[] {
  return names.map((name, i) => {
    const delta = new Float32Array(length);
    // Mostly small weight moves, plus a few large ones like BatchNorm running statistics in round 1.
    for (let j = 0; j < length; j++) delta[j] = (Math.random() - 0.5) * (j % 97 === 0 ? 4 : 0.2);
    return { name, examples: examples[i], delta };
  });
}

function fedAvgDelta(envoys: Envoy[]): Float32Array {
  const zero = { manifest: [], values: new Float32Array(envoys[0].delta.length) };
  return new FedAvg().aggregate(zero, envoys.map((e) => ({ envoy: e.name, examples: e.examples, delta: { manifest: [], values: e.delta } }))).values;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('the securely aggregated delta equals plain FedAvg within the quantization bound', async (t) => {
  const envoys = deltas(['a', 'b', 'c'], [120, 450, 900], 20_000);
  const { aggregate } = await runRound(envoys);
  t.deepEqual(aggregate.included, ['a', 'b', 'c']);
  t.is(aggregate.examples, 1470);
  const error = maxAbsDiff(aggregate.delta, fedAvgDelta(envoys));
  // Float32 rounding of deltas of magnitude ~2 adds ~2.4e-7 on top of the quantization bound.
  t.true(error <= aggregate.errorBound + 1e-6, `max error ${error}, bound ${aggregate.errorBound}`);
  t.true(aggregate.errorBound < 1e-6, `bound ${aggregate.errorBound} at the default 32 bits, clip 8`);
});

test('an envoy gone after sharing keys is unmasked from the survivors and FedAvg covers the others', async (t) => {
  const envoys = deltas(['a', 'b', 'c', 'd'], [200, 300, 400, 500], 5_000);
  const { aggregate } = await runRound(envoys, ['c']);
  t.deepEqual(aggregate.included, ['a', 'b', 'd']);
  t.deepEqual(aggregate.recovered, ['c']);
  const survivors = envoys.filter((e) => e.name !== 'c');
  const error = maxAbsDiff(aggregate.delta, fedAvgDelta(survivors));
  t.true(error <= aggregate.errorBound + 1e-6, `max error ${error}, bound ${aggregate.errorBound}`);
});

test('what the director receives from one envoy is uncorrelated with its update (1M parameters)', async (t) => {
  const length = 1_000_000;
  const envoys = deltas(['a', 'b', 'c'], [100, 100, 100], length);
  const { masked } = await runRound(envoys);
  const words = (unpack(masked.get('a')!) as { masked: Uint8Array }).masked;
  const received = new Uint32Array(words.buffer.slice(words.byteOffset, words.byteOffset + words.byteLength));
  t.is(received.length, length);
  const r = pearson(envoys[0].delta, received);
  t.true(Math.abs(r) < 0.01, `|r| = ${Math.abs(r)}`);
  // Sanity check of the statistic: the quantized but unmasked update is perfectly correlated.
  const plain = native.Quantizer.prototype.quantize.call(new native.Quantizer(8, 32, 3), envoys[0].delta);
  t.true(pearson(envoys[0].delta, plain) > 0.99);
});

test('a tampered encrypted share is rejected by its recipient, a tampered revealed share by the director', async (t) => {
  const envoys = deltas(['a', 'b', 'c', 'd'], [100, 100, 100, 100], 1000);
  const round = setup(envoys);
  const { participants, aggregator } = round;
  for (const [name, p] of participants) aggregator.receive('advertise', name, p.advertise());
  for (const [name, keys] of aggregator.close('advertise')) {
    let message = participants.get(name)!.shareKeys(keys);
    if (name === 'a') {
      const parsed = unpack(message) as { shares: { recipient: number; ciphertext: Uint8Array }[] };
      parsed.shares[0].ciphertext[3] ^= 1; // in transit, through the director
      message = pack(parsed);
    }
    aggregator.receive('share_keys', name, message);
  }
  const bundles = aggregator.close('share_keys');
  const errors: string[] = [];
  for (const [name, bundle] of bundles) {
    await participants.get(name)!.maskedInput(bundle, envoys.find((e) => e.name === name)!.delta).then(
      ({ message }) => aggregator.receive('masked_input', name, message), (e: Error) => errors.push(`${name}: ${e.message}`));
  }
  t.is(errors.length, 1, errors.join('\n'));
  t.regex(errors[0], /secure aggregation: masking the input: \[ShareAuthentication\]/);

  // A revealed share with one bit flipped is caught against the dealer's commitments, naming the sender.
  const requests = aggregator.close('masked_input');
  const [name, request] = [...requests][0];
  const response = unpack(participants.get(name)!.unmask(request)) as Record<string, { share: Uint8Array }[]>;
  const list = response.selfSeedShares.length ? response.selfSeedShares : response.maskKeyShares;
  list[0].share[0] ^= 1;
  const error = t.throws(() => aggregator.receive('unmask', name, pack(response)));
  t.regex(error!.message, new RegExp(`secure aggregation: unmask from ${name} rejected: \\[InvalidShare\\]`));
});

test('a message replayed from another round or another experiment is rejected', (t) => {
  const envoys = deltas(['a', 'b', 'c'], [100, 100, 100], 100);
  const round1 = setup(envoys, { round: 1 });
  const advertised = round1.participants.get('a')!.advertise();
  const round2 = setup(envoys, { round: 2 });
  t.throws(() => round2.aggregator.receive('advertise', 'a', advertised), { message: /advertise from a rejected: \[WrongRound\]/ });
  const other = setup(envoys, { round: 1, experimentId: 'other/run1' });
  t.throws(() => other.aggregator.receive('advertise', 'a', advertised), { message: /advertise from a rejected: \[WrongRound\]/ });
  // And an envoy cannot pass another's message off as its own.
  t.throws(() => round1.aggregator.receive('advertise', 'b', advertised), { message: /claims client id 0, b has 1/ });
});

test('round parameters: full SecAgg for small cohorts, SecAgg+ degree for large ones, never a lone summand', (t) => {
  const cohort = (n: number) => Array.from({ length: n }, (_, i) => ({ envoy: `e${String(i).padStart(3, '0')}`, examples: 10 }));
  const plan = (n: number, secagg: Record<string, unknown> = {}): SecureRoundPlan => planSecureRound({
    experimentId: 'x', round: 0, cohort: cohort(n), secagg: SecAggSchema.parse({ enabled: true, ...secagg }), vectorLen: 10, graphSeed: randomBytes(32),
  });
  t.like(plan(3), { neighbours: 2, threshold: 1, minSurvivors: 2 });
  t.like(plan(2), { neighbours: 1, threshold: 1, minSurvivors: 2 });
  t.like(plan(5, { threshold: 4 }), { neighbours: 4, threshold: 3, minSurvivors: 4 });
  t.like(plan(5, { threshold: 1 }), { threshold: 1, minSurvivors: 2 });
  t.like(plan(100), { neighbours: 14, threshold: 7, minSurvivors: 51 });
  t.like(plan(100, { neighbours: 5, threshold: 9 }), { neighbours: 6, threshold: 3, minSurvivors: 9 });
  t.throws(() => plan(1), { message: /at least 2 envoys/ });
});

test('a missing native addon is reported with how to build it', (t) => {
  t.throws(() => loadNativeFrom('../../../bindings/no-such-addon.cjs'), {
    message: /secure aggregation needs the native addon, which could not be loaded \(.*no-such-addon.*\); build it with `bash bindings\/build.sh`/,
  });
});

function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
  mx /= n; my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
  }
  return sxy / Math.sqrt(sxx * syy);
}
