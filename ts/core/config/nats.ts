import { z } from 'zod';

export const NatsSchema = z.object({
  url: z.string().min(1).default('nats://127.0.0.1:4222'),
  max_chunk_bytes: z.number().int().positive().optional()
    .describe('largest chunk for big payloads; default: the server max_payload less headroom'),
}).strict();
export type NatsConfig = z.infer<typeof NatsSchema>;

export const HeartbeatSchema = z.object({
  interval_seconds: z.number().positive().default(2),
  timeout_seconds: z.number().positive().default(10).describe('silence after which an envoy counts as gone'),
}).strict();
export type HeartbeatConfig = z.infer<typeof HeartbeatSchema>;
