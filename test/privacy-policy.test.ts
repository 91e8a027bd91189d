/**
 * The hospitals' privacy policy, with real envoys and a real director on the provisioned server: a default
 * envoy refuses what would leak (a batch of one, one image per update, no secure aggregation, a probe), naming
 * the rule; a hospital that opts in trains it; the ledger outlives a kill -9 and refuses a task past the budget.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { ExperimentSchema } from '../ts/core/config/experiment.ts';
import { RdpAccountant } from '../ts/core/privacy/rdp-accountant.ts';
import { localStepCount } from '../ts/core/training.ts';
import { PrivacyLedger } from '../ts/envoy/policy/ledger.ts';
import { waitForOutput } from '../ts/local/roles.ts';
import { startTestFederation, type TestFederation } from './helpers/federation.ts';

const ENVOYS = ['a', 'b', 'c'];
const model = { width: 4, seed: 1 };
const training = { batch_size: 32, local_epochs: 1 };

async function run(fed: TestFederation, experiment: Record<string, unknown>) {
  return fed.run(undefined, ExperimentSchema.parse({ rounds: 1, min_envoys_to_start: 3, model, training, ...experiment, start_timeout_seconds: 60 }));
}

test.serial('a default envoy refuses batch 1, one image per update, no secure aggregation and probes, naming the rule', async (t) => {
  const fed = await startTestFederation({ envoys: ENVOYS, protectedDefaults: true, privacy: {}, experiment: { name: 'warmup', rounds: 1, model, training } });
  t.teardown(() => fed.stop());
  // The protected default experiment is what a default envoy trains.
  const ok = await run(fed, { name: 'protected' });
  t.is(ok.final.type, 'finished', ok.final.message);
  t.deepEqual(ok.events.find((e) => e.type === 'round')?.envoys?.map((e) => e.envoy).sort(), ENVOYS);

  for (const [name, experiment, rule] of [
    ['batch-one', { training: { ...training, batch_size: 1 } }, 'min_batch_size'],
    ['one-image', { training: { ...training, batch_size: 1, examples_per_round: 1 } }, 'min_examples'],
    ['no-secagg', { secagg: { enabled: false } }, 'secure_aggregation.required'],
    ['no-defense', { model: { ...model, precode: { enabled: false } }, training: { ...training, batch_norm_statistics: 'batch' } }, 'require_one_of'],
  ] as const) {
    const { final, events } = await run(fed, { name, ...experiment });
    t.is(final.type, 'failed', `${name}: ${final.message}`);
    t.regex(final.message!, new RegExp(`experiment '${name}' cannot run: 3 of 3 envoys refuse it by their privacy policy .*privacy policy ${rule.replace('.', '\\.')}:`), name);
    const round = events.find((e) => e.type === 'round' || e.type === 'round_failed');
    t.true(!round || round.refusals!.every((r) => r.rule === rule), `${name}: the round names the rule`);
  }
  t.regex(fed.log('a'), /refused one-image round 1 by privacy policy min_examples: the update would be trained on 1 image\(s\), fewer than 64/);

  // A probe beside a protected round: the round goes on, the probe is refused by every envoy.
  const probed = await run(fed, { name: 'probed', audit: { enabled: true, probe: { examples_per_round: 1, batch_size: 1, optimizer: 'sgd', momentum: 0 } } });
  t.is(probed.final.type, 'finished', probed.final.message);
  t.regex(fed.log('director'), /audit probe incomplete \(.*a: it declined the task: privacy policy allow_probes: audit probes are not allowed at this hospital/);
  const status = await fed.status();
  for (const e of status.envoys) {
    t.true(e.refused_tasks >= 5, `${e.name} refused ${e.refused_tasks} tasks`);
    t.regex(e.last_refusal!, /allow_probes/);
  }
});

test.serial('a hospital that opts in trains what a default one refuses', async (t) => {
  const fed = await startTestFederation({
    envoys: ENVOYS, protectedDefaults: true, experiment: { name: 'warmup', rounds: 1, model, training },
    privacy: { min_batch_size: 1, min_examples: 1, secure_aggregation: { required: false }, require_one_of: [], allow_probes: true },
  });
  t.teardown(() => fed.stop());
  const { final, events } = await run(fed, {
    name: 'opted-in', secagg: { enabled: false }, model: { ...model, precode: { enabled: false } },
    training: { ...training, batch_size: 1, examples_per_round: 1, batch_norm_statistics: 'batch' },
    audit: { enabled: true, probe: { examples_per_round: 1, batch_size: 1, optimizer: 'sgd', momentum: 0 } },
  });
  t.is(final.type, 'finished', final.message);
  t.deepEqual(events.find((e) => e.type === 'round')?.envoys?.map((e) => e.envoy).sort(), ENVOYS);
  t.regex(fed.log('director'), /audit probe recorded/);
  t.regex(fed.log('a'), /privacy policy: updates from ≥ 1 images in batches ≥ 1/);
});

test.serial('the ledger survives a kill -9 mid-round and refuses the task that would exceed the epsilon budget', async (t) => {
  // DP-SGD as the shards are: 100 images each, batches of 32, one epoch, sigma 1. One round spends eps1;
  // the budget allows one round and not two.
  const dp = { enabled: true, clip_norm: 1, noise_multiplier: 1, delta: 1e-5 };
  const steps = localStepCount(100, { local_epochs: 1, batch_size: 32 });
  const epsilonAfter = (rounds: number) => new RdpAccountant(Array(rounds).fill({ noiseMultiplier: 1, sampleRate: 0.32, steps })).epsilon(1e-5).epsilon;
  const budget = (epsilonAfter(1) + epsilonAfter(2)) / 2;
  const fed = await startTestFederation({
    envoys: ENVOYS, protectedDefaults: true, trainLimit: 300, experiment: { name: 'warmup', rounds: 1, model, training },
    privacy: { dp: { epsilon_budget: budget, delta: 1e-5 } },
  });
  t.teardown(() => fed.stop());
  const victim = fed.envoys.get('c')!;
  const killed = waitForOutput(victim, /dp-1 r1\].*training/).then(() => victim.child.kill('SIGKILL'));
  const first = await run(fed, { name: 'dp-1', training: { ...training, dp }, aggregation: { min_envoys: 2 } });
  await killed;
  t.is(first.final.type, 'finished', first.final.message);
  // c died after writing its charge: the ledger counts it though no settlement followed.
  const ledger = new PrivacyLedger(fed.ledgerOf('c'));
  t.is(ledger.counted().length, 1);
  t.false(ledger.all().some((e) => e.event !== 'charge'), 'no settlement: the process was killed');
  t.true(Math.abs(ledger.epsilon(1e-5) - epsilonAfter(1)) < 1e-9, `epsilon ${ledger.epsilon(1e-5)} against ${epsilonAfter(1)}`);
  await fed.restartEnvoy('c');
  t.regex(fed.log('c'), new RegExp(`ε budget ${budget.toString().slice(0, 6)}[\\d]* at δ 0.00001 \\(${epsilonAfter(1).toFixed(3)} spent\\)`));
  const second = await run(fed, { name: 'dp-2', training: { ...training, dp }, aggregation: { min_envoys: 2 } });
  t.is(second.final.type, 'failed');
  t.regex(second.final.message!, /c: it declined the task: privacy policy dp\.epsilon_budget: this update would take the hospital's ε to [\d.]+, over its budget/);
  t.regex(readFileSync(fed.ledgerOf('a'), 'utf8'), /"event":"released"/, 'a\'s round-1 update was settled as released');
});
