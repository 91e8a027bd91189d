/**
 * Runs one experiment round by round: select envoys, offer the global model, collect updates, aggregate,
 * evaluate, log, checkpoint; then choose the decision threshold from the envoys' validation data (threshold.ts). A restarted director picks the experiment up after its last completed round.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { MEAN_STRATEGIES, type ExperimentConfig } from '../core/config/experiment.ts';
import type { ImageDataset } from '../core/data/dataset.ts';
import type { Logger } from '../core/log.ts';
import type { ExperimentEvent } from '../core/messages.ts';
import type { ClassificationMetrics } from '../core/metrics.ts';
import { buildModel } from '../core/model.ts';
import { backendName } from '../core/tf.ts';
import { evaluate } from '../core/training.ts';
import type { Bus } from '../core/transport/bus.ts';
import { readWeights, writeWeights, type FlatWeights } from '../core/weights.ts';
import type { EnvoyRegistry } from './registry.ts';
import { loadNative } from '../core/secagg/native.ts';
import { recordReceived, runProbe } from './audit.ts';
import { collectRound, type RoundCollection } from './round/index.ts';
import { offerModel } from './round/offer.ts';
import { configDigest, RunFolder, type RunState } from './run-folder.ts';
import { makeStrategy, type AggregationStrategy } from './strategies/index.ts';
import { boundedStep, modelProblem, withWeightCap } from './admission.ts';
import { SubCohortWatch } from './round/sub-cohorts.ts';
import { federatedThreshold } from './threshold.ts';
import { exportFinalModel, MODEL_DIR, type FinishedRun } from './model-card.ts';

export interface RunnerDeps {
  bus: Bus;
  workspace: string;
  registry: EnvoyRegistry;
  testSet?: ImageDataset;
  maxChunkBytes?: number;
  log: Logger;
  publish: (event: ExperimentEvent) => void;
}

export class ExperimentConflictError extends Error {}

/** Where an experiment stands in the workspace: new, resumable, finished, or clashing with another config. */
export function existingRun(deps: { workspace: string; federation: string }, config: ExperimentConfig): RunState | undefined {
  const state = RunFolder.for(deps.workspace, deps.federation, config.name).readState();
  if (state && state.config_sha256 !== configDigest(config)) {
    throw new ExperimentConflictError(`experiment '${config.name}' already exists in this federation with a different config; ` +
      'resubmit the same config to resume it, or choose a new name');
  }
  return state;
}

