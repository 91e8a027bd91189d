import test from 'ava';
import { ExperimentSchema, ServerOptimizerSchema } from '../ts/core/config/experiment.ts';
import { FedAvg } from '../ts/director/strategies/fedavg.ts';
import { FedAvgM } from '../ts/director/strategies/fedavgm.ts';
import { FedAdam, FedYogi } from '../ts/director/strategies/fedadam.ts';
import type { FlatWeights } from '../ts/core/weights.ts';

const manifest = [{ name: 'conv0/kernel', shape: [2] }, { name: 'bn0/moving_variance', shape: [1] }];
const flat = (...v: number[]): FlatWeights => ({ manifest, values: Float32Array.from(v) });
const server = (o: object = {}) => ServerOptimizerSchema.parse(o);
const round = (s: { aggregate: FedAvg['aggregate'] }, global: FlatWeights, ...deltas: number[][]) =>
  s.aggregate(global, deltas.map((d, i) => ({ envoy: `e${i}`, examples: 100, delta: flat(...d) })));
const near = (got: Float32Array, want: number[]) => want.every((w, i) => Math.abs(got[i] - w) < 1e-5);

test('FedAvgM without momentum at rate 1 is FedAvg; with momentum its second step adds beta_1 times the first', (t) => {
  const global = flat(1, 2, 0.5);
  const plain = new FedAvgM(server({ beta_1: 0 }), 25);
  t.deepEqual(round(plain, global, [0.2, -0.4, 0.1], [0, 0, 0.3]).values, round(new FedAvg(), global, [0.2, -0.4, 0.1], [0, 0, 0.3]).values);
  const m = new FedAvgM(server({ beta_1: 0.9, learning_rate: 0.5 }), 25);
  const first = round(m, global, [0.2, -0.4, 0]);
  t.true(near(first.values, [1.1, 1.8, 0.5]), `first step: ${first.values}`);
  const second = round(m, first, [0.2, -0.4, 0]);
  // m = 0.9 * 0.2 + 0.2 = 0.38 -> +0.19; -0.76 -> -0.38
  t.true(near(second.values, [1.29, 1.42, 0.5]), `second step: ${second.values}`);
});

test('FedAdam\'s first step is eta (1 - beta_1) delta / (sqrt(beta_2 tau^2 + (1 - beta_2) delta^2) + tau), per coordinate', (t) => {
  const cfg = server({ learning_rate: 0.01, beta_1: 0.9, beta_2: 0.99, tau: 1e-3 });
  const next = round(new FedAdam(cfg, 25), flat(0, 0, 1), [0.05, -0.002, 0]);
  const expected = [0.05, -0.002].map((d) => (0.01 * 0.1 * d) / (Math.sqrt(0.99 * 1e-6 + 0.01 * d * d) + 1e-3));
  t.true(near(next.values, [...expected, 1]), `got ${next.values}, want ${expected}`);
  // Adaptive: a 25x larger delta moves that coordinate far less than 25x further.
  t.true(Math.abs(next.values[0]) / Math.abs(next.values[1]) < 10);
});

test('FedYogi\'s second moment grows additively, not by decay: its steps differ from FedAdam\'s from the second round', (t) => {
  const cfg = server({ learning_rate: 0.01 });
  const adam = new FedAdam(cfg, 25), yogi = new FedYogi(cfg, 25);
  let a = flat(0, 0, 1), y = flat(0, 0, 1);
  a = round(adam, a, [0.05, 0.01, 0]); y = round(yogi, y, [0.05, 0.01, 0]);
  // Round 1: v starts at tau^2 < delta^2, so Yogi adds (1 - beta_2) delta^2 just as Adam blends it in (up to beta_2 tau^2).
  t.true(near(y.values, Array.from(a.values).map((v, i) => (i < 2 ? v : 1))) || Math.abs(y.values[0] - a.values[0]) < 1e-4);
  a = round(adam, a, [0.001, 0.01, 0]); y = round(yogi, y, [0.001, 0.01, 0]);
  t.notDeepEqual(Array.from(a.values), Array.from(y.values));
});

test('a server step is clipped to max_update_norm (the envoys\' trajectory check holds), and batch-norm statistics take the plain mean', (t) => {
  const m = new FedAvgM(server({ learning_rate: 10 }), 1);
  const next = round(m, flat(0, 0, 1), [0.3, 0.4, 0], [0.3, 0.4, 0]);
  t.true(near(next.values, [0.6, 0.8, 1]), `got ${next.values}`);
  const adam = round(new FedAdam(server({ learning_rate: 1 }), 25), flat(0, 0, 1), [0.1, 0.1, -0.5]);
  t.is(adam.values[2], 0.5, 'moving variance: the mean of the envoys\' values, no optimizer');
});

test('server optimizers run with secure aggregation; median only over sub-cohort sums', (t) => {
  const base = { name: 'x', rounds: 1, secagg: { enabled: true } };
  for (const strategy of ['fedavgm', 'fedadam', 'fedyogi'] as const) t.is(ExperimentSchema.parse({ ...base, aggregation: { strategy } }).aggregation.strategy, strategy);
  t.throws(() => ExperimentSchema.parse({ ...base, aggregation: { strategy: 'median' } }), { message: /one secure sum hides them/ });
  t.throws(() => ExperimentSchema.parse({ ...base, aggregation: { strategy: 'fedadam', server: { beta_3: 1 } } }), { message: /beta_3/ });
});

test('a cosine learning-rate schedule starts at the experiment\'s rate and ends at final_fraction of it; constant stays', async (t) => {
  const { learningRateAt } = await import('../ts/core/config/experiment.ts');
  const cosine = ExperimentSchema.parse({ name: 'x', rounds: 5, training: { learning_rate: 0.002 }, learning_rate_schedule: { kind: 'cosine', final_fraction: 0.1 } });
  const rates = [0, 1, 2, 3, 4].map((r) => learningRateAt(cosine, r));
  t.is(rates[0], 0.002);
  t.true(Math.abs(rates[4] - 0.0002) < 1e-12);
  t.true(Math.abs(rates[2] - 0.0011) < 1e-12, `midway ${rates[2]}`);
  t.true(rates.every((r, i) => i === 0 || r < rates[i - 1]));
  const constant = ExperimentSchema.parse({ name: 'x', rounds: 5, training: { learning_rate: 0.002 } });
  t.deepEqual([0, 4].map((r) => learningRateAt(constant, r)), [0.002, 0.002]);
});
