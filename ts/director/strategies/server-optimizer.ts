/**
 * What FedAvgM, FedAdam and FedYogi share (Reddi et al., ICLR 2021): take FedAvg's example-weighted mean delta
 * as a pseudo-gradient, turn it into a step with the optimizer's state, move the global model by that step.
 *
 * The step is clipped to `aggregation.max_update_norm`, the furthest FedAvg itself can move the model in one
 * round: each envoy checks that the model it receives is within that reach of the last one it trained on
 * (envoy/director-checks/trajectory.ts), and a server optimizer must not make an honest director look like one
 * that cheats. The optimizer's moments live in the director's memory: a resumed run starts them again at zero.
 */
import type { FlatWeights } from '../../core/weights.ts';
import { FedAvg } from './fedavg.ts';
import type { AggregationStrategy, ClientUpdate } from './strategy.ts';

export abstract class ServerOptimizer implements AggregationStrategy {
  abstract readonly name: string;
  private readonly mean = new FedAvg();

  constructor(private readonly maxStepNorm: number) {}

  /** The step for this round's pseudo-gradient `delta` (float64, updated state kept by the subclass). */
  protected abstract step(delta: Float64Array): Float64Array;

  aggregate(global: FlatWeights, updates: ClientUpdate[]): FlatWeights {
    const averaged = this.mean.aggregate(global, updates);
    const delta = Float64Array.from(averaged.values, (v, i) => v - global.values[i]);
    const step = this.step(delta);
    // Batch-norm moving statistics are not gradients: they move by the mean (a variance with momentum could go negative).
    for (const [start, end] of statisticsRanges(global)) step.set(delta.subarray(start, end), start);
    const clipped = clippedTo(step, this.maxStepNorm);
    return { manifest: global.manifest, values: Float32Array.from(global.values, (v, i) => v + clipped[i]) };
  }
}

/** [start, end) of every batch-norm moving mean and variance in the flat vector. */
function statisticsRanges(w: FlatWeights): [number, number][] {
  const ranges: [number, number][] = [];
  let offset = 0;
  for (const t of w.manifest) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (/moving_(mean|variance)$/.test(t.name)) ranges.push([offset, offset + size]);
    offset += size;
  }
  return ranges;
}

function clippedTo(step: Float64Array, bound: number): Float64Array {
  let squared = 0;
  for (const v of step) squared += v * v;
  const norm = Math.sqrt(squared);
  if (norm <= bound) return step;
  return step.map((v) => (v * bound) / norm);
}
