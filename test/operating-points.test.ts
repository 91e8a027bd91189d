import test from 'ava';
import { chooseThreshold, OPERATING_THRESHOLDS, OperatingPointsSchema, operatingPoints, sumOperatingPoints } from '../ts/core/operating-points.ts';
import { classificationMetrics } from '../ts/core/metrics.ts';

const at = (t: number) => OPERATING_THRESHOLDS.indexOf(t);

test('operating points count each class at or above every threshold of the grid, as the metrics at that threshold do', (t) => {
  const scores = [0.01, 0.2, 0.5, 0.7, 0.99, 0.3, 0.6, 0.1];
  const labels = [0, 0, 0, 1, 1, 1, 1, 0];
  const p = operatingPoints(scores, labels);
  t.is(OPERATING_THRESHOLDS.length, 39);
  t.deepEqual([p.positives, p.negatives], [4, 4]);
  for (const threshold of [0.025, 0.5, 0.6, 0.975]) {
    const m = classificationMetrics(scores, labels, 0, threshold);
    t.is(p.true_positives[at(threshold)] / p.positives, m.sensitivity, `sensitivity at ${threshold}`);
    t.is(1 - p.false_positives[at(threshold)] / p.negatives, m.specificity, `specificity at ${threshold}`);
  }
  t.true(OperatingPointsSchema.safeParse(p).success);
});

test('the envoys\' counts add up to those of their pooled images', (t) => {
  const a = operatingPoints([0.1, 0.9, 0.4], [0, 1, 1]);
  const b = operatingPoints([0.6, 0.3], [0, 1]);
  t.deepEqual(sumOperatingPoints([a, b]), operatingPoints([0.1, 0.9, 0.4, 0.6, 0.3], [0, 1, 1, 0, 1]));
});

test('the chosen threshold separates separable scores, and stays nearest 0.5 among near-equal choices', (t) => {
  // Negatives score 0.1-0.3, positives 0.7-0.9: every threshold in (0.3, 0.7] separates them perfectly.
  const negatives = Array.from({ length: 200 }, (_, i) => 0.1 + (0.2 * i) / 199);
  const positives = Array.from({ length: 200 }, (_, i) => 0.7 + (0.2 * i) / 199);
  const chosen = chooseThreshold([operatingPoints([...negatives, ...positives], [...negatives.map(() => 0), ...positives.map(() => 1)])])!;
  t.is(chosen.threshold, 0.5);
  t.deepEqual([chosen.sensitivity, chosen.specificity, chosen.examples, chosen.envoys], [1, 1, 400, 1]);
  // Shifted scores: the best cut moves to 0.2 and the data say so clearly (J falls fast on either side).
  const low = chooseThreshold([operatingPoints([...negatives.map((s) => s - 0.1), ...positives.map((s) => s - 0.6)], [...negatives.map(() => 0), ...positives.map(() => 1)])])!;
  t.true(low.threshold >= 0.2 && low.threshold <= 0.225, `chose ${low.threshold}`);
});

test('no threshold without both classes; counts above a class total are refused by the schema', (t) => {
  t.is(chooseThreshold([operatingPoints([0.2, 0.8], [1, 1])]), undefined);
  t.is(chooseThreshold([]), undefined);
  const p = operatingPoints([0.2, 0.8], [0, 1]);
  t.false(OperatingPointsSchema.safeParse({ ...p, true_positives: p.true_positives.map(() => 5) }).success);
  t.false(OperatingPointsSchema.safeParse({ ...p, true_positives: [1] }).success);
});
