/**
 * Auditing in a running federation (real nats-server, director and envoy processes): the director keeps
 * exactly what it received, envoys keep their trained images apart, and the leakage lab attacks the record.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAuditRecord, readAuditTruth, readAuditWeights, truthPath } from '../ts/core/audit.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { buildModel } from '../ts/core/model.ts';
import { decodeWeights, readWeights } from '../ts/core/weights.ts';
import { SECFLOW_BIN } from '../ts/local/roles.ts';
import { startTestFederation } from './helpers/federation.ts';
import { PNEUMONIAMNIST, tempDir } from './helpers/paths.ts';

const model = { width: 16, seed: 3 };
// The probe: one plain SGD step on one image per envoy, the attack papers' single-image setting.
const probe = { examples_per_round: 1, batch_size: 1, local_epochs: 1, optimizer: 'sgd', momentum: 0, learning_rate: 0.01 };

test.serial('an audited round records each received update and a probe; the attack on the probe rebuilds the envoy\'s X-ray', async (t) => {
  const fed = await startTestFederation({
    envoys: ['alpha', 'beta'], trainLimit: 200,
    experiment: { name: 'audited', rounds: 1, min_envoys_to_start: 2, model, training: { batch_size: 32 }, audit: { enabled: true, probe } },
  });
  t.teardown(() => fed.stop());
  const { final } = await fed.run();
  t.is(final.type, 'finished', final.message);

  // The round's record is what FedAvg aggregated: sent + example-weighted mean of the updates = checkpoint.
  const roundDir = join(fed.runDir(), 'audit', 'round-0001');
  const record = readAuditRecord(roundDir);
  t.is(record.view, 'updates');
  t.deepEqual(record.updates.map((u) => u.envoys[0]).sort(), ['alpha', 'beta']);
  const sent = readAuditWeights(roundDir, record.sent);
  t.deepEqual([...sent.values], [...readWeights(buildModel(ModelSpecSchema.parse(model))).values], 'the sent weights are the initial model');
  const total = record.updates.reduce((n, u) => n + u.examples, 0);
  const deltas = record.updates.map((u) => ({ w: u.examples / total, d: readAuditWeights(roundDir, u.file).values }));
  const aggregated = decodeWeights(readFileSync(join(fed.runDir(), 'checkpoints', 'round-0001.weights'))).values;
  const worst = Math.max(...sent.values.map((v, i) => Math.abs(v + deltas.reduce((s, { w, d }) => s + w * d[i], 0) - aggregated[i])));
  t.true(worst < 1e-5, `record disagrees with the aggregate by ${worst}`);
  // The director's side holds weights and the record only: no images.
  t.deepEqual(readdirSync(roundDir).sort(), ['record.json', 'sent.weights', 'update-alpha.weights', 'update-beta.weights']);

  // The envoys' side: the real round trained on each whole share, the probe on one image.
  const truthOf = (envoy: string, kind: 'round' | 'probe') => truthPath(join(fed.files.envoyAudit, envoy), 'testfed', 'audited', envoy, 0, kind);
  t.is(readAuditTruth(truthOf('alpha', 'round')).labels.length, 100);
  const probeTruth = readAuditTruth(truthOf('alpha', 'probe'));
  t.is(probeTruth.labels.length, 1);
  t.is(probeTruth.images.length, 28 * 28);
  const probeRecord = readAuditRecord(join(fed.runDir(), 'audit', 'round-0001-probe'));
  t.is(probeRecord.training.examples_per_round, 1);
  t.is(probeRecord.training.optimizer, 'sgd');
  t.false(existsSync(join(fed.runDir(), 'checkpoints', 'round-0002.weights')), 'the probe is not aggregated as a round');

  // The attacker's view of alpha's probe update, scored against alpha's recorded image.
  const out = tempDir();
  const r = spawnSync(SECFLOW_BIN, ['leakage', 'attack', '--record', join(fed.runDir(), 'audit', 'round-0001-probe'), '--envoy', 'alpha',
    '--truth', `${truthOf('alpha', 'probe')},${truthOf('beta', 'probe')}`, '--attack', 'ig', '--iterations', '300', '--data', PNEUMONIAMNIST, '--out', out],
  { encoding: 'utf8', timeout: 300_000 });
  t.is(r.status, 0, r.stderr);
  const summary = JSON.parse(readFileSync(join(out, 'ig-summary.json'), 'utf8'));
  t.is(summary.label_accuracy, 1);
  t.false(summary.intensity_prior, 'the batch-norm statistics of the one-image update give the intensities; no prior needed');
  t.true(summary.psnr_mean > summary.floor_psnr_mean + 10, `PSNR ${summary.psnr_mean} vs floor ${summary.floor_psnr_mean}`);
  t.true(existsSync(join(out, 'ig-grid.png')));

  // A truth file from another envoy or round is refused by name, not scored.
  const wrong = spawnSync(SECFLOW_BIN, ['leakage', 'attack', '--record', roundDir, '--envoy', 'alpha', '--truth', truthOf('alpha', 'probe'),
    '--data', PNEUMONIAMNIST, '--out', out], { encoding: 'utf8', timeout: 120_000 });
  t.not(wrong.status, 0);
  t.regex(wrong.stderr, /audit truth of alpha is from round 1 \(probe\)/);
});

test.serial('under secure aggregation the audit holds only the aggregate', async (t) => {
  const fed = await startTestFederation({
    envoys: ['alpha', 'beta', 'gamma'], trainLimit: 150,
    experiment: {
      name: 'audited-sa', rounds: 1, min_envoys_to_start: 3, model, training: { batch_size: 32 }, secagg: { enabled: true },
      aggregation: { min_envoys: 2 }, audit: { enabled: true, probe },
    },
  });
  t.teardown(() => fed.stop());
  const { final } = await fed.run();
  t.is(final.type, 'finished', final.message);
  for (const folder of ['round-0001', 'round-0001-probe']) {
    const dir = join(fed.runDir(), 'audit', folder);
    const record = readAuditRecord(dir);
    t.is(record.view, 'aggregate');
    t.is(record.updates.length, 1);
    t.deepEqual([...record.updates[0].envoys].sort(), ['alpha', 'beta', 'gamma']);
    t.deepEqual(readdirSync(dir).sort(), ['aggregate.weights', 'record.json', 'sent.weights'], 'no per-envoy update on the director');
  }
});
