/**
 * End to end over a real nats-server: director and envoys are separate `secflow` processes, training
 * with real TensorFlow on real PneumoniaMNIST subsets.
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { buildModel } from '../ts/core/model.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { Logger } from '../ts/core/log.ts';
import { kinds, PROTOCOL_VERSION } from '../ts/core/messages.ts';
import { subjects } from '../ts/core/subjects.ts';
import { connectBus } from '../ts/core/transport/connection.ts';
import { decodeWeights, readWeights, writeWeights } from '../ts/core/weights.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { predictPositive } from '../ts/core/training.ts';
import { loadPredictor, predictImages } from '../ts/predict/predict.ts';
import { PNEUMONIAMNIST, tempDir, XRAY_SAMPLES } from './helpers/paths.ts';
import { z } from 'zod';
import { readJsonl, startTestFederation } from './helpers/federation.ts';

const model = { width: 4, seed: 1 };
const training = { learning_rate: 0.003, batch_size: 32, local_epochs: 1 };

test.serial('2 envoys x 2 rounds: the global model changes, metrics and checkpoints are written, test AUC > 0.5', async (t) => {
  const fed = await startTestFederation({ envoys: ['alpha', 'beta'], experiment: { name: 'e2e', rounds: 2, min_envoys_to_start: 2, model, training } });
  t.teardown(() => fed.stop());

  // A signed but malformed message is answered with an error naming it; bytes that are no envelope at all
  // get no answer (nothing to verify, nobody to answer) but are counted; the director keeps serving.
  const alpha = await connectBus({ url: fed.nats.url, kit: fed.kits!.alpha }, 'alpha-test', new Logger('alpha-test', 'error'));
  t.teardown(() => alpha.close());
  const anyRegistration = { ...kinds.register, schema: z.any() }; // sends whatever it is given
  const malformed = await t.throwsAsync(alpha.request(anyRegistration, subjects.register('testfed', 'alpha'), 'director',
    { protocol: PROTOCOL_VERSION, descriptor: { envoy: 'alpha' } }, 5000));
  t.regex(malformed!.message, /registration refused: malformed registration: descriptor\./);
  alpha.nc.publish(subjects.register('testfed', 'alpha'), pack({ hello: 'world' }));
  await alpha.flush();
  const status = await fed.scientist.request(kinds.status, subjects.status('testfed', 'scientist'), 'director', {}, 5000);
  t.deepEqual(status.envoys.filter((e) => e.alive).map((e) => e.name).sort(), ['alpha', 'beta']);
  t.is(status.envoys[0].descriptor.counts.train, 150);
  t.true(status.refused.some((r) => r.reason === 'malformed envelope'), JSON.stringify(status.refused));
  t.true(status.refused.some((r) => r.sender === 'alpha' && /malformed registration/.test(r.reason)), JSON.stringify(status.refused));
  t.regex(status.protection, /TLS .*signed/);

  const { final, events } = await fed.run();
  t.is(final.type, 'finished');
  const rounds = events.filter((e) => e.type === 'round');
  t.deepEqual(rounds.map((e) => e.round), [0, 1]);
  t.deepEqual(rounds[0].envoys!.map((e) => e.envoy).sort(), ['alpha', 'beta']);
  t.true(final.test!.roc_auc! > 0.5, `test AUC ${final.test!.roc_auc}`);
  // After the last round both envoys evaluated the final model; the threshold rests on all their validation images.
  t.truthy(final.threshold, 'a threshold chosen from the federation\'s validation data');
  t.is(final.threshold!.envoys, 2);
  t.is(final.threshold!.examples, status.envoys.reduce((n, e) => n + e.descriptor.counts.val, 0));
  t.is(final.test_at_threshold!.examples, final.test!.examples);
  if (final.threshold!.threshold === 0.5) t.is(final.test_at_threshold!.accuracy, final.test!.accuracy);

  const dir = fed.runDir();
  const initial = readWeights(buildModel(ModelSpecSchema.parse(model))).values;
  const after = decodeWeights(readFileSync(join(dir, 'checkpoints', 'round-0002.weights'))).values;
  t.is(after.length, initial.length);
  t.true(after.some((v, i) => Math.abs(v - initial[i]) > 1e-6), 'the global model changed');

  const records = readJsonl(join(dir, 'metrics.jsonl'));
  const tests = records.filter((r) => r.split === 'test');
  t.deepEqual(tests.map((r) => r.round), [0, 1]);
  for (const split of ['train', 'val_global', 'val_local']) {
    t.is(records.filter((r) => r.split === split).length, 4, `${split}: one record per envoy per round`);
  }
  const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
  t.true(csv[0].startsWith('round,scope,envoy,split,loss,accuracy'));
  t.is(csv.length, 1 + records.length);
  t.true(readdirSync(join(dir, 'tensorboard')).some((f) => f.startsWith('events.out.tfevents')), 'TensorBoard event file');
  const threshold = JSON.parse(readFileSync(join(dir, 'threshold.json'), 'utf8'));
  t.is(threshold.threshold, final.threshold!.threshold);
  t.is(records.filter((r) => r.split === 'test_at_threshold').length, 1);
  t.regex(fed.log('alpha'), /evaluated the final model on \d+ validation images/);
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
  t.is(state.status, 'finished');
  t.is(state.next_round, 2);
  t.false(/values|Float32Array/.test(fed.log('director')), 'the director log holds no weights');

  // The finished run exports its model (tfjs layers format) and a model card.
  const card = JSON.parse(readFileSync(join(dir, 'model', 'model-card.json'), 'utf8'));
  t.deepEqual(card.data, [{ envoy: 'alpha', examples: 150 }, { envoy: 'beta', examples: 150 }]);
  t.is(card.decision_threshold.value, final.threshold!.threshold);
  t.is(card.test.at_0_5.roc_auc, final.test!.roc_auc);
  // This test federation runs PLAIN (helpers/federation.ts): the card must say every protection was off.
  t.deepEqual(card.protections, { secure_aggregation: false, precode: false, batch_norm_statistics: 'batch', pruning: null, dp: null });
  t.regex(readFileSync(join(dir, 'model', 'model-card.md'), 'utf8'), /Secure aggregation: \*\*off\*\*/);
  const predictor = await loadPredictor(dir);
  t.is(predictor.threshold, final.threshold!.threshold);
  const reference = buildModel(fed.config.model);
  writeWeights(reference, decodeWeights(readFileSync(join(dir, 'checkpoints', 'round-0002.weights'))));
  const ds = loadPneumoniaMnist(PNEUMONIAMNIST, 'test', 8);
  t.deepEqual(Array.from(predictPositive(predictor.model, ds)).map((p) => p.toFixed(5)), Array.from(predictPositive(reference, ds)).map((p) => p.toFixed(5)),
    'the exported model is the final global model');
  const out = tempDir();
  const { predictions } = await predictImages(predictor, [join(XRAY_SAMPLES, 'PNEUMONIA', 'person1946_bacteria_4874.jpeg')], out);
  t.is(predictions[0].decision, predictions[0].probability >= predictor.threshold ? 'pneumonia' : 'normal');
  t.true(existsSync(predictions[0].heat_map));
});