export async function runExperiment(deps: RunnerDeps, config: ExperimentConfig): Promise<void> {
  const { log, publish, bus } = deps;
  const federation = bus.federation;
  const folder = RunFolder.for(deps.workspace, federation, config.name);
  const previous = existingRun({ workspace: deps.workspace, federation }, config);
  const state: RunState = previous ?? {
    experiment: config.name, config_sha256: configDigest(config), status: 'running', next_round: 0,
    rounds: config.rounds, failed_rounds: [], updated_at: new Date().toISOString(),
  };
  if (state.status === 'finished') {
    publish({ experiment: config.name, type: 'finished', rounds: config.rounds, message: 'already finished', run_dir: folder.dir });
    return;
  }
  const model = buildModel(config.model);
  if (state.checkpoint) writeWeights(model, folder.loadCheckpoint(state.checkpoint));
  let global = readWeights(model);
  if (!previous) folder.writeConfig(config, { federation, backend: backendName, parameters: global.values.length, created_at: new Date().toISOString() });
  if (state.next_round > 0) log.info(`resuming '${config.name}' after round ${state.next_round}`);
  publish({ experiment: config.name, type: 'started', round: state.next_round, rounds: config.rounds, run_dir: folder.dir });
  const runId = randomUUID().replaceAll('-', '').slice(0, 8);
  const strategy = makeStrategy(config.aggregation);
  // Refused sub-cohorts over the rounds: an envoy in one round after round is found and excluded (secure sub-cohorts only).
  const watch = new SubCohortWatch(config.secagg.exclude_after);
  let lastTest: ClassificationMetrics | undefined;
  try {
    if (config.secagg.enabled) loadNative(); // fail now, with the build instructions, not in round 1
    await waitForEnvoys(deps, config);
    for (let round = state.next_round; round < config.rounds; round++) {
      const started = performance.now();
      const participants = selectParticipants(deps.registry, config).filter((e) => !watch.isExcluded(e));
      const { offered, sha256: globalSha256 } = offerModel(bus, global, participants, deps.maxChunkBytes);
      let collection: RoundCollection;
      try {
        log.info(`'${config.name}' round ${round + 1}/${config.rounds} (run ${runId}): training on ${participants.join(', ') || 'nobody'}`);
        const ctx = {
          bus, config, runId, round, globalWeights: offered, globalSha256, global, participants, registry: deps.registry, log,
          suspicion: (envoy: string) => watch.suspicion(envoy),
        };
        const audited = config.audit.enabled;
        collection = await collectRound({ ...ctx, audit: audited ? { kind: 'round' } : undefined });
        if (audited) recordReceived(folder.dir, 'round', round, config, global, collection);
        if (audited && config.audit.probe) await runProbe(ctx, folder.dir);
      } finally {
        offered.close();
      }
      for (const { envoy, reason } of watch.record(collection.subCohorts ?? [])) {
        log.warn(`round ${round + 1}: ${envoy} is excluded from the rest of '${config.name}': ${reason}`);
      }
      logEnvoyMetrics(folder, round, collection);
      const dropped = collection.dropped.map((d) => d.envoy);
      const refusals = collection.dropped.filter((d) => d.rule).map((d) => ({ envoy: d.envoy, rule: d.rule!, reason: d.reason }));
      for (const r of refusals) {
        deps.registry.refused(r.envoy, r.rule, r.reason);
        log.warn(`round ${round + 1}: ${r.envoy} refused the task ${r.rule.startsWith('honest_director.') ? 'after checking its director' : 'by its privacy policy'} (${r.rule})`);
      }
      // Policies do not change between rounds: if they leave too few envoys, the experiment cannot run at all.
      const willing = participants.length - refusals.length;
      const needed = Math.max(config.aggregation.min_envoys, config.secagg.enabled ? 2 : 1);
      if (refusals.length && willing < needed) {
        throw new Error(`experiment '${config.name}' cannot run: ${refusals.length} of ${participants.length} envoys refuse it by their privacy policy ` +
          `(${refusals.map((r) => `${r.envoy}: ${r.reason}`).join('; ')}), ${willing} would take part, ${needed} needed`);
      }
      const outcome = nextGlobal(strategy, global, collection, config, round);
      const test = 'global' in outcome ? evaluateOnTest(deps, model, outcome.global, config) : undefined;
      const failure = 'failure' in outcome ? outcome.failure
        : test === 'broken' ? `round ${round + 1} failed: the aggregated model gives non-finite outputs on the test set` : undefined;
      if (failure || !('global' in outcome) || test === 'broken') {
        log.warn(failure + '; the global model stays as it was and the next round goes on');
        writeWeights(model, global);
        state.failed_rounds.push(round);
        checkpoint(folder, state, round, global);
        publish({ experiment: config.name, type: 'round_failed', round, rounds: config.rounds, message: failure, dropped, ...(refusals.length ? { refusals } : {}) });
      } else {
        global = outcome.global;
        if (test) logTest(deps, folder, round, test);
        lastTest = test ?? lastTest;
        // Checkpoint before telling anyone: a director killed after the event must not redo the round.
        checkpoint(folder, state, round, global);
        publish({
          experiment: config.name, type: 'round', round, rounds: config.rounds, test: lastTest, dropped, ...(refusals.length ? { refusals } : {}),
          seconds: (performance.now() - started) / 1000,
          envoys: collection.results.map((r) => ({ envoy: r.envoy, examples: r.examples, train_loss: r.train?.loss, train_seconds: r.train?.seconds, val_global: r.val_global, val_local: r.val_local, epsilon: r.privacy?.epsilon })),
        });
      }
    }
    const threshold = await federatedThreshold(deps, { config, runId, global, model, participants: selectParticipants(deps.registry, config), folder });
    await exportModel(deps, { federation, config, model, global, folder, failedRounds: state.failed_rounds, test: lastTest, threshold });
    state.status = 'finished';
    folder.writeState(state);
    publish({
      experiment: config.name, type: 'finished', rounds: config.rounds, test: lastTest, run_dir: folder.dir,
      ...(threshold ? { threshold: threshold.chosen, ...(threshold.test ? { test_at_threshold: threshold.test } : {}) } : {}),
    });
  } catch (error) {
    state.status = 'failed';
    folder.writeState(state);
    publish({ experiment: config.name, type: 'failed', message: (error as Error).message, run_dir: folder.dir });
    throw error;
  } finally {
    folder.close();
    model.dispose();
  }
}

