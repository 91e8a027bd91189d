/** director.yaml: one long-lived director per federation. */
import { z } from 'zod';
import { DataSourceSchema } from './data-source.ts';
import { NameSchema } from '../names.ts';
import { HeartbeatSchema, NatsSchema, requireKitOrInsecure, trustKeys } from './nats.ts';

/**
 * The director's read-only web dashboard (dashboard/): envoys, rounds, curves, refusals, audit pictures. Off
 * unless enabled; loopback unless `host` says otherwise; with a kit, every request needs the access token the
 * dashboard writes (0600) into the workspace.
 */
export const DashboardSchema = z.object({
  enabled: z.boolean().default(false),
  host: z.string().min(1).default('127.0.0.1').describe('address to bind; anything but loopback exposes the dashboard to the network'),
  port: z.number().int().min(0).max(65535).default(8765).describe('0: any free port'),
  audit_reports: z.array(z.string().min(1)).default([])
    .describe('`secflow leakage audit` output folders (relative to director.yaml) whose table, scatter and grids the dashboard shows'),
}).strict();
export type DashboardConfig = z.infer<typeof DashboardSchema>;

export const DirectorSchema = z.object({
  federation: NameSchema,
  nats: NatsSchema.default({}),
  ...trustKeys,
  workspace: z.string().default('runs').describe('run folders: metrics, checkpoints, TensorBoard logs'),
  test_data: DataSourceSchema.optional().describe('held-out test set the director evaluates every aggregate on'),
  heartbeat: HeartbeatSchema.default({}),
  dashboard: DashboardSchema.default({}),
}).strict().superRefine(requireKitOrInsecure);
export type DirectorConfig = z.infer<typeof DirectorSchema>;
