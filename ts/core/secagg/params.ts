/**
 * The parameters of one secure-aggregation round, decided by the director from the experiment config and
 * the round's participants, and sent to every envoy in its task.
 *
 * Weighting: FedAvg needs sum_i n_i * delta_i / sum_i n_i, but masking hides each delta_i, so each envoy
 * masks delta_i * scale_i with scale_i = n_i / mean_n (mean over the cohort, from the registry's shard
 * descriptors). Scales stay near 1, so one clip range fits every envoy. The unmasked sum over the envoys S
 * that got through is sum_S n_i delta_i / mean_n; multiplying it by mean_n / N_S gives FedAvg over S exactly,
 * dropouts included.
 */
import type { SecAggConfig } from '../config/experiment.ts';
import type { SecAggTask } from '../messages.ts';
import type { RoundConfig } from './native.ts';

export interface CohortMember { envoy: string; examples: number }

export interface SecureRoundPlan {
  /** Deterministic per round: participants sorted by name get ids 0..n-1. */
  ids: Map<string, number>;
  names: Map<number, string>;
  examples: Map<string, number>;
  meanExamples: number;
  neighbours: number;
  /** Shamir threshold: shares (held by an envoy's neighbours) needed to recover its secrets. */
  threshold: number;
  /** Fewest envoys a round may finish with (secagg.threshold): never 1, or the sum would be one envoy's update. */
  minSurvivors: number;
  clip: number;
  bits: number;
  vectorLen: number;
  experimentId: string;
  round: number;
  graphSeed: Uint8Array;
  /** Adjustments of the configured values to this cohort, for the director's log. */
  notes: string[];
}

export interface PlanInput {
  experimentId: string;
  round: number;
  cohort: CohortMember[];
  secagg: SecAggConfig;
  vectorLen: number;
  graphSeed: Uint8Array;
}

export function planSecureRound(input: PlanInput): SecureRoundPlan {
  const { secagg } = input;
  const cohort = [...input.cohort].sort((a, b) => (a.envoy < b.envoy ? -1 : a.envoy > b.envoy ? 1 : 0));
  const n = cohort.length;
  if (n < 2) throw new Error(`secure aggregation needs at least 2 envoys in a round, ${n} selected`);
  const total = cohort.reduce((s, c) => s + c.examples, 0);
  if (total <= 0) throw new Error('secure aggregation: the cohort reports no training examples');
  const notes: string[] = [];
  const neighbours = effectiveNeighbours(secagg.neighbours, n);
  if (secagg.neighbours && neighbours !== secagg.neighbours) notes.push(`neighbours ${secagg.neighbours} -> ${neighbours} for ${n} envoys`);
  const { minSurvivors, threshold } = thresholds(secagg.threshold, n, neighbours, notes);
  return {
    ids: new Map(cohort.map((c, i) => [c.envoy, i])),
    names: new Map(cohort.map((c, i) => [i, c.envoy])),
    examples: new Map(cohort.map((c) => [c.envoy, c.examples])),
    meanExamples: total / n,
    neighbours, threshold, minSurvivors, notes,
    clip: secagg.clip, bits: secagg.bits, vectorLen: input.vectorLen,
    experimentId: input.experimentId, round: input.round, graphSeed: input.graphSeed,
  };
}

/**
 * secagg.threshold counts envoys: the round completes while at least that many remain (default: a majority,
 * at least 2). A vanished envoy's masks are recovered from shares its surviving neighbours hold, so with
 * full SecAgg (everyone a neighbour) the Shamir threshold is one less than the envoys that must remain. In a
 * SecAgg+ graph each envoy has fewer neighbours: shares needed = half of them, and the addon reports an
 * envoy left with too few surviving neighbours.
 */
function thresholds(configured: number, n: number, neighbours: number, notes: string[]) {
  let minSurvivors = configured || Math.max(2, Math.floor(n / 2) + 1);
  if (minSurvivors > n) {
    notes.push(`threshold ${minSurvivors} -> ${n}: only ${n} envoys take part`);
    minSurvivors = n;
  }
  if (minSurvivors < 2) {
    notes.push('threshold 1 -> 2: a sum of one envoy would be its update');
    minSurvivors = 2;
  }
  const full = neighbours === n - 1;
  const threshold = full ? Math.max(1, minSurvivors - 1) : Math.max(1, Math.ceil(neighbours / 2));
  return { minSurvivors: full ? minSurvivors : Math.max(minSurvivors, threshold + 1), threshold };
}

/** SecAgg+ masks with about 2 log2 n neighbours (Bell et al. 2020); small cohorts use everyone (full SecAgg). */
export function effectiveNeighbours(configured: number, n: number): number {
  const all = n - 1;
  const wanted = configured || (n <= 8 ? all : 2 * Math.ceil(Math.log2(n)));
  if (wanted >= all) return all;
  return wanted % 2 === 0 ? wanted : wanted + 1; // the graph needs an even degree unless it is complete
}

export function roundConfigOf(plan: Pick<SecureRoundPlan, 'experimentId' | 'round' | 'neighbours' | 'threshold' | 'bits' | 'vectorLen' | 'graphSeed'> & { cohort: number[] }): RoundConfig {
  return {
    experimentId: plan.experimentId, round: plan.round, cohort: plan.cohort, neighbours: plan.neighbours,
    threshold: plan.threshold, bits: plan.bits, vectorLen: plan.vectorLen, graphSeed: Buffer.from(plan.graphSeed),
  };
}

export function cohortIds(plan: SecureRoundPlan): number[] {
  return [...plan.ids.values()].sort((a, b) => a - b);
}

/** What one envoy's task carries (subjects and timeouts are the director's to add). */
export function taskParams(plan: SecureRoundPlan, envoy: string): Omit<SecAggTask, 'upload_subject' | 'stage_timeout_ms' | 'round_timeout_ms'> {
  const id = plan.ids.get(envoy);
  if (id === undefined) throw new Error(`envoy ${envoy} is not in this round's cohort`);
  return {
    client_id: id, experiment_id: plan.experimentId, cohort: cohortIds(plan), neighbours: plan.neighbours,
    threshold: plan.threshold, bits: plan.bits, clip: plan.clip, vector_len: plan.vectorLen, graph_seed: new Uint8Array(plan.graphSeed),
    scale: plan.examples.get(envoy)! / plan.meanExamples,
    members: [...plan.ids].sort(([, a], [, b]) => a - b).map(([name, client_id]) => ({ envoy: name, client_id, scale: plan.examples.get(name)! / plan.meanExamples })),
  };
}
