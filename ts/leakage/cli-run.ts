/** From a validated LeakageConfig to a run: loads the victim images and the floor's training set. */
import { readFileSync } from 'node:fs';
import { loadPneumoniaMnist } from '../core/data/npz.ts';
import { subset } from '../core/data/dataset.ts';
import { decodeWeights, type FlatWeights } from '../core/weights.ts';
import { auditedRunConfig } from './audit-attack.ts';
import type { LeakageConfig } from './config.ts';
import { runLeakage, type LeakageRunConfig, type LeakageRunResult } from './run.ts';

export async function runFromConfig(c: LeakageConfig, log?: (line: string) => void): Promise<LeakageRunResult> {
  const train = loadPneumoniaMnist(c.data, 'train');
  const attack = { attack: c.attack, iterations: c.iterations, restarts: c.restarts, learningRate: c.learning_rate, tvWeight: c.tv_weight, seed: c.seed };
  if (c.record) {
    if (!c.envoy) throw new Error('--record needs --envoy: whose update to attack');
    if (!c.truth.length) throw new Error("--record needs --truth: the envoy's audit truth file(s), to score the reconstruction");
    return runLeakage({ ...auditedRunConfig(c.record, c.envoy, c.truth, attack), floorImages: train.images, outDir: c.out, log });
  }
  const victims = subset(loadPneumoniaMnist(c.data, c.split), c.indices);
  if (c.indices.length % c.batch !== 0) throw new Error(`${c.indices.length} images do not split into batches of ${c.batch}`);
  if ((c.sent === undefined) !== (c.received === undefined)) throw new Error('give both --sent and --received, or neither');
  const config: LeakageRunConfig = {
    ...attack, model: c.model, bnMode: c.bn_mode, images: victims.images, labels: victims.labels, batch: c.batch,
    floorImages: train.images, localSteps: c.local_steps, localLearningRate: c.local_learning_rate,
    saved: c.sent && c.received ? savedPair(c.sent, c.received) : undefined, outDir: c.out, log,
  };
  return runLeakage(config);
}

/** A pair of weights files (sent, returned) as the director's view: the weights sent and the update. */
function savedPair(sentPath: string, receivedPath: string): { sent: FlatWeights; delta: FlatWeights } {
  const [sent, received] = [sentPath, receivedPath].map((p) => decodeWeights(readFileSync(p)));
  if (sent.values.length !== received.values.length) {
    throw new Error(`${sentPath} has ${sent.values.length} weights, ${receivedPath} ${received.values.length}: not the same model`);
  }
  return { sent, delta: { manifest: received.manifest, values: received.values.map((v, i) => v - sent.values[i]) } };
}
