/**
 * The hospital's privacy rules (config/privacy.ts) applied to one task: the first rule the task breaks, or
 * nothing. Each refusal names its rule by its key in envoy.yaml, so whoever reads the refusal (the director's
 * log, `secflow status`, the data scientist's round table) knows exactly which setting said no.
 */
import type { DefenseName, PrivacyPolicy } from '../../core/config/privacy.ts';
import type { ExperimentConfig, TrainingConfig } from '../../core/config/experiment.ts';
import type { TrainTask } from '../../core/messages.ts';
import { plannedTraining } from '../../core/training.ts';

export interface PolicyRefusal { rule: string; reason: string }

/** What a task would make this envoy do and send: what the rules are about. */
export interface TaskFacts {
  kind: 'round' | 'probe';
  architecture: string;
  examples: number;
  batch: number;
  steps: number;
  secure: boolean;
  cohort: number;
  /** This hospital's share of the secure sum (its weight over every member's); 1 without secure aggregation. */
  weightShare: number;
  defenses: Set<DefenseName>;
  dp?: { noiseMultiplier: number; clipNorm: number; sampleRate: number; steps: number };
}

/** A typical hospital's shard, for judging an experiment before any envoy holds it (the audit's report). */
const TYPICAL_SHARD = 1500;

/** The facts of the tasks an experiment config would send (the audit asks what a default envoy would accept). */
export function factsFromConfig(config: ExperimentConfig, training: TrainingConfig, kind: 'round' | 'probe', cohort: number): TaskFacts {
  return factsOf({
    model: config.model, training, audit: kind === 'probe' ? { kind } : undefined,
    secagg: config.secagg.enabled ? { cohort: [...Array(cohort).keys()] } : undefined,
  }, TYPICAL_SHARD);
}

export function factsOf(task: Pick<TrainTask, 'model' | 'training' | 'audit'> & { secagg?: { cohort: number[]; scale?: number; members?: { scale: number }[] } },
  shardSize: number): TaskFacts {
  const plan = plannedTraining(shardSize, task.training);
  const t = task.training;
  const defenses = new Set<DefenseName>([
    ...(task.model.precode.enabled ? ['precode' as const] : []),
    ...(t.batch_norm_statistics === 'shard' ? ['shard_statistics' as const] : []),
    ...(t.dp.enabled ? ['dp' as const] : []),
    ...(t.pruning.enabled ? ['pruning' as const] : []),
  ]);
  return {
    kind: task.audit?.kind === 'probe' ? 'probe' : 'round',
    architecture: task.model.architecture,
    examples: plan.examples, batch: plan.batch, steps: plan.steps,
    secure: !!task.secagg, cohort: task.secagg ? new Set(task.secagg.cohort).size : 1, weightShare: weightShareOf(task.secagg),
    defenses,
    ...(plan.dp ? { dp: { noiseMultiplier: plan.dp.noiseMultiplier, clipNorm: t.dp.clip_norm, sampleRate: plan.dp.sampleRate, steps: plan.dp.steps } } : {}),
  };
}

/** The first rule the task breaks (the ε budget is the ledger's to judge: ledger.ts). */
export function brokenRule(p: PrivacyPolicy, f: TaskFacts): PolicyRefusal | undefined {
  const refuse = (rule: string, reason: string) => ({ rule, reason });
  if (f.kind === 'probe' && !p.allowProbes) return refuse('allow_probes', 'audit probes are not allowed at this hospital');
  if (!p.architectures.includes(f.architecture)) return refuse('architectures', `architecture ${f.architecture} is not one this hospital trains (${p.architectures.join(', ')})`);
  if (f.examples < p.minExamples) return refuse('min_examples', `the update would be trained on ${f.examples} image(s), fewer than ${p.minExamples}`);
  if (f.batch < p.minBatchSize) return refuse('min_batch_size', `batches of ${f.batch}, smaller than ${p.minBatchSize}`);
  if (f.steps > p.maxLocalSteps) return refuse('max_local_steps', `${f.steps} local steps, more than ${p.maxLocalSteps}`);
  if (p.requireSecureAggregation && !f.secure) return refuse('secure_aggregation.required', 'the update would leave unmasked: secure aggregation is off');
  if (f.secure && f.cohort < p.minCohort) return refuse('secure_aggregation.min_cohort', `a secure sum of ${f.cohort} hospitals, fewer than ${p.minCohort}`);
  if (f.secure && f.weightShare > p.maxWeightShare) {
    return refuse('secure_aggregation.max_weight_share', `this hospital's update would be ${(100 * f.weightShare).toFixed(1)}% of the secure sum ` +
      `(the others' weights are too small to hide it), more than ${100 * p.maxWeightShare}%`);
  }
  if (p.requireOneOf.length && !p.requireOneOf.some((set) => set.every((d) => f.defenses.has(d)))) {
    const has = [...f.defenses].join(', ') || 'none';
    return refuse('require_one_of', `the task's defenses (${has}) include none of the required sets: ${p.requireOneOf.map((s) => s.join(' + ')).join(' or ')}`);
  }
  if (f.dp && f.dp.noiseMultiplier < p.dp.minNoiseMultiplier) return refuse('dp.min_noise_multiplier', `DP-SGD noise multiplier ${f.dp.noiseMultiplier}, below ${p.dp.minNoiseMultiplier}`);
  if (f.dp && f.dp.clipNorm > p.dp.maxClipNorm) return refuse('dp.max_clip_norm', `DP-SGD clip norm ${f.dp.clipNorm}, above ${p.dp.maxClipNorm}`);
  return undefined;
}

/** Own weight over the cohort's (each member's weight is in the task, signed into the digest); equal weights without them. */
function weightShareOf(secagg?: { cohort: number[]; scale?: number; members?: { scale: number }[] }): number {
  if (!secagg) return 1;
  if (secagg.scale === undefined || !secagg.members?.length) return 1 / Math.max(1, new Set(secagg.cohort).size);
  return secagg.scale / secagg.members.reduce((s, m) => s + m.scale, 0);
}
