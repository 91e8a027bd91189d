/**
 * What the director lets into an aggregate: the checks that keep one participant, hostile or broken, from
 * stopping or steering the federation. Each check names the envoy and the reason, so a refused update is a
 * log line and a dropout, never a poisoned model or a failed experiment.
 *
 *  - an update must fit the model (same tensors, same shapes) and be finite;
 *  - its L2 norm must be within `aggregation.max_update_norm` (honest envoys clip to it themselves);
 *  - its claimed example count is capped by what the envoy registered and what its provisioning allows;
 *  - FedAvg weights can be capped per envoy (`aggregation.max_weight_fraction`);
 *  - without secure aggregation, an update pointing against the cohort or much larger than the others' is
 *    refused (`aggregation.min_cosine`, `aggregation.max_norm_ratio`);
 *  - under secure aggregation, the unmasked aggregate must be finite and within the bound.
 */
import type { ExperimentConfig } from '../core/config/experiment.ts';
import type { TrainTask } from '../core/messages.ts';
import type { Logger } from '../core/log.ts';
import type { Trust } from '../core/trust/index.ts';
import { slicesOf, type FlatWeights } from '../core/weights.ts';
import type { EnvoyRegistry } from './registry.ts';
import type { ClientUpdate } from './strategies/index.ts';
import { coordinateMedian } from './strategies/median.ts';

export interface Refusal { envoy: string; reason: string }

/** Why an update cannot be aggregated, or undefined when it can. */
export function updateProblem(delta: FlatWeights, global: FlatWeights, maxNorm: number): string | undefined {
  if (delta.values.length !== global.values.length) return `its update has ${delta.values.length} values, the model ${global.values.length}`;
  if (delta.manifest.length !== global.manifest.length || delta.manifest.some((t, i) => t.name !== global.manifest[i].name || t.shape.join('x') !== global.manifest[i].shape.join('x'))) {
    return 'its update does not have the model\'s tensors and shapes';
  }
  const norm = l2Norm(delta.values);
  if (!Number.isFinite(norm)) return 'its update holds NaN or infinite values';
  if (norm > maxNorm * (1 + 1e-6)) return `its update's L2 norm ${norm.toFixed(3)} exceeds aggregation.max_update_norm ${maxNorm}`;
  return undefined;
}

export function l2Norm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum);
}

/**
 * The examples an envoy's update counts for: its claim, capped by what it registered and by the roster's
 * `max_examples` (what the provisioner wrote down for that hospital). A claim above the cap is a note.
 */
export function admittedExamples(envoy: string, claimed: number, registry: EnvoyRegistry, trust: Trust): { examples: number; note?: string } {
  const registered = registry.record(envoy)?.descriptor.counts.train ?? 0;
  const provisioned = trust.member(envoy)?.max_examples ?? Infinity;
  const cap = Math.min(registered, provisioned);
  if (claimed <= cap) return { examples: claimed };
  return { examples: cap, note: `${envoy} claimed ${claimed} training examples; counted as ${cap} (registered ${registered}${Number.isFinite(provisioned) ? `, provisioned at most ${provisioned}` : ''})` };
}

/**
 * Weights proportional to `examples`, none above `cap` (water-filling: capped ones get the cap, the rest is
 * shared in proportion). Returned as example counts with the same total, so FedAvg and secure aggregation
 * take them unchanged. A cap below 1/n cannot be met: every envoy then weighs the same.
 */
export function cappedExamples(examples: number[], cap: number): number[] {
  const total = examples.reduce((a, b) => a + b, 0);
  if (cap >= 1 || total <= 0 || examples.length === 0) return examples;
  if (cap * examples.length < 1) return examples.map(() => total / examples.length);
  const weights = examples.map((n) => n / total);
  const capped = new Set<number>();
  for (;;) {
    const over = weights.map((w, i) => [w, i] as const).filter(([w, i]) => w > cap + 1e-12 && !capped.has(i));
    if (!over.length) break;
    over.forEach(([, i]) => capped.add(i));
    const free = 1 - capped.size * cap;
    const rest = weights.reduce((s, w, i) => (capped.has(i) ? s : s + w), 0);
    weights.forEach((w, i) => { weights[i] = capped.has(i) ? cap : (w / rest) * free; });
  }
  return weights.map((w) => w * total);
}

/** FedAvg's input after the weight cap: the same updates with capped example counts. */
export function withWeightCap(updates: ClientUpdate[], config: ExperimentConfig): ClientUpdate[] {
  // Secure sums were weighed with capped counts per member already; capping the sums again would skew them.
  if (updates.some((u) => u.members)) return updates;
  const examples = cappedExamples(updates.map((u) => u.examples), config.aggregation.max_weight_fraction);
  return updates.map((u, i) => ({ ...u, examples: examples[i] }));
}

