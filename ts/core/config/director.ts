/** director.yaml: one long-lived director per federation. */
import { z } from 'zod';
import { DataSourceSchema } from './data-source.ts';
import { NameSchema } from '../names.ts';
import { HeartbeatSchema, NatsSchema, requireKitOrInsecure, trustKeys } from './nats.ts';

export const DirectorSchema = z.object({
  federation: NameSchema,
  nats: NatsSchema.default({}),
  ...trustKeys,
  workspace: z.string().default('runs').describe('run folders: metrics, checkpoints, TensorBoard logs'),
  test_data: DataSourceSchema.optional().describe('held-out test set the director evaluates every aggregate on'),
  heartbeat: HeartbeatSchema.default({}),
}).strict().superRefine(requireKitOrInsecure);
export type DirectorConfig = z.infer<typeof DirectorSchema>;
