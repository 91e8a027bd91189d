/**
 * Every message director, envoys and the CLI exchange, typed once with zod and shared by all sides.
 * On the wire a message is msgpack; `decode` validates it against its schema so that a malformed or
 * foreign message is rejected with an error naming the message kind and the problem, never half-used.
 */
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { ExperimentSchema, ModelSpecSchema, TrainingSchema } from './config/experiment.ts';

export const PROTOCOL_VERSION = 1;

export const BlobRefSchema = z.object({
  id: z.string(),
  subject: z.string(),
  bytes: z.number().int().nonnegative(),
  chunks: z.number().int().positive(),
  chunk_bytes: z.number().int().positive(),
  sha256: z.string().length(64),
}).strict();
export type BlobRef = z.infer<typeof BlobRefSchema>;

export const BlobChunkRequestSchema = z.object({ index: z.number().int().nonnegative() }).strict();
export const BlobChunkSchema = z.object({
  index: z.number().int().nonnegative(),
  data: z.instanceof(Uint8Array).optional(),
  error: z.string().optional(),
}).strict();

export const ShardDescriptorSchema = z.object({
  envoy: z.string(),
  description: z.string(),
  sample_shape: z.array(z.number().int().positive()),
  target_shape: z.array(z.number().int()),
  class_names: z.array(z.string()),
  counts: z.object({ train: z.number().int().nonnegative(), val: z.number().int().nonnegative() }).strict(),
  class_counts: z.object({ train: z.array(z.number().int()), val: z.array(z.number().int()) }).strict(),
}).strict();
export type ShardDescriptor = z.infer<typeof ShardDescriptorSchema>;

export const RegisterSchema = z.object({ protocol: z.number().int(), descriptor: ShardDescriptorSchema }).strict();
export const RegisterReplySchema = z.object({
  accepted: z.boolean(),
  reason: z.string().optional(),
}).strict();

export const HeartbeatSchema = z.object({ envoy: z.string(), busy: z.boolean() }).strict();
export const HeartbeatReplySchema = z.object({ known: z.boolean() }).strict();
export const LeaveSchema = z.object({ envoy: z.string() }).strict();

export const MetricsSchema = z.object({
  loss: z.number(), accuracy: z.number(), precision: z.number(), recall: z.number(), f1: z.number(),
  roc_auc: z.number(), sensitivity: z.number(), specificity: z.number(), examples: z.number().int(),
}).strict();

export const TrainTaskSchema = z.object({
  experiment: z.string(),
  run_id: z.string(),
  round: z.number().int().nonnegative(),
  task_id: z.string(),
  model: ModelSpecSchema,
  training: TrainingSchema,
  weights: BlobRefSchema,
  result_subject: z.string(),
}).strict();
export type TrainTask = z.infer<typeof TrainTaskSchema>;

export const TaskAckSchema = z.object({
  accepted: z.boolean(),
  reason: z.string().optional(),
  /** Set by a busy envoy (e.g. still finishing a task of a director that restarted): ask again later. */
  retry_after_ms: z.number().int().positive().optional(),
}).strict();

export const TrainResultSchema = z.object({
  experiment: z.string(),
  run_id: z.string(),
  round: z.number().int().nonnegative(),
  task_id: z.string(),
  envoy: z.string(),
  ok: z.boolean(),
  error: z.string().optional(),
  examples: z.number().int().nonnegative(),
  train: z.object({ loss: z.number(), steps: z.number().int(), seconds: z.number() }).strict().optional(),
  /** The received global model on this envoy's validation split (before local training). */
  val_global: MetricsSchema.optional(),
  /** The locally trained model on the same split. */
  val_local: MetricsSchema.optional(),
  /** Weight delta (local - global) as an encoded FlatWeights blob. */
  update: BlobRefSchema.optional(),
}).strict();
export type TrainResult = z.infer<typeof TrainResultSchema>;

export const ResultAckSchema = z.object({ accepted: z.boolean(), reason: z.string().optional() }).strict();

export const SubmitExperimentSchema = z.object({ config: ExperimentSchema }).strict();
export const SubmitReplySchema = z.object({
  accepted: z.boolean(),
  reason: z.string().optional(),
  events_subject: z.string().optional(),
  resumed_from_round: z.number().int().optional(),
}).strict();

export const ExperimentEventSchema = z.object({
  experiment: z.string(),
  type: z.enum(['queued', 'started', 'round', 'round_failed', 'finished', 'failed', 'log']),
  round: z.number().int().optional(),
  rounds: z.number().int().optional(),
  message: z.string().optional(),
  test: MetricsSchema.optional(),
  envoys: z.array(z.object({
    envoy: z.string(), examples: z.number().int(), train_loss: z.number().optional(),
    val_global: MetricsSchema.optional(), val_local: MetricsSchema.optional(),
  }).strict()).optional(),
  dropped: z.array(z.string()).optional(),
  run_dir: z.string().optional(),
  seconds: z.number().optional(),
}).strict();
export type ExperimentEvent = z.infer<typeof ExperimentEventSchema>;

export const StatusReplySchema = z.object({
  federation: z.string(),
  envoys: z.array(z.object({
    name: z.string(), alive: z.boolean(), busy: z.boolean(), last_seen_seconds_ago: z.number(),
    descriptor: ShardDescriptorSchema,
  }).strict()),
  running: z.string().optional(),
  queued: z.array(z.string()),
}).strict();

export const ErrorReplySchema = z.object({ error: z.string() }).strict();

export class MessageError extends Error {
  override name = 'MessageError';
}

export function encode<S extends z.ZodTypeAny>(schema: S, value: z.input<S>): Uint8Array {
  return pack(schema.parse(value));
}

export function decode<S extends z.ZodTypeAny>(schema: S, bytes: Uint8Array, what: string): z.output<S> {
  let raw: unknown;
  try {
    raw = unpack(bytes);
  } catch (error) {
    throw new MessageError(`malformed ${what}: not msgpack (${(error as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
    throw new MessageError(`malformed ${what}: ${problems}`);
  }
  return parsed.data;
}
