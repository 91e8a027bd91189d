/**
 * A director that cheats (test/adversary/cheating-director.ts, with the real director's kit) against real
 * envoys with the default privacy policy on the provisioned server: one test per attack of the issue. No
 * envoy shares keys (so none can send a masked update) derived from an inconsistent, crafted, out-of-
 * trajectory or disallowed model or with a sybil cohort, and each refusal names its rule. The same relay
 * with an honest model goes on to share keys, and an honest 5-round federation is never refused; a restarted
 * envoy checks from the last model it trained on.
 */
import test from 'ava';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentSchema, type ExperimentConfig } from '../ts/core/config/experiment.ts';
import type { Bus } from '../ts/core/transport/bus.ts';
import { decodeWeights, encodeWeights } from '../ts/core/weights.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { loadEnvoyConfig } from '../ts/envoy/start.ts';
import { loadShard } from '../ts/envoy/shard.ts';
import { CHECK_BATCH } from '../ts/envoy/director-checks/crafted-weights.ts';
import { calibratedGate, initialWeights, jumped, mirroredFirstLayer, perEnvoyKernels, suppressed } from './adversary/crafted-models.ts';
import { cheatingRound, type CheatPlan, type EnvoyOutcome } from './adversary/cheating-director.ts';
import { startTestFederation, type TestFederation } from './helpers/federation.ts';

const ENVOYS = ['a', 'b', 'c'];
const model = { width: 4, seed: 1 };
const training = { batch_size: 32, local_epochs: 1 };

let fed: TestFederation;
let director: Bus;

test.before(async () => {
  fed = await startTestFederation({ envoys: ENVOYS, protectedDefaults: true, privacy: {}, experiment: { name: 'warmup', rounds: 1, model, training } });
  director = await fed.connectAs('director');
});
test.after.always(async () => {
  await director?.close();
  await fed?.stop();
});

const experiment = (name: string): ExperimentConfig => ExperimentSchema.parse({ ...fed.config, name, model, training });

const initial = initialWeights;

async function cheat(plan: Omit<CheatPlan, 'envoys'> & { envoys?: string[] }): Promise<Map<string, EnvoyOutcome>> {
  return cheatingRound(director, { envoys: ENVOYS, ...plan });
}

/** Nothing derived from the envoy's data left it: it did not even share keys. */
function refusedBy(t: import('ava').ExecutionContext, outcomes: Map<string, EnvoyOutcome>, envoy: string, rule: string, reason?: RegExp) {
  const o = outcomes.get(envoy)!;
  t.is(o.rule, rule, `${envoy}: ${o.reason}`);
  if (reason) t.regex(o.reason ?? '', reason, envoy);
  t.false(o.stages.includes('share_keys') || o.stages.includes('masked_input'), `${envoy} shared no keys: ${o.stages.join(', ')}`);
}

test.serial("the cheating director's relay itself is sound: the same honest model for everyone goes on to sharing keys", async (t) => {
  const config = experiment('relay-honest');
  const w = initial(config);
  const outcomes = await cheat({ experiment: config, round: 0, weightsFor: () => w });
  for (const e of ENVOYS) t.deepEqual(outcomes.get(e), { stages: ['advertise', 'share_keys'] }, e);
});

test.serial('model inconsistency with gradient suppression: the target gets the real model, the others one whose update is zero; every envoy refuses', async (t) => {
  const config = experiment('inconsistent');
  const real = initial(config);
  // A zeroed classifier and last conv layer: the others' gradients vanish, so the sum would be the target's update.
  const zeroed = suppressed(real);
  // Round 2 of an experiment they never saw: both models are within one round's reach of the initial one.
  const outcomes = await cheat({ experiment: config, round: 1, weightsFor: (e) => (e === 'a' ? real : zeroed) });
  for (const e of ENVOYS) refusedBy(t, outcomes, e, 'honest_director.same_model', /inconsistent models from the director: [abc] was sent a different task/);
  t.regex(fed.log('a'), /secure aggregation: nothing sent beyond the share keys stage: refused by honest_director\.same_model/);
});

test.serial('per-envoy crafted kernels (LOKI): each hospital its own convolution; every envoy refuses', async (t) => {
  const config = experiment('per-envoy-kernels');
  const w = initial(config);
  const crafted = perEnvoyKernels(w, ENVOYS);
  const outcomes = await cheat({ experiment: config, round: 1, weightsFor: (e) => crafted.get(e)! });
  for (const e of ENVOYS) refusedBy(t, outcomes, e, 'honest_director.same_model');
});

