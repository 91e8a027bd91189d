/**
 * The envoy's own training loop, timed: ConvNetBN at 28x28 with Adam on PneumoniaMNIST training images, after a
 * 3-step warm-up. Shared by federation.bench.ts (against PyTorch) and gpu-check.ts (GPU against CPU).
 */
import { ModelSpecSchema, TrainingSchema } from '../ts/core/config/experiment.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { buildModel } from '../ts/core/model.ts';
import { trainLocal } from '../ts/core/training.ts';

export async function trainingThroughput(o: { data: string; width: number; batch: number; steps: number; fusedBatchNorm?: boolean }): Promise<number> {
  const images = subset(loadPneumoniaMnist(o.data, 'train'), [...Array(o.batch * 8).keys()]);
  const model = buildModel(ModelSpecSchema.parse({ width: o.width }), {}, { fusedBatchNorm: o.fusedBatchNorm });
  const config = TrainingSchema.parse({ batch_size: o.batch, learning_rate: 1e-3 });
  await trainLocal(model, images, { config: { ...config, local_epochs: 3 / 8 } }); // warm-up: 3 steps
  const result = await trainLocal(model, images, { config: { ...config, local_epochs: o.steps / 8 } });
  model.dispose();
  return (result.steps * o.batch) / result.seconds;
}