/** The round's new global model, or why there is none (too few updates, a protocol failure, a non-finite model). */
function nextGlobal(strategy: AggregationStrategy, global: FlatWeights, collection: RoundCollection, config: ExperimentConfig, round: number):
  { global: FlatWeights } | { failure: string } {
  const contributors = collection.contributors ?? collection.updates.length;
  if (collection.failure) return { failure: `round ${round + 1} failed: ${collection.failure}` };
  if (contributors < Math.max(1, config.aggregation.min_envoys)) {
    return {
      failure: `round ${round + 1} failed: ${contributors} update(s) arrived, at least ${config.aggregation.min_envoys} needed` +
        (collection.dropped.length ? ` (${collection.dropped.map((d) => `${d.envoy}: ${d.reason}`).join('; ')})` : ''),
    };
  }
  const updates = (MEAN_STRATEGIES as readonly string[]).includes(strategy.name) ? withWeightCap(collection.updates, config) : collection.updates;
  const next = boundedStep(global, strategy.aggregate(global, updates), config.aggregation.max_update_norm);
  const problem = modelProblem(next);
  if (problem) return { failure: `round ${round + 1} failed: ${problem}` };
  return { global: next };
}

/** `<run>/model/`: the final model and its card. A failure is loud but leaves the experiment finished (the checkpoint has the model). */
async function exportModel(deps: RunnerDeps, run: Omit<FinishedRun, 'testSet'> & { global: FlatWeights }): Promise<void> {
  try {
    writeWeights(run.model, run.global);
    await exportFinalModel({ ...run, testSet: deps.testSet });
    deps.log.info(`model and model card written to ${join(run.folder.dir, MODEL_DIR)}`);
  } catch (error) {
    deps.log.error(`could not export the final model: ${(error as Error).message}; its weights are in the last checkpoint`);
  }
}

function checkpoint(folder: RunFolder, state: RunState, round: number, global: ReturnType<typeof readWeights>): void {
  state.checkpoint = folder.saveCheckpoint(round, global);
  state.next_round = round + 1;
  state.updated_at = new Date().toISOString();
  folder.writeState(state);
}

function selectParticipants(registry: EnvoyRegistry, config: ExperimentConfig): string[] {
  const alive = registry.alive().map((d) => d.envoy).sort();
  return config.envoys ? alive.filter((e) => config.envoys!.includes(e)) : alive;
}

async function waitForEnvoys(deps: RunnerDeps, config: ExperimentConfig): Promise<void> {
  const deadline = Date.now() + config.start_timeout_seconds * 1000;
  const needed = config.envoys ? Math.min(config.envoys.length, Math.max(config.min_envoys_to_start, 1)) : config.min_envoys_to_start;
  while (selectParticipants(deps.registry, config).length < needed) {
    if (Date.now() > deadline) {
      throw new Error(`only ${selectParticipants(deps.registry, config).length} of the ${needed} envoys needed registered within ${config.start_timeout_seconds} s`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The candidate model (left written into `model`) on the director's test set: its metrics, undefined without
 * a test set, or 'broken' when its loss is not finite (the round is then refused). A metric that is not
 * finite otherwise (say ROC-AUC of a degenerate model) is reported and the round keeps no test metrics.
 */
function evaluateOnTest(deps: RunnerDeps, model: ReturnType<typeof buildModel>, candidate: FlatWeights, config: ExperimentConfig): ClassificationMetrics | 'broken' | undefined {
  writeWeights(model, candidate);
  if (!deps.testSet || !config.evaluate_on_test) return undefined;
  const test = evaluate(model, deps.testSet);
  if (!Number.isFinite(test.loss)) return 'broken';
  const bad = Object.entries(test).filter(([, v]) => typeof v === 'number' && !Number.isFinite(v)).map(([k]) => k);
  if (bad.length) {
    deps.log.warn(`the test evaluation gave non-finite ${bad.join(', ')}; no test metrics this round`);
    return undefined;
  }
  return test;
}

function logTest(deps: RunnerDeps, folder: RunFolder, round: number, test: ClassificationMetrics): void {
  folder.log({ round, scope: 'director', split: 'test', metrics: test });
  deps.log.info(`round ${round + 1}: test roc_auc=${test.roc_auc?.toFixed(4) ?? 'undefined (one class)'} accuracy=${test.accuracy.toFixed(4)}`);
}

function logEnvoyMetrics(folder: RunFolder, round: number, collection: RoundCollection): void {
  for (const r of collection.results) {
    if (r.train) folder.log({ round, scope: 'envoy', envoy: r.envoy, split: 'train', metrics: { loss: r.train.loss, examples: r.examples } });
    if (r.val_global) folder.log({ round, scope: 'envoy', envoy: r.envoy, split: 'val_global', metrics: r.val_global });
    if (r.val_local) folder.log({ round, scope: 'envoy', envoy: r.envoy, split: 'val_local', metrics: r.val_local });
    if (r.privacy) folder.log({ round, scope: 'envoy', envoy: r.envoy, split: 'privacy', metrics: { epsilon: r.privacy.epsilon, delta: r.privacy.delta } });
  }
}

