/** From a validated LeakageConfig to a run: loads the victim images and the floor's training set. */
import { loadPneumoniaMnist } from '../core/data/npz.ts';
import { subset } from '../core/data/dataset.ts';
import type { LeakageConfig } from './config.ts';
import { runLeakage, type LeakageRunResult } from './run.ts';

export async function runFromConfig(c: LeakageConfig, log?: (line: string) => void): Promise<LeakageRunResult> {
  const victims = subset(loadPneumoniaMnist(c.data, c.split), c.indices);
  const train = loadPneumoniaMnist(c.data, 'train');
  if (c.indices.length % c.batch !== 0) throw new Error(`${c.indices.length} images do not split into batches of ${c.batch}`);
  if ((c.sent === undefined) !== (c.received === undefined)) throw new Error('give both --sent and --received, or neither');
  return runLeakage({
    attack: c.attack, model: c.model, init: c.init, bnMode: c.bn_mode, images: victims.images, labels: victims.labels, batch: c.batch,
    floorImages: train.images, iterations: c.iterations, restarts: c.restarts, learningRate: c.learning_rate,
    tvWeight: c.tv_weight, seed: c.seed, localSteps: c.local_steps, localLearningRate: c.local_learning_rate,
    saved: c.sent && c.received ? { sent: c.sent, received: c.received } : undefined, outDir: c.out, log,
  });
}
