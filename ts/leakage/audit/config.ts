/**
 * audit.yaml: the privacy–utility sweep of `secflow leakage audit`. A base experiment, the probe every
 * audited round asks of the envoys, the attacks, and the configurations (defenses) to compare. Kept free
 * of TensorFlow so `secflow --help` stays fast.
 */
import { z } from 'zod';
import { ModelSpecSchema, SecAggSchema, TrainingSchema } from '../../core/config/experiment.ts';
import type { AttackName } from '../config.ts';

/** The attack papers' setting: one plain SGD step on one image (a single-image update). */
export const SINGLE_IMAGE_PROBE = { examples_per_round: 1, batch_size: 1, local_epochs: 1, optimizer: 'sgd', momentum: 0, learning_rate: 0.001 } as const;

/**
 * One attack of the sweep. 'analytic' (linear-layer leakage + feature inversion) runs on every configuration;
 * 'precode-ignore' (matching the conv blocks' gradients, PRECODE's stochastic layer left out) on PRECODE ones.
 */
export const AttackSpecSchema = z.object({
  // The attacks on one recorded single-step update (multistep needs the local steps; precode-adaptive is analytic's PRECODE-only form).
  attack: z.enum(['ig', 'dlg', 'dlg-adam', 'analytic', 'precode-ignore'] as const satisfies readonly AttackName[]),
  iterations: z.number().int().positive().default(1000),
  restarts: z.number().int().positive().default(1),
  learning_rate: z.number().positive().default(0.1),
  tv_weight: z.number().min(0).default(1e-4),
  polish_iterations: z.number().int().min(0).optional().describe('analytic: L-BFGS iterations after the Adam phase'),
}).strict();
export type AttackSpec = z.infer<typeof AttackSpecSchema>;

const ConfigurationSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, dot, dash, underscore'),
  description: z.string().default(''),
  defaults: z.boolean().default(false)
    .describe('the out-of-the-box federation: the experiment\'s own defaults, every envoy on the default privacy policy, probed with the most revealing update that policy accepts'),
  envoys: z.number().int().min(1).optional().describe('envoys in this configuration (default: the sweep\'s)'),
  model: ModelSpecSchema.partial().optional().describe('merged over the base experiment\'s model (e.g. precode)'),
  training: TrainingSchema.partial().optional().describe('merged over the base training (e.g. dp, pruning)'),
  secagg: SecAggSchema.partial().optional(),
}).strict();
export type AuditConfiguration = z.infer<typeof ConfigurationSchema>;

const PRECODE = { enabled: true, code_size: 256, beta: 1e-3 };

/**
 * The default sweep: the shipped defaults; none; PRECODE with shard statistics and each half alone; DP-SGD at a
 * few sigma; pruning at a few p; SecAgg with 3 and 10 envoys. All but `defaults` run plain experiments (no
 * secure aggregation, PRECODE or shard statistics unless the configuration sets them) on envoys with an open
 * privacy policy, since a default envoy would refuse their single-image probes.
 */
export const DEFAULT_CONFIGURATIONS: AuditConfiguration[] = [
  {
    name: 'defaults', defaults: true,
    description: 'as shipped: secure aggregation, PRECODE with shard statistics, default privacy policies; the probe is the most revealing update a default envoy sends',
  },
  { name: 'none', description: 'no defense', defaults: false },
  {
    name: 'precode', description: 'PRECODE variational bottleneck (K = 256, beta = 1e-3), batch-norm statistics over the shard',
    model: { precode: PRECODE }, training: { batch_norm_statistics: 'shard' }, defaults: false,
  },
  // The two halves of that defense alone: PRECODE hides the image in the gradients, shard statistics in the
  // batch-norm statistics the update carries; either alone leaves the other channel open.
  { name: 'precode-batch-statistics', description: 'PRECODE alone: the update still carries the image\'s batch-norm statistics', model: { precode: PRECODE }, defaults: false },
  { name: 'shard-statistics', description: 'batch-norm statistics over the shard alone: the gradients are undefended', training: { batch_norm_statistics: 'shard' }, defaults: false },
  ...[0.5, 1, 2].map((sigma) => ({
    name: `dp-sigma-${sigma}`, description: `DP-SGD, clip 1, noise multiplier ${sigma}`, defaults: false,
    training: { dp: { enabled: true, clip_norm: 1, noise_multiplier: sigma, delta: 1e-5 } },
  })),
  ...[0.3, 0.1, 0.01].map((p) => ({ name: `prune-${p}`, description: `gradient pruning: keep ${p * 100}%`, training: { pruning: { enabled: true, keep_fraction: p } }, defaults: false })),
  { name: 'secagg-3', description: 'secure aggregation, 3 envoys', secagg: { enabled: true }, defaults: false },
  { name: 'secagg-10', description: 'secure aggregation, 10 envoys', envoys: 10, secagg: { enabled: true }, defaults: false },
];

export const AuditSweepSchema = z.object({
  name: z.string().default('privacy-utility-audit'),
  data: z.string().optional().describe('PneumoniaMNIST .npz (default: ../shared/data or data/, as the demo)'),
  out: z.string().default('audit-out').describe('output folder: audit.json/csv, scatter.png, report.html, runs, grids'),
  envoys: z.number().int().min(1).default(3),
  partition: z.object({
    scheme: z.enum(['iid', 'dirichlet', 'quantity']).default('dirichlet'),
    alpha: z.number().positive().default(1),
    seed: z.number().int().default(7),
  }).strict().default({}),
  train_limit: z.number().int().positive().optional().describe('use only the first N training images (faster sweeps)'),
  test_limit: z.number().int().positive().optional(),
  rounds: z.number().int().positive().default(3),
  model: ModelSpecSchema.partial().default({ width: 16, seed: 1 }),
  training: TrainingSchema.partial().default({ optimizer: 'adam', learning_rate: 0.001, local_epochs: 1, batch_size: 32, class_weighting: true }),
  probe: TrainingSchema.partial().default(SINGLE_IMAGE_PROBE),
  // The analytic attack first: the strongest in issue 19's table and minutes where the iterative ones take half
  // an hour on a secure aggregate, so a long sweep's log shows the likely verdict early.
  attacks: z.array(AttackSpecSchema).min(1).default([
    { attack: 'analytic', iterations: 2000, restarts: 10 }, { attack: 'ig', iterations: 1000 },
    { attack: 'dlg', iterations: 300 }, { attack: 'precode-ignore', iterations: 1000 },
  ]),
  attack_envoys: z.number().int().min(1).default(1).describe('attack the probes of this many envoys per round (first by name)'),
  configurations: z.array(ConfigurationSchema).min(1).default(DEFAULT_CONFIGURATIONS),
}).strict();
export type AuditSweep = z.infer<typeof AuditSweepSchema>;
