/**
 * Settings of one leakage run, from a YAML file and/or command-line flags (flags win). Kept free of
 * TensorFlow so `secflow --help` stays fast.
 */
import { z } from 'zod';
import { ModelSpecSchema } from '../core/config/experiment.ts';

/** Every attack of the lab (ts/leakage/attacks/), by the name configs and the CLI give it. */
export const ATTACK_NAMES = ['dlg', 'dlg-adam', 'ig', 'multistep', 'analytic', 'precode-adaptive', 'precode-ignore'] as const;
export type AttackName = typeof ATTACK_NAMES[number];

export const LeakageConfigSchema = z.object({
  attack: z.enum(ATTACK_NAMES).default('ig'),
  model: ModelSpecSchema.default({}),
  bn_mode: z.enum(['train', 'eval']).default('eval').describe("batch norm as the victim ran it: 'train' = batch statistics"),
  data: z.string().default('data/pneumoniamnist.npz').describe('PneumoniaMNIST .npz: victim images and the floor'),
  split: z.enum(['train', 'val', 'test']).default('test'),
  indices: z.array(z.number().int().min(0)).default([0, 1, 2, 3]).describe('victim images (ground truth, for scoring only)'),
  batch: z.number().int().positive().default(1).describe('images per observed gradient/update'),
  iterations: z.number().int().positive().default(2000),
  restarts: z.number().int().positive().default(1),
  learning_rate: z.number().positive().default(0.1).describe('Adam step of IG / multistep / dlg-adam'),
  tv_weight: z.number().min(0).default(1e-4),
  seed: z.number().int().default(0),
  local_steps: z.number().int().positive().default(4).describe('multistep: the envoy\'s local SGD steps'),
  local_learning_rate: z.number().positive().default(1e-3).describe('multistep: the envoy\'s learning rate'),
  sent: z.string().optional().describe('weights file the director sent (weights.ts msgpack); with received: attack the saved update'),
  received: z.string().optional().describe('weights file the envoy returned'),
  record: z.string().optional().describe("an audit round folder (<run>/audit/round-0001[-probe]): attack what the director received there"),
  envoy: z.string().optional().describe('with record: whose update to attack (under secure aggregation: the aggregate it is in)'),
  truth: z.array(z.string()).default([]).describe("with record: the envoys' audit truth files (their trained images), for scoring only"),
  out: z.string().default('leakage-out').describe('directory for the PNG grid and JSON summary'),
}).strict();
export type LeakageConfig = z.infer<typeof LeakageConfigSchema>;