test.serial('sybils: a cohort padded with members that are not provisioned hospitals is refused at the task', async (t) => {
  const config = experiment('sybils');
  const w = initial(config);
  const outcomes = await cheat({ experiment: config, round: 0, envoys: ['a'], sybils: ['ghost-1', 'ghost-2'], weightsFor: () => w });
  refusedBy(t, outcomes, 'a', 'honest_director.cohort', /ghost-1, ghost-2, not provisioned hospitals/);
  t.deepEqual(outcomes.get('a')!.stages, [], 'not even an advertisement');
});

test.serial("sybils: an advertisement the director forged for a hospital it left out is refused (not that hospital's signature)", async (t) => {
  const config = experiment('forged');
  const w = initial(config);
  const outcomes = await cheat({ experiment: config, round: 0, envoys: ['a', 'b'], forged: ['c'], weightsFor: () => w });
  for (const e of ['a', 'b']) refusedBy(t, outcomes, e, 'honest_director.signed_cohort', /relayed as c's is not signed by c/);
});

test.serial("gradient suppression by weights: the others' weights near zero, so the sum is the target's update; the target refuses", async (t) => {
  const config = experiment('suppressed-weights');
  const w = initial(config);
  const outcomes = await cheat({ experiment: config, round: 0, weightsFor: () => w, examplesOf: (e) => (e === 'a' ? 10_000 : 1) });
  refusedBy(t, outcomes, 'a', 'secure_aggregation.max_weight_share', /would be (99\.\d|100\.0)% of the secure sum/);
  // The others go on alone and find too few hospitals signed: nobody shares keys.
  for (const e of ['b', 'c']) refusedBy(t, outcomes, e, 'secure_aggregation.min_cohort');
});

test.serial('a crafted initial model (trap weights) is refused before the envoy advertises anything', async (t) => {
  const config = experiment('trap-weights');
  const w = initial(config);
  // Trap weights in the spirit of Boenisch et al.: half of the first layer's kernels the negatives of the other half, scaled up.
  const trap = mirroredFirstLayer(w);
  const outcomes = await cheat({ experiment: config, round: 0, weightsFor: () => trap });
  for (const e of ENVOYS) {
    refusedBy(t, outcomes, e, 'honest_director.initial_model', /round 1's model is not the one the experiment's architecture and seed give/);
    t.deepEqual(outcomes.get(e)!.stages, [], `${e} advertised nothing`);
  }
});

test.serial("a jump beyond what a round's bounded updates can reach is refused", async (t) => {
  const config = experiment('jump');
  const w = initial(config);
  const bound = config.aggregation.max_update_norm;
  // The same model for everyone (consistent), three rounds' worth of the bound away from where round 2 can be.
  const far = jumped(w, bound);
  const outcomes = await cheat({ experiment: config, round: 1, weightsFor: () => far });
  for (const e of ENVOYS) refusedBy(t, outcomes, e, 'honest_director.trajectory', /the global model moved [\d.]+ \(L2\) since round 1, beyond the [\d.]+ that 1 round\(s\)/);
});

test.serial('weights crafted to single images out of a hospital\'s batch (a gated batch norm, within one round\'s bound) are refused before it advertises', async (t) => {
  const config = experiment('crafted-gate');
  const gate = calibratedGate(config, initial(config), checkBatchOf('a'));
  t.truthy(gate, 'a gate that singles out one image of a\'s batch exists within the bound');
  const outcomes = await cheat({ experiment: config, round: 1, weightsFor: () => gate! });
  refusedBy(t, outcomes, 'a', 'honest_director.crafted_weights', /one image dominates the gradient of (classifier|precode\/\w+)/);
  t.deepEqual(outcomes.get('a')!.stages, [], 'a advertised nothing');
  // The others' batches may not be singled out by a gate tuned to a's; without a, too few hospitals sign.
  for (const e of ['b', 'c']) t.regex(outcomes.get(e)!.rule ?? '', /^(honest_director\.crafted_weights|secure_aggregation\.min_cohort)$/, `${e}: ${outcomes.get(e)!.reason}`);
  for (const e of ENVOYS) t.false(outcomes.get(e)!.stages.includes('share_keys'), `${e} shared no keys`);
});

/** A's check batch: the first CHECK_BATCH images of its shard, as its envoy measures them. */
function checkBatchOf(envoy: string) {
  const shard = loadShard(envoy, loadEnvoyConfig(fed.files.envoys.find((f) => f.endsWith(`envoy-${envoy}.yaml`))!).shard);
  return subset(shard.train, [...Array(CHECK_BATCH).keys()]);
}

test.serial('an added imprint layer (an architecture outside what the envoy trains) never becomes a task', async (t) => {
  const config = experiment('imprint');
  const w = initial(config);
  const outcomes = await cheat({
    experiment: config, round: 0, weightsFor: () => w,
    tamper: (task) => { (task.model as { architecture: string }).architecture = 'convnet_bn_imprint'; },
  });
  for (const e of ENVOYS) {
    t.is(outcomes.get(e)!.rule, 'malformed', e);
    t.regex(outcomes.get(e)!.reason!, /architecture/, e);
    t.deepEqual(outcomes.get(e)!.stages, [], e);
  }
});

test.serial('an honest federation is never refused: 5 protected rounds, every envoy in every round', async (t) => {
  const { final, events } = await fed.run(undefined, ExperimentSchema.parse({ ...fed.config, name: 'honest-5', rounds: 5, min_envoys_to_start: 3, model, training }));
  t.is(final.type, 'finished', final.message);
  const rounds = events.filter((e) => e.type === 'round');
  t.is(rounds.length, 5);
  for (const r of rounds) t.deepEqual(r.envoys?.map((e) => e.envoy).sort(), ENVOYS, `round ${r.round! + 1}`);
  for (const e of ENVOYS) t.notRegex(fed.log(e), /honest-5[^\n]*(honest_director|refused the model)/, e);
});

test.serial('a restarted envoy goes on checking from the last model it trained on, not from round 1', async (t) => {
  const config = ExperimentSchema.parse({ ...fed.config, name: 'honest-5', rounds: 5, model, training });
  const last = decodeWeights(readFileSync(join(fed.runDir('honest-5'), 'checkpoints', 'round-0005.weights')));
  await fed.envoys.get('a')!.stop();
  await fed.restartEnvoy('a');
  const kept = `${fed.ledgerOf('a')}.models`;
  t.is(statSync(join(kept, 'honest-5.weights')).mode & 0o777, 0o600, 'the kept model is readable by the envoy only');
  // 1.5 bounds from the last model: within 6 rounds' reach of round 1's, beyond one round's reach of round 5's.
  const bound = config.aggregation.max_update_norm;
  const beyond = { manifest: last.manifest, values: last.values.map((v, i) => (i === 0 ? v + 1.5 * bound : v)) };
  const outcomes = await cheat({ experiment: config, round: 5, weightsFor: () => beyond });
  for (const e of ENVOYS) refusedBy(t, outcomes, e, 'honest_director.trajectory', /since round 5, beyond/);
});

test.serial('a final model is evaluated once per experiment: a director asking again (an oracle on the validation images) is refused', async (t) => {
  const { randomUUID } = await import('node:crypto');
  const { kinds } = await import('../ts/core/messages.ts');
  const { subjects } = await import('../ts/core/subjects.ts');
  const { chunkBytesFor, offerBlob } = await import('../ts/core/transport/blobs.ts');
  const config = experiment('evaluated-once');
  const offered = offerBlob(director, encodeWeights(initial(config)), ['a'], chunkBytesFor(director));
  t.teardown(() => offered.close());
  const ask = () => director.request(kinds.task, subjects.envoyTask(director.federation, 'a'), 'a', {
    experiment: config.name, run_id: 'r1', round: config.rounds, task_id: randomUUID(), model: config.model, training: config.training,
    weights: offered.refFor('a'), max_update_norm: config.aggregation.max_update_norm, evaluate: true,
  }, 10_000);
  t.true((await ask()).accepted, 'the first evaluation is accepted');
  let again = await ask();
  for (let i = 0; i < 100 && again.retry_after_ms; i++) {
    await new Promise((r) => setTimeout(r, again.retry_after_ms));
    again = await ask();
  }
  t.false(again.accepted);
  t.is(again.rule, 'honest_director.evaluation_once', again.reason);
});
