/** envoy.yaml: one per hospital; names the hospital's own data. */
import { z } from 'zod';
import { DEVICES } from '../device.ts';
import { DataSourceSchema, PartitionSchema } from './data-source.ts';
import { NameSchema } from '../names.ts';
import { PrivacyPolicySchema } from './privacy.ts';
import { HeartbeatSchema, NatsSchema, requireKitOrInsecure, trustKeys } from './nats.ts';

export const ShardSchema = z.object({
  description: z.string().default(''),
  train: DataSourceSchema,
  val: DataSourceSchema.optional(),
  partition: PartitionSchema.optional().describe('demo only: keep one share of a dataset split across envoys'),
}).strict();
export type ShardConfig = z.infer<typeof ShardSchema>;

export const EnvoySchema = z.object({
  name: NameSchema,
  federation: NameSchema,
  nats: NatsSchema.default({}),
  ...trustKeys,
  shard: ShardSchema,
  heartbeat: HeartbeatSchema.default({}),
  device: z.enum(DEVICES).default('auto')
    .describe('where this envoy trains: auto (the GPU if tfjs-node-gpu is installed and a GPU is visible), cpu, or gpu (falls back to the CPU with a warning)'),
  privacy: PrivacyPolicySchema.default({}).describe('this hospital\'s rules for what it trains and sends (config/privacy.ts)'),
  audit_dir: z.string().default('envoy-audit')
    .describe('where audited tasks record the images they trained on (ground truth for the leakage lab; never sent)'),
}).strict().superRefine(requireKitOrInsecure);
export type EnvoyConfig = z.infer<typeof EnvoySchema>;
