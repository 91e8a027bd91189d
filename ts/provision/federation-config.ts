/**
 * federation.yaml: the one file `secflow provision` reads. It names the federation, where its NATS server
 * listens and is reached, its director, its envoys (hospitals) and its data scientists.
 */
import { z } from 'zod';
import { DataSourceSchema } from '../core/config/data-source.ts';
import { ShardSchema } from '../core/config/envoy.ts';
import { HeartbeatSchema } from '../core/config/nats.ts';
import { NameSchema } from '../core/names.ts';

export const EnvoyEntrySchema = z.object({
  name: NameSchema,
  description: z.string().optional(),
  max_examples: z.number().int().positive().optional()
    .describe('the most training examples this hospital may claim per update (caps its FedAvg weight); default: what it registers'),
  shard: ShardSchema.optional().describe("written into the kit's envoy.yaml; without it the hospital fills in its data there"),
}).strict();
export type EnvoyEntry = z.infer<typeof EnvoyEntrySchema>;

export const FederationSchema = z.object({
  federation: NameSchema,
  nats: z.object({
    url: z.string().regex(/^tls:\/\/[^\s/]+:\d+$/, 'tls://host:port').default('tls://127.0.0.1:4222')
      .describe('what participants connect to'),
    listen: z.string().regex(/^[^\s]+:\d+$/, 'host:port').optional()
      .describe("where the server listens (default: the url's host and port; 0.0.0.0:4222 for every interface)"),
    hosts: z.array(z.string().min(1)).optional()
      .describe("DNS names and IP addresses in the server certificate (default: the url's host, plus localhost and 127.0.0.1)"),
    max_payload: z.number().int().positive().optional().describe('the server max_payload in bytes (default NATS: 1 MiB)'),
  }).strict().default({}),
  director: z.object({
    name: NameSchema.default('director'),
    workspace: z.string().default('runs'),
    test_data: DataSourceSchema.optional(),
    heartbeat: HeartbeatSchema.optional(),
  }).strict().default({}),
  envoys: z.array(EnvoyEntrySchema).min(1, 'a federation needs at least one envoy'),
  scientists: z.array(z.object({ name: NameSchema }).strict()).default([{ name: 'scientist' }])
    .describe('data scientists: may submit experiments and follow their metrics, nothing else'),
  validity_days: z.number().int().positive().max(3650).default(825).describe('certificate lifetime'),
}).strict().superRefine((f, ctx) => {
  const names = [f.director.name, ...f.envoys.map((e) => e.name), ...f.scientists.map((s) => s.name)];
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['envoys'], message: `the name ${name} is used twice: every participant needs its own` });
    seen.add(name);
  }
});
export type FederationConfig = z.infer<typeof FederationSchema>;

export function urlHostPort(url: string): { host: string; port: number } {
  const match = /^tls:\/\/(\[[^\]]+\]|[^:]+):(\d+)$/.exec(url);
  if (!match) throw new Error(`nats.url ${url} is not tls://host:port`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}
