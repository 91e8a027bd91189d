/** The director's admission checks and the robust strategies, on small vectors whose answers are known. */
import test from 'ava';
import type { FlatWeights } from '../ts/core/weights.ts';
import { aggregateProblem, cappedExamples, screenCohort, screenedCohort, updateProblem } from '../ts/director/admission.ts';
import { CoordinateMedian } from '../ts/director/strategies/median.ts';
import { TrimmedMean } from '../ts/director/strategies/trimmed-mean.ts';
import { clipToNorm } from '../ts/envoy/update-bounds.ts';
import { ExperimentSchema } from '../ts/core/config/experiment.ts';

const manifest = [{ name: 'w', shape: [4] }];
const flat = (...v: number[]): FlatWeights => ({ manifest, values: Float32Array.from(v) });
const update = (envoy: string, ...v: number[]) => ({ envoy, examples: 10, delta: flat(...v) });

test('an update must fit the model, be finite and be within the norm bound', (t) => {
  const global = flat(0, 0, 0, 0);
  t.is(updateProblem(flat(1, 1, 1, 1), global, 2), undefined, 'norm 2 is within 2');
  t.regex(updateProblem(flat(3, 0, 0, 0), global, 2)!, /L2 norm 3\.000 exceeds aggregation\.max_update_norm 2/);
  t.regex(updateProblem(flat(Number.NaN, 0, 0, 0), global, 2)!, /NaN or infinite/);
  t.regex(updateProblem(flat(Number.POSITIVE_INFINITY, 0, 0, 0), global, 2)!, /NaN or infinite/);
  t.regex(updateProblem({ manifest, values: new Float32Array(3) }, global, 2)!, /has 3 values, the model 4/);
  t.regex(updateProblem({ manifest: [{ name: 'v', shape: [4] }], values: new Float32Array(4) }, global, 2)!, /tensors and shapes/);
});

test('weights are capped by water-filling: none above the cap, the rest in proportion, the total kept', (t) => {
  t.deepEqual(cappedExamples([100, 100, 800], 1), [100, 100, 800], 'cap 1 changes nothing');
  const capped = cappedExamples([100, 100, 800], 0.5);
  t.deepEqual(capped.map((n) => Math.round(n)), [250, 250, 500]);
  t.is(Math.round(capped.reduce((a, b) => a + b, 0)), 1000);
  const two = cappedExamples([1_000_000, 100, 100, 100], 0.4);
  t.true(Math.abs(two[0] / two.reduce((a, b) => a + b, 0) - 0.4) < 1e-9, 'the inflated one weighs 0.4');
  t.deepEqual(cappedExamples([1, 2, 3], 0.2).map((n) => +n.toFixed(6)), [2, 2, 2], 'an infeasible cap (below 1/n) gives equal weights');
});

test('the cohort screen refuses a sign-flipped and a scaled update, and keeps honest disagreement', (t) => {
  const honest = [update('a', 1, 1, 0.2, 0), update('b', 0.8, 1.2, 0, 0.1), update('c', 1.1, 0.9, 0.1, -0.1)];
  const limits = { minCosine: 0, maxNormRatio: 10 };
  t.deepEqual(screenCohort(honest, limits).refused, []);
  const flipped = screenCohort([...honest, update('m', -1, -1, -0.1, 0)], limits);
  t.deepEqual(flipped.refused.map((r) => r.envoy), ['m']);
  t.regex(flipped.refused[0].reason, /points against the cohort's \(cosine -(0\.9\d+|1\.000)/);
  const scaled = screenCohort([...honest, update('m', 100, 100, 10, 0)], limits);
  t.deepEqual(scaled.refused.map((r) => r.envoy), ['m']);
  t.regex(scaled.refused[0].reason, /is 9\d\.\d times the median of the others'/);
  t.deepEqual(screenCohort(honest.slice(0, 2).concat(update('m', -1, -1, 0, 0)), { minCosine: -1, maxNormRatio: 10 }).refused, [], 'min_cosine -1 turns the direction check off');
  t.deepEqual(screenCohort([honest[0], update('m', -5, -5, 0, 0)], limits).refused, [], 'two updates: nobody to compare with');
});

test('under secure aggregation the unmasked aggregate is held to the bound, with the quantization error allowed', (t) => {
  t.is(aggregateProblem(Float32Array.from([1, 1, 1, 1]), 2, 0), undefined);
  t.regex(aggregateProblem(Float32Array.from([3, 0, 0, 0]), 2, 0)!, /exceeds what updates within aggregation\.max_update_norm 2 can sum to/);
  t.is(aggregateProblem(Float32Array.from([2.001, 0, 0, 0]), 2, 0.001), undefined, 'within 2 + 0.001 * sqrt(4)');
  t.regex(aggregateProblem(Float32Array.from([Number.NaN, 0, 0, 0]), 2, 0)!, /NaN or infinite/);
});

test('an envoy clips its own update to the bound, keeping its direction', (t) => {
  const { update: clipped, norm, scale } = clipToNorm(flat(3, 4, 0, 0), 1);
  t.is(norm, 5);
  t.is(scale, 0.2);
  t.deepEqual(Array.from(clipped.values).map((v) => +v.toFixed(6)), [0.6, 0.8, 0, 0]);
  t.is(clipToNorm(flat(0.3, 0.4, 0, 0), 1).scale, 1, 'a smaller update is left alone');
});

test('the coordinate-wise median and trimmed mean ignore one extreme update', (t) => {
  const global = flat(0, 0, 0, 0);
  const updates = [update('a', 1, 2, 3, 4), update('b', 1.2, 2.2, 3.2, 4.2), update('c', 0.8, 1.8, 2.8, 3.8), update('m', -100, 100, -100, 100)];
  const median = new CoordinateMedian().aggregate(global, updates);
  t.deepEqual(Array.from(median.values).map((v) => +v.toFixed(5)), [0.9, 2.1, 2.9, 4.1]);
  const trimmed = new TrimmedMean(0.25).aggregate(global, updates);
  t.deepEqual(Array.from(trimmed.values).map((v) => +v.toFixed(5)), [0.9, 2.1, 2.9, 4.1], 'trimming 1 of 4 each end: the mean of the middle two');
  const plain = new TrimmedMean(0).aggregate(global, updates);
  t.is(+plain.values[0].toFixed(4), -24.25, 'no trimming: the plain mean, which the extreme one drags');
});

test("an audit probe's one-image updates are recorded as they came: the cohort screen is for rounds that aggregate", (t) => {
  const config = ExperimentSchema.parse({ name: 'x', rounds: 1 });
  const updates = [update('a', 1, 1, 0.2, 0), update('b', 0.8, 1.2, 0, 0.1), update('c', 1.1, 0.9, 0.1, -0.1), update('d', -1, -1, -0.1, 0)];
  const warned: string[] = [];
  const log = { warn: (line: string) => warned.push(line) };
  t.deepEqual(screenedCohort(updates, { config, round: 1, log }).refused.map((r) => r.envoy), ['d'], 'a training round screens (min_cosine 0 by default)');
  t.regex(warned.join('\n'), /^round 2: continuing without d: its update points against the cohort's/, 'and says so in the log');
  const probe = screenedCohort(updates, { config, round: 1, log, audit: { kind: 'probe' } });
  t.deepEqual(probe.refused, []);
  t.is(probe.kept.length, 4);
  t.is(warned.length, 1, 'a probe logs no refusal');
});
