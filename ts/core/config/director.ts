/** director.yaml: one long-lived director per federation. */
import { z } from 'zod';
import { DataSourceSchema } from './data-source.ts';
import { HeartbeatSchema, NatsSchema } from './nats.ts';

export const DirectorSchema = z.object({
  federation: z.string().regex(/^[A-Za-z0-9_-]+$/, 'use letters, digits, dash, underscore'),
  nats: NatsSchema.default({}),
  workspace: z.string().default('runs').describe('run folders: metrics, checkpoints, TensorBoard logs'),
  test_data: DataSourceSchema.optional().describe('held-out test set the director evaluates every aggregate on'),
  heartbeat: HeartbeatSchema.default({}),
}).strict();
export type DirectorConfig = z.infer<typeof DirectorSchema>;
