/**
 * Gradient pruning (Zhu et al., "Deep Leakage from Gradients", NeurIPS 2019, section 5): before an update
 * leaves the envoy, every tensor keeps only its largest-magnitude fraction p of entries and the rest become
 * zero. Per tensor, as the paper's reference code prunes each parameter's gradient by its own percentile:
 * a global threshold would wipe out whole small layers (BatchNorm) whose entries are small but informative.
 */
import { slicesOf, type FlatWeights } from '../core/weights.ts';

export interface PruningReport { kept: number; total: number }

/** A pruned copy of `update`; ties at the threshold are kept, so slightly more than p may survive. */
export function pruneUpdate(update: FlatWeights, keepFraction: number): { update: FlatWeights; report: PruningReport } {
  if (!(keepFraction > 0 && keepFraction <= 1)) throw new Error(`pruning keep_fraction must be in (0, 1], got ${keepFraction}`);
  const pruned = { manifest: update.manifest, values: new Float32Array(update.values) };
  const kept = slicesOf(pruned).reduce((n, tensor) => n + pruneInPlace(tensor.values, keepFraction), 0);
  return { update: pruned, report: { kept, total: pruned.values.length } };
}

/** Zeroes all but the ceil(p n) largest |v| of one tensor; returns how many entries remain non-zero. */
function pruneInPlace(v: Float32Array, keepFraction: number): number {
  const keep = Math.ceil(keepFraction * v.length);
  if (keep >= v.length) return countNonZero(v);
  const magnitudes = Float32Array.from(v, Math.abs).sort();
  const threshold = magnitudes[v.length - keep];
  for (let i = 0; i < v.length; i++) if (Math.abs(v[i]) < threshold) v[i] = 0;
  return countNonZero(v);
}

function countNonZero(v: Float32Array): number {
  let count = 0;
  for (const x of v) if (x !== 0) count++;
  return count;
}
