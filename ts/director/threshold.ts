/**
 * After the last round: the envoys evaluate the final model on their validation splits (an evaluation round,
 * round/evaluation.ts), the director chooses the decision threshold from the sum of their operating points
 * (core/operating-points.ts) and reports the test metrics at it beside those at 0.5. A clinician reads
 * sensitivity and specificity at a threshold someone chose on purpose, not at 0.5 by default.
 */
import type { ExperimentConfig } from '../core/config/experiment.ts';
import type { ImageDataset } from '../core/data/dataset.ts';
import type { Logger } from '../core/log.ts';
import type { ClassificationMetrics } from '../core/metrics.ts';
import type { LayersModel } from '../core/model.ts';
import { chooseThreshold, type ChosenThreshold } from '../core/operating-points.ts';
import { evaluate } from '../core/training.ts';
import type { Bus } from '../core/transport/bus.ts';
import { writeWeights, type FlatWeights } from '../core/weights.ts';
import type { EnvoyRegistry } from './registry.ts';
import { collectRound } from './round/index.ts';
import { offerModel } from './round/offer.ts';
import type { RunFolder } from './run-folder.ts';

export interface ThresholdDeps { bus: Bus; registry: EnvoyRegistry; log: Logger; testSet?: ImageDataset; maxChunkBytes?: number }

export interface FederatedThreshold { chosen: ChosenThreshold; test?: ClassificationMetrics }

/** The threshold and the test metrics at it, or undefined (with a warning) when no envoy could evaluate. */
export async function federatedThreshold(deps: ThresholdDeps, a: {
  config: ExperimentConfig; runId: string; global: FlatWeights; model: LayersModel; participants: string[]; folder: RunFolder;
}): Promise<FederatedThreshold | undefined> {
  const { bus, log } = deps;
  const { config, global } = a;
  const { offered, sha256: globalSha256 } = offerModel(bus, global, a.participants, deps.maxChunkBytes);
  let collection;
  try {
    // A failed evaluation leaves the experiment finished, at 0.5: the model is already trained and saved.
    log.info(`'${config.name}': the envoys evaluate the final model on their validation splits (${a.participants.join(', ') || 'nobody'})`);
    collection = await collectRound({
      bus, config, runId: a.runId, round: config.rounds, globalWeights: offered, global, participants: a.participants,
      globalSha256, registry: deps.registry, log, evaluate: true,
    });
  } catch (error) {
    log.warn(`no decision threshold: the evaluation round failed: ${(error as Error).message}`);
    return undefined;
  } finally {
    offered.close();
  }
  const chosen = chooseThreshold(collection.results.flatMap((r) => (r.operating_points ? [r.operating_points] : [])));
  if (!chosen) {
    log.warn(`no decision threshold: ${collection.results.length ? 'the validation splits hold one class only' : 'no envoy evaluated the final model'}; metrics stay at 0.5`);
    return undefined;
  }
  writeWeights(a.model, global);
  const test = deps.testSet && config.evaluate_on_test ? evaluate(a.model, deps.testSet, chosen.threshold) : undefined;
  a.folder.writeThreshold({ ...chosen, source: 'the federation\'s validation data (Youden J, one-standard-error rule)', test_at_threshold: test ?? null });
  if (test) a.folder.log({ round: config.rounds - 1, scope: 'director', split: 'test_at_threshold', metrics: { ...test, threshold: chosen.threshold } });
  log.info(`threshold ${chosen.threshold} from ${chosen.examples} validation images of ${chosen.envoys} envoys ` +
    `(validation sensitivity ${chosen.sensitivity.toFixed(3)}, specificity ${chosen.specificity.toFixed(3)})` +
    (test ? `: test accuracy ${test.accuracy.toFixed(4)}, sensitivity ${test.sensitivity.toFixed(3)}, specificity ${test.specificity.toFixed(3)}` : ''));
  return { chosen, test };
}