/**
 * The cohort screen as a round runs it, for single updates and for sub-cohort sums alike (`min_cosine`,
 * `max_norm_ratio`); each refusal is logged as the round continuing without that update. Not in an audit probe:
 * it is recorded, never aggregated, and its one-image updates are bound to disagree with each other; screening
 * them would only count honest envoys as suspects.
 */
export function screenedCohort(updates: ClientUpdate[], round: ScreenedRound): ReturnType<typeof screenCohort> {
  if (round.audit?.kind === 'probe') return { kept: updates, refused: [] };
  const { config, log } = round;
  const screened = screenCohort(updates, { minCosine: config.aggregation.min_cosine, maxNormRatio: config.aggregation.max_norm_ratio });
  for (const r of screened.refused) log.warn(`round ${round.round + 1}: continuing without ${r.envoy}: ${r.reason}`);
  return screened;
}

/** What the screen needs of a round: its limits, whether it is an audit probe, and where refusals are logged. */
export interface ScreenedRound { config: ExperimentConfig; audit?: TrainTask['audit']; round: number; log: Pick<Logger, 'warn'> }

/**
 * Without secure aggregation: refuses updates far outside the rest of the cohort: pointing against it (a
 * sign-flipped or otherwise adversarial update) or much larger than the others (a scaled one, within the
 * absolute bound of a small model). Each update is compared with the others' coordinate-wise median and
 * median norm, which a minority of hostile envoys cannot move far.
 */
export function screenCohort(updates: ClientUpdate[], limits: { minCosine: number; maxNormRatio: number }): { kept: ClientUpdate[]; refused: Refusal[] } {
  if (updates.length < 3) return { kept: updates, refused: [] };
  const norms = new Map(updates.map((u) => [u, l2Norm(u.delta.values)]));
  const refused: Refusal[] = [];
  const kept = updates.filter((u) => {
    const others = updates.filter((o) => o !== u);
    const typical = median(others.map((o) => norms.get(o)!));
    const ratio = typical > 0 ? norms.get(u)! / typical : 1;
    if (ratio > limits.maxNormRatio) {
      refused.push({ envoy: u.envoy, reason: `its update's L2 norm ${norms.get(u)!.toFixed(3)} is ${ratio.toFixed(1)} times the median of the others' (aggregation.max_norm_ratio ${limits.maxNormRatio})` });
      return false;
    }
    if (limits.minCosine <= -1) return true;
    const cosine = cosineOf(u.delta.values, coordinateMedian(others.map((o) => o.delta.values)));
    if (cosine >= limits.minCosine) return true;
    refused.push({ envoy: u.envoy, reason: `its update points against the cohort's (cosine ${cosine.toFixed(3)} with the median of the others, below aggregation.min_cosine ${limits.minCosine})` });
    return false;
  });
  return { kept, refused };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function cosineOf(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return aa === 0 || bb === 0 ? 1 : ab / Math.sqrt(aa * bb);
}

/**
 * The new global model, moved at most `maxNorm` from the old one. FedAvg of bounded updates never moves
 * further; a coordinate-wise median or trimmed mean of them can (by up to √n times), and the envoys check
 * every model against the bound (envoy/director-checks/trajectory.ts), so the step is scaled back to it.
 */
export function boundedStep(global: FlatWeights, next: FlatWeights, maxNorm: number): FlatWeights {
  const step = next.values.map((v, i) => v - global.values[i]);
  const norm = l2Norm(step);
  if (!(norm > maxNorm)) return next;
  const scale = maxNorm / norm;
  return { manifest: next.manifest, values: global.values.map((v, i) => v + step[i] * scale) };
}

/** A new global model the director refuses to adopt: non-finite weights, or batch-norm variances below zero. */
export function modelProblem(model: FlatWeights): string | undefined {
  if (!model.values.every(Number.isFinite)) return 'the aggregate is not finite';
  for (const t of slicesOf(model)) {
    if (/moving_variance$/.test(t.name) && t.values.some((v) => v < 0)) return `the aggregate gives ${t.name} negative values`;
  }
  return undefined;
}

/** Under secure aggregation: the unmasked FedAvg delta must be finite and within the bound it can be held to. */
export function aggregateProblem(delta: Float32Array, maxNorm: number, errorBound: number): string | undefined {
  const norm = l2Norm(delta);
  if (!Number.isFinite(norm)) return 'the unmasked aggregate holds NaN or infinite values';
  // A weighted mean of updates each within the bound is within it too; quantization adds at most errorBound per value.
  const allowed = maxNorm + errorBound * Math.sqrt(delta.length);
  if (norm > allowed) return `the unmasked aggregate's L2 norm ${norm.toFixed(3)} exceeds what updates within aggregation.max_update_norm ${maxNorm} can sum to (${allowed.toFixed(3)}): some envoy sent an unbounded update`;
  return undefined;
}
