/**
 * What an envoy does to its own update before it leaves: clip it to the experiment's norm bound (so the
 * director never has to refuse an honest envoy), and send no non-finite number.
 */
import type { Logger } from '../core/log.ts';
import type { FlatWeights } from '../core/weights.ts';

export function clipToNorm(update: FlatWeights, maxNorm: number): { update: FlatWeights; norm: number; scale: number } {
  let sum = 0;
  for (const v of update.values) sum += v * v;
  const norm = Math.sqrt(sum);
  if (norm <= maxNorm) return { update, norm, scale: 1 };
  const scale = maxNorm / norm;
  return { update: { manifest: update.manifest, values: update.values.map((v) => v * scale) }, norm, scale };
}

/** Metrics with a NaN or infinite number are not sent (they would fail the message); the round goes on without them. */
export function finiteOrNothing<M extends object>(metrics: M | undefined, what: string, log: Logger): M | undefined {
  if (!metrics) return undefined;
  const bad = Object.entries(metrics).filter(([, v]) => typeof v === 'number' && !Number.isFinite(v)).map(([k]) => k);
  if (!bad.length) return metrics;
  log.warn(`${what} metrics not sent: non-finite ${bad.join(', ')}`);
  return undefined;
}
