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
  roc_auc: z.number().nullable().describe('null for a one-class set, where ROC-AUC is undefined'), sensitivity: z.number(), specificity: z.number(), examples: z.number().int(),
}).strict();

/**
 * Secure aggregation parameters of one envoy's task (SecAgg+, see ts/core/secagg/). The envoy masks
 * delta * scale, where scale = its examples / the cohort's mean examples, so the unmasked sum is
 * proportional to the example-weighted FedAvg delta.
 */
export const SecAggTaskSchema = z.object({
  client_id: z.number().int().nonnegative(),
  /** Binds every protocol message to this experiment run; a replay from another run is rejected. */
  experiment_id: z.string(),
  cohort: z.array(z.number().int().nonnegative()),
  neighbours: z.number().int().positive(),
  threshold: z.number().int().positive(),
  bits: z.number().int().min(1).max(32),
  clip: z.number().positive(),
  vector_len: z.number().int().positive(),
  graph_seed: z.instanceof(Uint8Array),
  scale: z.number().positive(),
  upload_subject: z.string(),
  stage_timeout_ms: z.number().int().positive(),
  round_timeout_ms: z.number().int().positive(),
}).strict();
export type SecAggTask = z.infer<typeof SecAggTaskSchema>;

export const TrainTaskSchema = z.object({
  experiment: z.string(),
  run_id: z.string(),
  round: z.number().int().nonnegative(),
  task_id: z.string(),
  model: ModelSpecSchema,
  training: TrainingSchema,
  weights: BlobRefSchema,
  result_subject: z.string(),
  /** Present when the round runs secure aggregation: the update goes out masked, never in the clear. */
  secagg: SecAggTaskSchema.optional(),
  /** Auditing: the envoy keeps, on its own side, which images it trained on (see core/audit.ts). */
  audit: z.object({ kind: z.enum(['round', 'probe']) }).strict().optional(),
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
  /** Under DP-SGD: this envoy's privacy spent in the experiment so far (RDP accountant), at the configured delta. */
  privacy: z.object({ epsilon: z.number(), delta: z.number(), noise_multiplier: z.number(), sample_rate: z.number(), steps: z.number().int() }).strict().optional(),
  /** Weight delta (local - global) as an encoded FlatWeights blob. */
  update: BlobRefSchema.optional(),
}).strict();
export type TrainResult = z.infer<typeof TrainResultSchema>;

export const ResultAckSchema = z.object({ accepted: z.boolean(), reason: z.string().optional() }).strict();

/** Director -> envoy: the addon's message for this envoy at the end of a stage, or 'abort' (round over). */
export const SecAggDeliverySchema = z.object({
  experiment: z.string(),
  run_id: z.string(),
  round: z.number().int().nonnegative(),
  task_id: z.string(),
  stage: z.enum(['keys', 'shares', 'unmask', 'abort']),
  message: z.instanceof(Uint8Array).optional(),
  reason: z.string().optional(),
}).strict();
export type SecAggDelivery = z.infer<typeof SecAggDeliverySchema>;

/** Envoy -> director: the addon's message of one stage (masked input as a blob: it exceeds max_payload). */
export const SecAggUploadSchema = z.object({
  experiment: z.string(),
  run_id: z.string(),
  round: z.number().int().nonnegative(),
  task_id: z.string(),
  envoy: z.string(),
  stage: z.enum(['advertise', 'share_keys', 'masked_input', 'unmask']),
  message: z.instanceof(Uint8Array).optional(),
  blob: BlobRefSchema.optional(),
  /** The envoy cannot go on (e.g. training failed): the director drops it from the round. */
  error: z.string().optional(),
  /** With the masked input: the envoy's metrics in the clear (never an update). */
  result: TrainResultSchema.optional(),
}).strict();
export type SecAggUpload = z.infer<typeof SecAggUploadSchema>;
export type SecAggStage = SecAggUpload['stage'];

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
    envoy: z.string(), examples: z.number().int(), train_loss: z.number().optional(), train_seconds: z.number().optional(),
    val_global: MetricsSchema.optional(), val_local: MetricsSchema.optional(), epsilon: z.number().optional(),
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
