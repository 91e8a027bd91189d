/** experiment.yaml: what a data scientist submits to a running director. */
import { z } from 'zod';
import { NameSchema } from '../names.ts';
import { ARCHITECTURE_NAMES } from '../architectures.ts';

/** PRECODE (Scheliga et al., WACV 2022): a variational bottleneck before the classifier. */
export const PrecodeSchema = z.object({
  enabled: z.boolean().default(false),
  code_size: z.number().int().positive().default(256).describe('K: dimensions of the variational code'),
  beta: z.number().min(0).default(1e-3).describe('weight of the KL term in the training loss'),
}).strict();
export type PrecodeConfig = z.infer<typeof PrecodeSchema>;

export const ModelSpecSchema = z.object({
  architecture: z.enum(ARCHITECTURE_NAMES).default('convnet_bn').describe('the model registry (architectures.ts): convnet_bn (the original system\'s) or convnet_gap (deeper, global average pooling)'),
  width: z.number().int().positive().default(32).describe('w: conv widths are multiples of it (convnet_bn: w, 2w, 2w)'),
  input_size: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([28, 28]),
  channels: z.number().int().positive().default(1),
  num_classes: z.number().int().min(2).default(2),
  seed: z.number().int().default(0).describe('seeds the initial weights'),
  init: z.enum(['he', 'torch']).default('he')
    .describe("initial weights: 'he' (He-normal convs, Glorot classifier) or 'torch' (PyTorch's default, as the original system)"),
  normalization: z.enum(['batch', 'group']).default('batch')
    .describe("after each conv: 'batch' (batch norm) or 'group' (group norm: per image, no moving statistics; for DP-SGD)"),
  precode: PrecodeSchema.default({}),
}).strict();
export type ModelSpec = z.infer<typeof ModelSpecSchema>;

/** DP-SGD on the envoys: per-example clipping and Gaussian noise, with a Rényi-DP accountant. */
export const DpSgdSchema = z.object({
  enabled: z.boolean().default(false),
  clip_norm: z.number().positive().default(1).describe('C: each example\'s gradient is clipped to this L2 norm'),
  noise_multiplier: z.number().min(0).default(1).describe('sigma: noise standard deviation is sigma * C'),
  delta: z.number().positive().lt(1).default(1e-5).describe('the delta of the (epsilon, delta) reported'),
}).strict();
export type DpSgdConfig = z.infer<typeof DpSgdSchema>;

/** Gradient pruning (Zhu et al. 2019): only the largest-magnitude fraction of the update is sent. */
export const PruningSchema = z.object({
  enabled: z.boolean().default(false),
  keep_fraction: z.number().gt(0).max(1).default(0.1).describe('p: fraction of each update kept (by magnitude)'),
}).strict();
export type PruningConfig = z.infer<typeof PruningSchema>;

/** Random affine warps and intensity changes of each training batch on the envoy (data/augment.ts); no flips. */
export const AugmentationSchema = z.object({
  enabled: z.boolean().default(false),
  rotation_degrees: z.number().min(0).max(45).default(10).describe('largest rotation either way'),
  translation: z.number().min(0).max(0.5).default(0.1).describe('largest shift either way, as a fraction of the side'),
  zoom: z.number().min(0).max(0.5).default(0.1).describe('scale drawn from [1 - zoom, 1 + zoom]'),
  brightness: z.number().min(0).max(0.5).default(0.1).describe('largest brightness change either way ([0, 1] pixels)'),
  contrast: z.number().min(0).max(0.9).default(0.1).describe('contrast factor drawn from [1 - contrast, 1 + contrast]'),
}).strict();
export type AugmentationConfig = z.infer<typeof AugmentationSchema>;

export const TrainingSchema = z.object({
  optimizer: z.enum(['adam', 'sgd', 'adadelta']).default('adam').describe('sgd uses momentum'),
  learning_rate: z.number().positive().default(1e-3),
  momentum: z.number().min(0).max(1).default(0.9).describe('sgd only'),
  local_epochs: z.number().positive().default(1).describe('may be fractional: 0.5 = half an epoch'),
  batch_size: z.number().int().positive().default(32),
  fedprox_mu: z.number().min(0).default(0).describe('FedProx proximal weight; 0 = plain FedAvg'),
  class_weighting: z.boolean().default(false).describe('weight the loss by inverse class frequency of the shard'),
  seed: z.number().int().default(0).describe('seeds shuffling on the envoys'),
  examples_per_round: z.number().int().positive().optional()
    .describe('train each round on a random subset of this many examples (e.g. 1 for single-image updates in a leakage audit)'),
  augmentation: AugmentationSchema.default({}),
  dp: DpSgdSchema.default({}),
  pruning: PruningSchema.default({}),
  batch_norm_statistics: z.enum(['batch', 'shard']).default('batch')
    .describe("'batch': moving statistics follow the batches trained on (tfjs-layers); 'shard': set to their values over the whole shard after training, so the update does not reveal the batch's (defenses/shard-statistics.ts)"),
}).strict();
export type TrainingConfig = z.infer<typeof TrainingSchema>;