test.serial('an envoy killed mid-round: the round finishes with the others and the next round goes on', async (t) => {
  const fed = await startTestFederation({
    envoys: ['a', 'b', 'c'], trainLimit: 900,
    experiment: { name: 'dropout', rounds: 2, min_envoys_to_start: 3, model, training: { ...training, batch_size: 8 }, aggregation: { min_envoys: 2 } },
  });
  t.teardown(() => fed.stop());
  const victim = fed.envoys.get('c')!;
  const killed = (async () => {
    const { waitForOutput } = await import('../ts/local/roles.ts');
    await waitForOutput(victim, /round 1 training/);
    victim.child.kill('SIGKILL');
  })();
  const { final, events } = await fed.run();
  await killed;
  t.is(final.type, 'finished');
  const rounds = events.filter((e) => e.type === 'round');
  t.is(rounds.length, 2, 'both rounds aggregated');
  t.deepEqual(rounds[0].dropped, ['c']);
  t.deepEqual(rounds[0].envoys!.map((e) => e.envoy).sort(), ['a', 'b']);
  t.deepEqual(rounds[1].envoys!.map((e) => e.envoy).sort(), ['a', 'b']);
  t.regex(fed.log('director'), /round 1: continuing without c: it went silent/);
});

test.serial('too few envoys left: the round fails with a clear message and the next round still runs', async (t) => {
  const fed = await startTestFederation({
    envoys: ['a', 'b'], trainLimit: 600,
    experiment: { name: 'toofew', rounds: 2, min_envoys_to_start: 2, model, training: { ...training, batch_size: 8 }, aggregation: { min_envoys: 2 } },
  });
  t.teardown(() => fed.stop());
  const victim = fed.envoys.get('b')!;
  const { waitForOutput } = await import('../ts/local/roles.ts');
  void waitForOutput(victim, /round 1 training/).then(() => victim.child.kill('SIGKILL'));
  const { final, events } = await fed.run();
  t.is(final.type, 'finished');
  const failed = events.filter((e) => e.type === 'round_failed');
  t.deepEqual(failed.map((e) => e.round), [0, 1], 'round 2 was attempted, and failed too with one envoy');
  t.regex(failed[0].message!, /round 1 failed: 1 update\(s\) arrived, at least 2 needed \(b: it went silent/);
  const state = JSON.parse(readFileSync(join(fed.runDir(), 'state.json'), 'utf8'));
  t.deepEqual(state.failed_rounds, [0, 1]);
});

test.serial('a restarted director resumes the experiment after the last completed round', async (t) => {
  const fed = await startTestFederation({
    envoys: ['a', 'b'], experiment: { name: 'resume', rounds: 3, min_envoys_to_start: 2, model, training },
  });
  t.teardown(() => fed.stop());
  let restarted: Promise<unknown> | undefined;
  const { final, events } = await fed.run((e) => {
    if (e.type === 'round' && e.round === 0 && !restarted) {
      fed.director.child.kill('SIGKILL');
      restarted = new Promise((r) => fed.director.child.once('exit', r)).then(() => fed.startDirector());
    }
  });
  await restarted;
  t.is(final.type, 'finished');
  t.regex(fed.log('director'), /resuming unfinished experiment 'resume' after round 1/);
  const tests = readJsonl(join(fed.runDir(), 'metrics.jsonl')).filter((r) => r.split === 'test');
  t.deepEqual(tests.map((r) => r.round), [0, 1, 2], 'each round evaluated once: round 1 was not redone');
  t.true(events.some((e) => e.type === 'started' && e.round === 1), 'the new director started at round 2');
  t.true(existsSync(join(fed.runDir(), 'checkpoints', 'round-0003.weights')));
});
