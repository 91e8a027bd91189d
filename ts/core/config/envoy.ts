/** envoy.yaml: one per hospital; names the hospital's own data. */
import { z } from 'zod';
import { DataSourceSchema, PartitionSchema } from './data-source.ts';
import { HeartbeatSchema, NatsSchema } from './nats.ts';

export const ShardSchema = z.object({
  description: z.string().default(''),
  train: DataSourceSchema,
  val: DataSourceSchema.optional(),
  partition: PartitionSchema.optional().describe('demo only: keep one share of a dataset split across envoys'),
}).strict();
export type ShardConfig = z.infer<typeof ShardSchema>;

export const EnvoySchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'use letters, digits, dash, underscore'),
  federation: z.string().regex(/^[A-Za-z0-9_-]+$/),
  nats: NatsSchema.default({}),
  shard: ShardSchema,
  heartbeat: HeartbeatSchema.default({}),
  audit_dir: z.string().default('envoy-audit')
    .describe('where audited tasks record the images they trained on (ground truth for the leakage lab; never sent)'),
}).strict();
export type EnvoyConfig = z.infer<typeof EnvoySchema>;
