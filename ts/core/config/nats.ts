import { z } from 'zod';

export const NatsSchema = z.object({
  url: z.string().min(1).default('tls://127.0.0.1:4222').describe('the federation NATS server; tls:// with a kit'),
  max_chunk_bytes: z.number().int().positive().optional()
    .describe('largest chunk for big payloads; default: the server max_payload less headroom'),
}).strict();
export type NatsConfig = z.infer<typeof NatsSchema>;

export const HeartbeatSchema = z.object({
  interval_seconds: z.number().positive().default(2),
  timeout_seconds: z.number().positive().default(10).describe('silence after which an envoy counts as gone'),
}).strict();
export type HeartbeatConfig = z.infer<typeof HeartbeatSchema>;

/**
 * How a role proves who it is: its startup kit (the default and the only protected way), or an explicit,
 * loudly printed opt-out. Exactly one of the two.
 */
export const trustKeys = {
  kit: z.string().min(1).optional().describe('startup kit folder made by `secflow provision` (TLS, NATS credentials, signing keys, roster)'),
  insecure: z.boolean().default(false).describe('run with no TLS, no authentication and no signatures (never with patient data)'),
};

export function requireKitOrInsecure(c: { kit?: string; insecure: boolean }, ctx: z.RefinementCtx): void {
  if (c.kit && c.insecure) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['insecure'], message: 'set either kit or insecure: true, not both' });
  if (!c.kit && !c.insecure) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom, path: ['kit'],
      message: 'no startup kit: set kit: to the folder `secflow provision` made for this participant, ' +
        'or insecure: true to run without TLS, authentication and signatures (never with patient data)',
    });
  }
}