/**
 * How updates become the next global model, and the bounds that keep one participant from steering it
 * (director/admission.ts). Measured on ConvNetBN after one local epoch (Adam 1e-3, Dirichlet shares of
 * PneumoniaMNIST): the L2 norm of an honest delta is 0.8-7.5 at width 16 and 2.9-12.5 at width 32, most of it
 * batch-norm statistics; honest deltas point the same way as the cohort (cosine 0.15-0.99 between envoys).
 */
/**
 * A server optimizer (Reddi et al., ICLR 2021, "Adaptive Federated Optimization"): the FedAvg mean delta is a
 * pseudo-gradient that the director steps along with momentum (FedAvgM) or adaptively (FedAdam, FedYogi). It
 * acts on the aggregate only, so it works under secure aggregation.
 */
export const ServerOptimizerSchema = z.object({
  learning_rate: z.number().positive().optional().describe('eta: default 1 for fedavgm, 0.01 for fedadam / fedyogi'),
  beta_1: z.number().min(0).lt(1).default(0.9).describe('momentum of the mean delta'),
  beta_2: z.number().min(0).lt(1).default(0.99).describe('fedadam / fedyogi: decay of the second moment'),
  tau: z.number().positive().default(1e-3).describe('fedadam / fedyogi: adaptivity (added to the second moment\'s root)'),
}).strict();
export type ServerOptimizerConfig = z.infer<typeof ServerOptimizerSchema>;

/** The strategies that weigh updates by example counts and can run on a secure sum. */
export const MEAN_STRATEGIES = ['fedavg', 'fedavgm', 'fedadam', 'fedyogi'] as const;

export const AggregationSchema = z.object({
  strategy: z.enum([...MEAN_STRATEGIES, 'median', 'trimmed_mean']).default('fedavg')
    .describe('fedavg: weighted by example counts; fedavgm / fedadam / fedyogi: a server optimizer on the FedAvg mean; median / trimmed_mean: coordinate-wise, robust to a few hostile updates (with secagg: over sub-cohort sums, secagg.sub_cohort_size)'),
  server: ServerOptimizerSchema.default({}).describe('fedavgm / fedadam / fedyogi only'),
  min_envoys: z.number().int().min(1).default(1).describe('a round with fewer results fails'),
  trim_fraction: z.number().min(0).lt(0.5).default(0.2).describe('trimmed_mean: fraction cut from each end per coordinate'),
  max_update_norm: z.number().positive().default(25)
    .describe('L2 bound on an envoy\'s update: envoys clip to it; the director refuses a larger one (secagg: checks the aggregate)'),
  max_weight_fraction: z.number().gt(0).max(1).default(1)
    .describe('fedavg: no envoy\'s weight above this share of the total (1 = no cap)'),
  min_cosine: z.number().min(-1).max(1).default(0)
    .describe('3+ updates (without secagg, or sub-cohort sums with it): refuse one whose cosine with the coordinate-wise median of the others is below this (-1 = off)'),
  max_norm_ratio: z.number().gt(1).default(10)
    .describe('3+ updates (without secagg, or sub-cohort sums with it): refuse one whose L2 norm is more than this many times the median of the others\''),
}).strict();

export const SecAggSchema = z.object({
  enabled: z.boolean().default(false).describe('SecAgg+: the director learns only the sum of the envoys\' updates'),
  threshold: z.number().int().min(0).default(0)
    .describe('a round completes while at least this many envoys remain (their shares unmask the vanished); 0 = auto (a majority, >= 2)'),
  neighbours: z.number().int().min(0).default(0)
    .describe('masking neighbours per envoy (even); 0 = auto (all the others in cohorts of up to 8, else 2 ceil(log2 n))'),
  // Measured on ConvNetBN after one local epoch (widths 4 and 16, Dirichlet shares): trainable weights move
  // by < 0.11, BatchNorm running statistics by up to 2.0; weighting by examples scales that by n_i / mean n.
  clip: z.number().positive().default(8)
    .describe('example-weighted deltas are clipped to [-clip, clip] before quantizing (cover BatchNorm statistics too)'),
  bits: z.number().int().min(8).max(32).default(32).describe('aggregation modulus 2^bits'),
  stage_timeout_seconds: z.number().positive().default(60).describe('per protocol stage, except the masked input (which waits for training)'),
  sub_cohort_size: z.number().int().min(0).refine((n) => n !== 1, 'a sub-cohort of 1 would be one envoy\'s update: use 0 or at least 2').default(0)
    .describe('0: one secure sum of the whole round (the largest crowd). n >= 2: the round\'s envoys are dealt into disjoint sub-cohorts of at least n, ' +
      'each summed securely: the director learns one sum per sub-cohort, refuses an out-of-bounds one instead of the round, ' +
      'combines the sums with the strategy (median and trimmed_mean too) and excludes an envoy whose sub-cohorts keep being refused'),
  exclude_after: z.number().int().min(1).default(3)
    .describe('sub-cohorts: exclude an envoy from the experiment after its sub-cohort was refused this many rounds in a row (each time with other partners)'),
}).strict();
export type SecAggConfig = z.infer<typeof SecAggSchema>;

