/**
 * envoy.yaml `privacy:`: the hospital's own rules for what it will train and send, checked by the envoy
 * before it touches its data (ts/envoy/policy/). The experiment is written by the data scientist and run by
 * the director, the parties these rules guard against; the envoy has the last word.
 *
 * The defaults are the protected setting: no update of fewer than 64 images or from batches under 16, only
 * under secure aggregation among at least 3 hospitals, with PRECODE and shard statistics or with DP-SGD (noise
 * multiplier ≥ 0.5, lifetime ε ≤ 10 at δ = 1e-5), no audit probes, the registry's ConvNetBN only.
 * `preset: open` accepts anything (research federations without patient data), loudly.
 */
import { z } from 'zod';

export const DEFENSE_NAMES = ['precode', 'shard_statistics', 'dp', 'pruning'] as const;
export type DefenseName = (typeof DEFENSE_NAMES)[number];

export const PrivacyPolicySchema = z.object({
  preset: z.enum(['default', 'open']).default('default')
    .describe("'open' waives every rule below that is not set explicitly: for research federations without patient data"),
  min_examples: z.number().int().min(1).optional().describe('fewest images one update may be trained on (default 64)'),
  min_batch_size: z.number().int().min(1).optional().describe('smallest local batch (default 16)'),
  max_local_steps: z.number().int().min(1).optional().describe('most optimizer steps per update (default 5000)'),
  secure_aggregation: z.object({
    required: z.boolean().optional().describe('only send updates masked by secure aggregation (default true)'),
    min_cohort: z.number().int().min(2).optional().describe('fewest distinct hospitals in the secure sum (default 3)'),
    max_weight_share: z.number().gt(0).max(1).optional()
      .describe("largest share of the secure sum this hospital's update may be (default 0.9: honest federations of unequal hospitals pass, a director that gives the others tiny weights gets no update)"),
  }).strict().default({}),
  require_one_of: z.array(z.array(z.enum(DEFENSE_NAMES)).min(1)).optional()
    .describe('the task must use every defense of at least one of these sets (default [[precode, shard_statistics], [dp]])'),
  dp: z.object({
    min_noise_multiplier: z.number().min(0).optional().describe('DP-SGD tasks: smallest sigma accepted (default 0.5)'),
    max_clip_norm: z.number().positive().optional().describe('DP-SGD tasks: largest clip norm accepted (default 10)'),
    epsilon_budget: z.number().positive().optional().describe('lifetime epsilon of this hospital\'s DP releases, over every experiment (default 10)'),
    delta: z.number().positive().lt(1).default(1e-5).describe('the delta of the budget'),
  }).strict().default({}),
  allow_probes: z.boolean().optional().describe('accept audit probe tasks (default false: a probe is the most revealing update there is)'),
  architectures: z.array(z.string()).optional().describe('model architectures this hospital trains (default: every registered one: [convnet_bn, convnet_gap])'),
  ledger: z.string().default('privacy-ledger.jsonl').describe('the persistent record of every update released (relative to envoy.yaml)'),
}).strict();
export type PrivacyPolicyConfig = z.infer<typeof PrivacyPolicySchema>;

/** A policy with every rule resolved: the preset's value wherever the file sets none. */
export interface PrivacyPolicy {
  preset: 'default' | 'open';
  minExamples: number;
  minBatchSize: number;
  maxLocalSteps: number;
  requireSecureAggregation: boolean;
  minCohort: number;
  maxWeightShare: number;
  requireOneOf: DefenseName[][];
  dp: { minNoiseMultiplier: number; maxClipNorm: number; epsilonBudget: number; delta: number };
  allowProbes: boolean;
  architectures: string[];
  ledger: string;
}

const DEFAULT = {
  minExamples: 64, minBatchSize: 16, maxLocalSteps: 5000, requireSecureAggregation: true, minCohort: 3, maxWeightShare: 0.9,
  requireOneOf: [['precode', 'shard_statistics'], ['dp']] as DefenseName[][],
  dp: { minNoiseMultiplier: 0.5, maxClipNorm: 10, epsilonBudget: 10 },
  allowProbes: false, architectures: ['convnet_bn', 'convnet_gap'],
};
const OPEN = {
  minExamples: 1, minBatchSize: 1, maxLocalSteps: Number.MAX_SAFE_INTEGER, requireSecureAggregation: false, minCohort: 2, maxWeightShare: 1,
  requireOneOf: [] as DefenseName[][], dp: { minNoiseMultiplier: 0, maxClipNorm: Infinity, epsilonBudget: Infinity },
  allowProbes: true, architectures: ['convnet_bn', 'convnet_gap'],
};

export function resolvePolicy(c: PrivacyPolicyConfig = PrivacyPolicySchema.parse({})): PrivacyPolicy {
  const base = c.preset === 'open' ? OPEN : DEFAULT;
  return {
    preset: c.preset,
    minExamples: c.min_examples ?? base.minExamples,
    minBatchSize: c.min_batch_size ?? base.minBatchSize,
    maxLocalSteps: c.max_local_steps ?? base.maxLocalSteps,
    requireSecureAggregation: c.secure_aggregation.required ?? base.requireSecureAggregation,
    minCohort: c.secure_aggregation.min_cohort ?? base.minCohort,
    maxWeightShare: c.secure_aggregation.max_weight_share ?? base.maxWeightShare,
    requireOneOf: c.require_one_of ?? base.requireOneOf,
    dp: {
      minNoiseMultiplier: c.dp.min_noise_multiplier ?? base.dp.minNoiseMultiplier,
      maxClipNorm: c.dp.max_clip_norm ?? base.dp.maxClipNorm,
      epsilonBudget: c.dp.epsilon_budget ?? base.dp.epsilonBudget,
      delta: c.dp.delta,
    },
    allowProbes: c.allow_probes ?? base.allowProbes,
    architectures: c.architectures ?? base.architectures,
    ledger: c.ledger,
  };
}
