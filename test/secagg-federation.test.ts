/**
 * Secure aggregation in the running federation: director and envoys as separate `secflow` processes over a
 * real nats-server, the SecAgg+ stages relayed by the director, the native addon on both sides.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import type { Msg } from 'nats';
import { ExperimentSchema, ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { decode, ErrorReplySchema, kinds } from '../ts/core/messages.ts';
import { subjects } from '../ts/core/subjects.ts';
import { buildModel } from '../ts/core/model.ts';
import { decodeWeights, readWeights } from '../ts/core/weights.ts';
import { runExperimentRemotely } from '../ts/experiment/client.ts';
import { waitForOutput } from '../ts/local/roles.ts';
import { startTestFederation } from './helpers/federation.ts';

const model = { width: 4, seed: 1 };
const training = { learning_rate: 0.003, batch_size: 32, local_epochs: 1 };
const secagg = { enabled: true };

function checkpoint(runDir: string, round: number): Float32Array {
  return decodeWeights(readFileSync(join(runDir, 'checkpoints', `round-${String(round).padStart(4, '0')}.weights`))).values;
}

test.serial('secure aggregation: 3 envoys x 2 rounds train the model, and one round matches plain FedAvg of the same run', async (t) => {
  // A misconfigured (or shared) server without subject permissions: the data scientist's connection can
  // listen in on the envoys' protocol messages. They are sealed, and a captured one replayed is refused.
  const fed = await startTestFederation({
    envoys: ['alpha', 'beta', 'gamma'], withoutPermissions: true,
    experiment: { name: 'sa', rounds: 2, min_envoys_to_start: 3, model, training, secagg, aggregation: { min_envoys: 2 } },
  });
  t.teardown(() => fed.stop());
  let captured: Msg | undefined;
  let seen = 0;
  let replayed: Promise<Msg> | undefined;
  const spy = fed.scientist.nc.subscribe('secflow.testfed.exp.sa.*.secagg.*');
  void (async () => {
    for await (const m of spy) {
      const envelope = unpack(m.data) as { kind: string; sealed?: unknown; body?: unknown };
      if (envelope.kind !== 'secagg_upload' || !envelope.sealed || envelope.body) throw new Error('an upload travelled unsealed');
      captured ??= m;
      // Round 1 has 12 uploads (3 envoys x 4 stages); the 14th is in round 2, whose session is listening.
      if (++seen === 14 && captured && !replayed) replayed = fed.scientist.nc.request(captured.subject, captured.data, { timeout: 5000 });
    }
  })();
  const { final, events } = await fed.run();
  spy.unsubscribe();
  t.is(final.type, 'finished', final.message);
  t.truthy(replayed, 'a round 1 message was captured and replayed later');
  const answer = unpack((await replayed!).data) as { kind: string; to: string; body: Uint8Array };
  t.is(answer.kind, 'error');
  const original = (unpack(captured!.data) as { from: string }).from;
  t.is(answer.to, original, 'the refusal goes to the identity that signed the original, not to the replayer');
  t.regex(decode(ErrorReplySchema, answer.body, 'error').error, /refused: replayed/);
  const status = await fed.scientist.request(kinds.status, subjects.status('testfed', 'scientist'), 'director', {}, 5000);
  t.true(status.refused.some((r) => r.sender === original && r.reason === 'replayed'), JSON.stringify(status.refused));
  const rounds = events.filter((e) => e.type === 'round');
  t.deepEqual(rounds.map((e) => e.round), [0, 1]);
  t.deepEqual(rounds[0].envoys!.map((e) => e.envoy).sort(), ['alpha', 'beta', 'gamma'], 'metrics still arrive in the clear');
  t.true(final.test!.roc_auc! > 0.5, `test AUC ${final.test!.roc_auc}`);
  const initial = readWeights(buildModel(ModelSpecSchema.parse(model))).values;
  const secure = checkpoint(fed.runDir(), 1);
  t.true(secure.some((v, i) => Math.abs(v - initial[i]) > 1e-6), 'the global model changed');
  t.regex(fed.log('director'), /round 1: secure sum of alpha, beta, gamma \(quantization error <= /);
  for (const envoy of ['alpha', 'beta', 'gamma']) {
    t.regex(fed.log(envoy), /secure aggregation: answered the unmask request/);
  }
  // What the director keeps is aggregates only: checkpoints and metrics, nothing per envoy.
  t.deepEqual(readdirSync(join(fed.runDir(), 'checkpoints')).sort(), ['round-0001.weights', 'round-0002.weights']);

  // The same first round without secure aggregation (same seeds, same shards) lands on the same model.
  const plainConfig = ExperimentSchema.parse({ ...fed.config, name: 'plain', rounds: 1, secagg: { enabled: false } });
  const plain = await runExperimentRemotely(fed.scientist, plainConfig, { silenceTimeoutMs: 180_000 });
  t.is(plain.type, 'finished');
  const plainWeights = checkpoint(join(fed.files.workspace, 'testfed', 'plain'), 1);
  const secureRound1 = checkpoint(fed.runDir(), 1);
  const bound = Number(/quantization error <= ([\d.e+-]+)/.exec(fed.log('director'))![1]);
  let worst = 0;
  for (let i = 0; i < plainWeights.length; i++) worst = Math.max(worst, Math.abs(plainWeights[i] - secureRound1[i]));
  // Beyond the quantization bound: float32 rounding of the weights themselves (|w| ~ 1).
  t.true(worst <= bound + 1e-6, `max |secure - plain| = ${worst}, quantization bound ${bound}`);
});

test.serial('secure aggregation: an envoy killed between sharing keys and sending its masked input leaves a correct aggregate', async (t) => {
  const fed = await startTestFederation({
    envoys: ['a', 'b', 'c'], trainLimit: 900,
    experiment: { name: 'sadrop', rounds: 2, min_envoys_to_start: 3, model, training: { ...training, batch_size: 8 }, secagg, aggregation: { min_envoys: 2 } },
  });
  t.teardown(() => fed.stop());
  const victim = fed.envoys.get('c')!;
  const killed = waitForOutput(victim, /sadrop r1\] secure aggregation: shared keys/).then(() => victim.child.kill('SIGKILL'));
  const { final, events } = await fed.run();
  await killed;
  t.is(final.type, 'finished', final.message);
  const rounds = events.filter((e) => e.type === 'round');
  t.is(rounds.length, 2, 'both rounds aggregated');
  t.deepEqual(rounds[0].dropped, ['c']);
  t.deepEqual(rounds[0].envoys!.map((e) => e.envoy).sort(), ['a', 'b']);
  const director = fed.log('director');
  t.regex(director, /round 1: secure sum of a, b; masks of c removed with their neighbours' shares/);
  t.regex(director, /round 2: secure sum of a, b \(/);
  t.false(/secure aggregation: sent masked input/.test(fed.log('c')), 'c never sent its input');
  t.true(final.test!.roc_auc! > 0.5, `test AUC ${final.test!.roc_auc}`);
});

test.serial('secure aggregation: fewer envoys than the threshold fail the round clearly, and the next round goes on', async (t) => {
  const fed = await startTestFederation({
    envoys: ['a', 'b'], trainLimit: 600,
    experiment: { name: 'satoofew', rounds: 2, min_envoys_to_start: 2, model, training: { ...training, batch_size: 8 }, secagg, aggregation: { min_envoys: 1 } },
  });
  t.teardown(() => fed.stop());
  const victim = fed.envoys.get('b')!;
  void waitForOutput(victim, /satoofew r1\] secure aggregation: shared keys/).then(() => victim.child.kill('SIGKILL'));
  const { final, events } = await fed.run();
  t.is(final.type, 'finished', final.message);
  const failed = events.filter((e) => e.type === 'round_failed');
  t.deepEqual(failed.map((e) => e.round), [0, 1], 'round 2 was attempted and failed too');
  t.regex(failed[0].message!, /round 1 failed: secure aggregation needs at least 2 of the 2 envoys \(secagg.threshold\), 1 left at the masked input stage \(b: it went silent/);
  t.regex(failed[1].message!, /round 2 failed: secure aggregation needs at least 2 envoys in a round, 1 selected/);
  t.false(/secure sum/.test(fed.log('director')), 'no sum of a single envoy was ever formed');
});
