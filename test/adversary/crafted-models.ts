/**
 * The models a cheating director sends, for tests and bench/malicious-director.bench.ts: each attack of the
 * literature as an edit of the honest global model (or a model per envoy). Test-only code: nothing in ts/
 * imports it.
 */
import type { ExperimentConfig } from '../../ts/core/config/experiment.ts';
import type { ImageDataset } from '../../ts/core/data/dataset.ts';
import { buildModel } from '../../ts/core/model.ts';
import { readWeights, sliceNamed, writeWeights, type FlatWeights } from '../../ts/core/weights.ts';
import { gradientDominance, MAX_DOMINANCE } from '../../ts/envoy/director-checks/crafted-weights.ts';

/** The experiment's own initial model (what an honest round 1 sends, and what every envoy builds itself). */
export function initialWeights(config: ExperimentConfig): FlatWeights {
  const m = buildModel(config.model);
  try {
    return readWeights(m);
  } finally {
    m.dispose();
  }
}

/** A copy of `w` with `edit` applied to the values of one named tensor. */
export function edited(w: FlatWeights, name: string, edit: (values: Float32Array) => void): FlatWeights {
  const out = { manifest: w.manifest, values: Float32Array.from(w.values) };
  const slice = sliceNamed(out, name);
  if (!slice) throw new Error(`no tensor ${name} in ${w.manifest.map((t) => t.name).join(', ')}`);
  edit(slice);
  return out;
}

export const tensorName = (w: FlatWeights, part: string) => w.manifest.find((t) => t.name.includes(part))!.name;

export function distance(a: FlatWeights, b: FlatWeights): number {
  let s = 0;
  for (let i = 0; i < a.values.length; i++) s += (a.values[i] - b.values[i]) ** 2;
  return Math.sqrt(s);
}

/** Model inconsistency with gradient suppression (Pasquini et al.): zeroed classifier and last conv, so an envoy's update vanishes. */
export function suppressed(real: FlatWeights): FlatWeights {
  const blocks = real.manifest.filter((t) => /^conv\d+\/kernel$/.test(t.name)).map((t) => t.name);
  return edited(edited(real, tensorName(real, 'classifier/kernel'), (v) => v.fill(0)), blocks[blocks.length - 1], (v) => v.fill(0));
}

/** Per-client crafted kernels (LOKI, in spirit): each envoy's own first-layer kernels, so their updates stay apart in the sum. */
export function perEnvoyKernels(w: FlatWeights, envoys: string[]): Map<string, FlatWeights> {
  return new Map(envoys.map((e, i) => [e, edited(w, tensorName(w, 'conv0'), (v) => { for (let j = i; j < v.length; j += envoys.length) v[j] += 0.05; })]));
}

/** Trap weights in the spirit of Boenisch et al.: half of the first layer's kernels the negatives of the other half, scaled up. */
export function mirroredFirstLayer(w: FlatWeights): FlatWeights {
  return edited(w, tensorName(w, 'conv0'), (v) => { const half = v.length >> 1; for (let j = 0; j < half; j++) { v[j] *= 8; v[half + j] = -v[j]; } });
}

/** The same model for everyone, `rounds` rounds' worth of the bound away from `w`: a jump the trajectory check refuses. */
export function jumped(w: FlatWeights, bound: number, rounds = 3): FlatWeights {
  const kernel = tensorName(w, 'classifier/kernel');
  const size = sliceNamed(w, kernel)!.length;
  return edited(w, kernel, (v) => { for (let j = 0; j < v.length; j++) v[j] += (rounds * bound) / Math.sqrt(size); });
}

/** The last batch norm as a gate: gamma scaled down, beta at -`threshold` of it, so its ReLU passes only activations that many standard deviations above the batch's mean. */
export function gate(w: FlatWeights, threshold: number): FlatWeights {
  const last = w.manifest.filter((m) => /bn\d+\/gamma$/.test(m.name)).at(-1)!.name;
  const gamma = Float32Array.from(sliceNamed(w, last)!);
  const scaled = edited(w, last, (g) => g.forEach((v, i) => { g[i] = 0.3 * v; }));
  return edited(scaled, last.replace('gamma', 'beta'), (b) => b.forEach((_, i) => { b[i] = -threshold * 0.3 * Math.abs(gamma[i]); }));
}

/**
 * The strongest crafted-weights director: it knows the target hospital's images and tunes the gate until one
 * image of `batch` holds the dense layers' gradient (the crafted-weights check's measure), within `bound` of
 * `w` (so the trajectory check alone would let it through). Undefined when no gate within the bound does.
 */
export function calibratedGate(config: ExperimentConfig, w: FlatWeights, batch: ImageDataset, bound = config.aggregation.max_update_norm): FlatWeights | undefined {
  const net = buildModel(config.model);
  try {
    for (let threshold = 3; threshold <= 9; threshold += 0.25) {
      const crafted = gate(w, threshold);
      if (distance(crafted, w) > bound) return undefined;
      writeWeights(net, crafted);
      const beta = config.model.precode.enabled ? config.model.precode.beta : 0;
      if (Math.max(...gradientDominance(net, batch, beta).map((d) => d.dominance)) > MAX_DOMINANCE) return crafted;
    }
    return undefined;
  } finally {
    net.dispose();
  }
}
