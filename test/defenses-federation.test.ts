/**
 * The defenses inside a running federation (real nats-server, director and envoy processes): DP-SGD with
 * its accountant's epsilon in the run's metrics, pruning on what the director receives, PRECODE trained
 * and checkpointed.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAuditRecord, readAuditWeights } from '../ts/core/audit.ts';
import { ExperimentSchema } from '../ts/core/config/experiment.ts';
import { decodeWeights, slicesOf } from '../ts/core/weights.ts';
import { readJsonl, startTestFederation } from './helpers/federation.ts';

test.serial('DP-SGD reports a growing epsilon per envoy, and pruned updates reach the director pruned', async (t) => {
  const fed = await startTestFederation({
    envoys: ['alpha', 'beta'], trainLimit: 200,
    experiment: {
      name: 'dp-pruned', rounds: 2, min_envoys_to_start: 2, model: { width: 4, seed: 1 },
      training: { batch_size: 25, dp: { enabled: true, clip_norm: 1, noise_multiplier: 1.1, delta: 1e-5 }, pruning: { enabled: true, keep_fraction: 0.1 } },
      audit: { enabled: true },
    },
  });
  t.teardown(() => fed.stop());
  const { final } = await fed.run();
  t.is(final.type, 'finished', final.message);
  const privacy = readJsonl(join(fed.runDir(), 'metrics.jsonl')).filter((r) => r.split === 'privacy') as { round: number; envoy: string; metrics: { epsilon: number; delta: number } }[];
  t.is(privacy.length, 4, 'one privacy record per envoy per round');
  for (const envoy of ['alpha', 'beta']) {
    const [r1, r2] = privacy.filter((r) => r.envoy === envoy).sort((a, b) => a.round - b.round);
    t.true(r1.metrics.epsilon > 0 && r2.metrics.epsilon > r1.metrics.epsilon, `${envoy}: epsilon ${r1.metrics.epsilon} then ${r2.metrics.epsilon}`);
    t.is(r1.metrics.delta, 1e-5);
  }
  t.regex(readFileSync(join(fed.runDir(), 'metrics.csv'), 'utf8').split('\n')[0], /epsilon,delta/);

  // What the director received from alpha: every tensor at most ~10% non-zero.
  const dir = join(fed.runDir(), 'audit', 'round-0001');
  const update = readAuditWeights(dir, readAuditRecord(dir).updates.find((u) => u.envoys[0] === 'alpha')!.file);
  for (const tensor of slicesOf(update)) {
    const n = tensor.values.length;
    const nonZero = tensor.values.filter((v) => v !== 0).length;
    t.true(nonZero <= Math.ceil(0.1 * n), `${tensor.name}: ${nonZero} of ${n} non-zero`);
  }
});

test.serial('PRECODE trains inside the federation and its weights are in the checkpoints', async (t) => {
  const fed = await startTestFederation({
    envoys: ['alpha', 'beta'], trainLimit: 300,
    experiment: { name: 'precode', rounds: 2, min_envoys_to_start: 2, model: { width: 4, seed: 1, precode: { enabled: true, code_size: 32 } }, training: { batch_size: 32 } },
  });
  t.teardown(() => fed.stop());
  const { final, events } = await fed.run();
  t.is(final.type, 'finished', final.message);
  const checkpoint = decodeWeights(readFileSync(join(fed.runDir(), 'checkpoints', 'round-0002.weights')));
  t.deepEqual(checkpoint.manifest.filter((m) => m.name.startsWith('precode/')).map((m) => m.shape), [[8 * 81, 64], [64], [32, 8 * 81], [8 * 81]]);
  const aucs = events.filter((e) => e.type === 'round').map((e) => e.test!.roc_auc!);
  t.is(aucs.length, 2);
  t.true(aucs[1] > 0.6, `test ROC-AUC after 2 rounds: ${aucs[1]}`);
});

test('an experiment asking for both DP-SGD and PRECODE is refused by name', (t) => {
  const r = ExperimentSchema.safeParse({ name: 'x', rounds: 1, model: { precode: { enabled: true } }, training: { dp: { enabled: true } } });
  t.false(r.success);
  t.regex(JSON.stringify(r.error?.issues), /DP-SGD cannot be combined with model.precode/);
});