/**
 * Auditing: the director keeps what it received each round (per-envoy updates, or only the aggregate under
 * secure aggregation) and envoys keep, on their side, which images they trained on, so the leakage lab can
 * attack exactly what the director saw and score it.
 */
export const AuditSchema = z.object({
  enabled: z.boolean().default(false),
  probe: TrainingSchema.partial().optional()
    .describe('also run, each round, a probe task with these training settings (e.g. one SGD step on one image) whose updates are recorded, not aggregated'),
}).strict();
export type AuditConfig = z.infer<typeof AuditSchema>;

/**
 * An experiment is protected unless it says otherwise: secure aggregation on, and PRECODE with shard
 * statistics, the combination the privacy audit found best, unless the experiment runs DP-SGD (which
 * neither combines with: then batch statistics and no PRECODE). Turning any of it off is explicit.
 */
const ExperimentModelSchema = ModelSpecSchema.extend({
  precode: PrecodeSchema.extend({
    enabled: z.boolean().optional().describe('default: on, unless training.dp is on'),
  }).strict().default({}),
});
const ExperimentTrainingSchema = TrainingSchema.extend({
  batch_norm_statistics: z.enum(['batch', 'shard']).optional()
    .describe("default: 'shard', unless training.dp is on ('batch'): see TrainingSchema"),
});
/** How the envoys' learning rate changes over the rounds: the director sets each round's in the task. */
export const LearningRateScheduleSchema = z.object({
  kind: z.enum(['constant', 'cosine']).default('constant')
    .describe('cosine: from training.learning_rate in round 1 down to final_fraction of it in the last round'),
  final_fraction: z.number().min(0).max(1).default(0.1),
}).strict();
export type LearningRateSchedule = z.infer<typeof LearningRateScheduleSchema>;

const ExperimentSecAggSchema = SecAggSchema.extend({
  enabled: z.boolean().default(true).describe('SecAgg+ (default on): the director learns only the sum of the envoys\' updates'),
});

export const ExperimentSchema = z.object({
  name: NameSchema.describe('scopes the experiment\'s subjects and its run folder'),
  rounds: z.number().int().positive(),
  envoys: z.array(NameSchema).optional().describe('envoy names to use; default: every envoy registered'),
  min_envoys_to_start: z.number().int().min(1).default(1),
  model: ExperimentModelSchema.default({}),
  training: ExperimentTrainingSchema.default({}),
  learning_rate_schedule: LearningRateScheduleSchema.default({}),
  aggregation: AggregationSchema.default({}),
  secagg: ExperimentSecAggSchema.default({}),
  audit: AuditSchema.default({}),
  round_timeout_seconds: z.number().positive().default(1800),
  start_timeout_seconds: z.number().positive().default(120).describe('how long to wait for envoys to register'),
  evaluate_on_test: z.boolean().default(true).describe('director evaluates each aggregate on its test set'),
}).strict().transform((e) => {
  const dp = e.training.dp.enabled;
  return {
    ...e,
    model: { ...e.model, precode: { ...e.model.precode, enabled: e.model.precode.enabled ?? !dp } },
    training: { ...e.training, batch_norm_statistics: e.training.batch_norm_statistics ?? (dp ? 'batch' as const : 'shard' as const) },
  };
}).superRefine((e, ctx) => {
  // DP-SGD clips each example's gradient in inference-mode batch norm; PRECODE's KL needs a training pass.
  if (e.model.precode.enabled && e.training.dp.enabled) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['training', 'dp'], message: 'DP-SGD cannot be combined with model.precode (its KL term is not clipped per example); choose one' });
  }
  if (e.secagg.enabled && !e.secagg.sub_cohort_size && !(MEAN_STRATEGIES as readonly string[]).includes(e.aggregation.strategy)) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom, path: ['aggregation', 'strategy'],
      message: `${e.aggregation.strategy} needs several updates, and one secure sum hides them: use ${MEAN_STRATEGIES.join(', ')}, or set secagg.sub_cohort_size to combine sub-cohort sums`,
    });
  }
  if (e.training.dp.enabled && e.training.batch_norm_statistics === 'shard') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['training', 'batch_norm_statistics'], message: "batch_norm_statistics: shard computes statistics over the whole shard outside DP-SGD's accounting; use 'batch' with dp" });
  }
});
/** Round `round`'s (0-based) local learning rate under the experiment's schedule. */
export function learningRateAt(e: Pick<ExperimentConfig, 'rounds' | 'training' | 'learning_rate_schedule'>, round: number): number {
  const base = e.training.learning_rate;
  const { kind, final_fraction: floor } = e.learning_rate_schedule;
  if (kind === 'constant' || e.rounds <= 1) return base;
  const progress = Math.min(1, round / (e.rounds - 1));
  return base * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export type ExperimentConfig = z.infer<typeof ExperimentSchema>;
