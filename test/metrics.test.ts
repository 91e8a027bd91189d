import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { binaryCrossEntropy, classificationMetrics, rocAuc } from '../ts/core/metrics.ts';
import { MetricsSchema } from '../ts/core/messages.ts';
import { FIXTURES } from './helpers/paths.ts';

interface Case { labels: number[]; scores: number[]; roc_auc: number; accuracy: number; precision: number; recall: number; f1: number; specificity: number; loss: number }
const { cases } = JSON.parse(readFileSync(join(FIXTURES, 'metrics.json'), 'utf8')) as { cases: Case[] };

for (const [i, c] of cases.entries()) {
  test(`metrics match scikit-learn, case ${i + 1} (${c.labels.length} examples)`, (t) => {
    const m = classificationMetrics(c.scores, c.labels, binaryCrossEntropy(c.scores, c.labels));
    for (const key of ['roc_auc', 'accuracy', 'precision', 'recall', 'f1', 'specificity', 'loss'] as const) {
      t.true(Math.abs((m[key] ?? Number.NaN) - c[key]) < 1e-9, `${key}: ours ${m[key]}, scikit-learn ${c[key]}`);
    }
    t.is(m.sensitivity, m.recall);
  });
}

test('ROC-AUC is undefined (NaN) when only one class is present', (t) => {
  t.true(Number.isNaN(rocAuc([0.2, 0.7], [1, 1])));
});

test('a one-class set (a small hospital\'s validation split) reports ROC-AUC as null, which the result message carries', (t) => {
  const m = classificationMetrics([0.2, 0.7, 0.4], [1, 1, 1], 0.5);
  t.is(m.roc_auc, null);
  t.is(m.sensitivity, 1 / 3);
  // It once failed validation as NaN, so the envoy's whole result (and its masked input) was dropped.
  t.deepEqual(MetricsSchema.parse(m), m);
  t.throws(() => MetricsSchema.parse({ ...m, roc_auc: Number.NaN }));
});

test('ROC-AUC of a perfect and a reversed ranking', (t) => {
  t.is(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
  t.is(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
});
