/**
 * Every message director, envoys and the CLI exchange, typed once with zod and shared by all sides, and
 * the protocol table (`kinds`) saying who may send each one. On the wire a message is msgpack inside a
 * signed envelope (trust/); `decode` validates it against its schema so that a malformed or foreign message
 * is rejected with an error naming the message kind and the problem, never half-used.
 */
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { ExperimentSchema, ModelSpecSchema, TrainingSchema } from './config/experiment.ts';
import { NameSchema } from './names.ts';
import { OperatingPointsSchema } from './operating-points.ts';
import type { Role } from './trust/index.ts';

export const PROTOCOL_VERSION = 2;

/** A number that is neither NaN nor infinite: nothing non-finite travels. */
const Finite = () => z.number().finite();

/**
 * A payload offered by `owner` to the one receiver of the message carrying this ref. The subject is not
 * in the ref: the receiver derives it from (owner, itself, id), so a ref cannot send a fetch elsewhere.
 * In a secure federation the blob is encrypted (AES-256-GCM) and `key` opens it; the ref itself travels
 * sealed to the receiver.
 */
export const BlobRefSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{32}$/),
  owner: NameSchema,
  bytes: z.number().int().nonnegative(),
  chunks: z.number().int().positive(),
  chunk_bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  key: z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length === 32, 'a 32-byte key').optional(),
}).strict();
export type BlobRef = z.infer<typeof BlobRefSchema>;

export const BlobChunkRequestSchema = z.object({ index: z.number().int().nonnegative() }).strict();
export const BlobChunkSchema = z.object({
  index: z.number().int().nonnegative(),
  data: z.instanceof(Uint8Array).optional(),
  error: z.string().optional(),
}).strict();

export const ShardDescriptorSchema = z.object({
  envoy: NameSchema,
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

export const HeartbeatSchema = z.object({ envoy: NameSchema, busy: z.boolean() }).strict();
export const HeartbeatReplySchema = z.object({ known: z.boolean() }).strict();
export const LeaveSchema = z.object({ envoy: NameSchema }).strict();

export const MetricsSchema = z.object({
  loss: Finite(), accuracy: Finite(), precision: Finite(), recall: Finite(), f1: Finite(),
  roc_auc: Finite().nullable().describe('null for a one-class set, where ROC-AUC is undefined'), sensitivity: Finite(), specificity: Finite(), examples: z.number().int(),
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
  scale: Finite().positive(),
  /**
   * Who is in the sum: every cohort member's name, client id and weight. Envoys check the names against the
   * roster (no sybils) and sign a digest covering all of it (no one gets a different cohort or weight).
   */
  members: z.array(z.object({ envoy: NameSchema, client_id: z.number().int().nonnegative(), scale: Finite().positive() }).strict()).min(1),
  stage_timeout_ms: z.number().int().positive(),
  round_timeout_ms: z.number().int().positive(),
}).strict();
export type SecAggTask = z.infer<typeof SecAggTaskSchema>;

/** Which task a message belongs to: every message of a round carries it, and receivers match all four. */
export const TaskHeaderSchema = z.object({
  experiment: NameSchema,
  run_id: NameSchema,
  round: z.number().int().nonnegative(),
  task_id: z.string().uuid(),
});
export type TaskHeader = z.infer<typeof TaskHeaderSchema>;

/** The header of any message of a task: built here, once, from the task (or any message that carries one). */
export function headerOf(t: TaskHeader): TaskHeader {
  return { experiment: t.experiment, run_id: t.run_id, round: t.round, task_id: t.task_id };
}

/** Why a message's header is not the task's, or undefined when all four match. */
export function headerMismatch(expected: TaskHeader, got: TaskHeader): string | undefined {
  if (got.experiment === expected.experiment && got.run_id === expected.run_id && got.round === expected.round && got.task_id === expected.task_id) return undefined;
  return `a message for round ${got.round + 1} of run ${got.run_id} is not expected now`;
}

/** The envoy answers on subjects derived from the header (results / secagg uploads), never on one the task names. */
export const TrainTaskSchema = TaskHeaderSchema.extend({
  model: ModelSpecSchema,
  training: TrainingSchema,
  weights: BlobRefSchema,
  /** The envoy clips its update to this L2 norm before it leaves (aggregation.max_update_norm). */
  max_update_norm: Finite().positive(),
  /** Present when the round runs secure aggregation: the update goes out masked, never in the clear. */
  secagg: SecAggTaskSchema.optional(),
  /** Auditing: the envoy keeps, on its own side, which images it trained on (see core/audit.ts). */
  audit: z.object({ kind: z.enum(['round', 'probe']) }).strict().optional(),
  /** Evaluation only (after the last round): the envoy reports the model's validation metrics and operating points, trains nothing, sends no update. */
  evaluate: z.literal(true).optional(),
}).strict();
export type TrainTask = z.infer<typeof TrainTaskSchema>;

export const TaskAckSchema = z.object({
  accepted: z.boolean(),
  reason: z.string().max(1000).optional(),
  /** A refusal by the envoy's privacy policy: the envoy.yaml key of the rule that said no. */
  rule: z.string().max(100).optional(),
  /** Set by a busy envoy (e.g. still finishing a task of a director that restarted): ask again later. */
  retry_after_ms: z.number().int().positive().optional(),
}).strict();

export const TrainResultSchema = TaskHeaderSchema.extend({
  envoy: NameSchema,
  ok: z.boolean(),
  error: z.string().max(1000).optional(),
  /** With an error that is a refusal (the envoy's check of its director, say): the rule that said no. */
  rule: z.string().max(100).optional(),
  examples: z.number().int().nonnegative(),
  train: z.object({ loss: Finite(), steps: z.number().int(), seconds: Finite() }).strict().optional(),
  /** The received global model on this envoy's validation split (before local training). */
  val_global: MetricsSchema.optional(),
  /** The locally trained model on the same split. */
  val_local: MetricsSchema.optional(),
  /** Evaluation tasks: the received model's ROC curve on the validation split at the fixed grid (core/operating-points.ts). */
  operating_points: OperatingPointsSchema.optional(),
  /** Under DP-SGD: this envoy's privacy spent in the experiment so far (RDP accountant), at the configured delta. */
  privacy: z.object({ epsilon: Finite(), delta: Finite(), noise_multiplier: Finite(), sample_rate: Finite(), steps: z.number().int() }).strict().optional(),
  /** Weight delta (local - global) as an encoded FlatWeights blob. */
  update: BlobRefSchema.optional(),
}).strict();
export type TrainResult = z.infer<typeof TrainResultSchema>;

export const ResultAckSchema = z.object({ accepted: z.boolean(), reason: z.string().optional() }).strict();

/** Director -> envoy: the addon's message for this envoy at the end of a stage, or 'abort' (round over). */
export const SignedAdvertisementSchema = z.object({
  envoy: NameSchema,
  client_id: z.number().int().nonnegative(),
  /** The addon's AdvertiseKeys message, as the envoy sent it. */
  advert: z.instanceof(Uint8Array),
  /** The task digest the envoy computed (core/task-digest.ts). */
  digest: z.instanceof(Uint8Array).refine((d) => d.length === 32, 'a 32-byte digest'),
  /** The envoy's Ed25519 attestation over (federation, envoy, client id, digest, SHA-256 of advert). */
  signature: z.instanceof(Uint8Array),
}).strict();
export type SignedAdvertisement = z.infer<typeof SignedAdvertisementSchema>;

export const SecAggDeliverySchema = TaskHeaderSchema.extend({
  stage: z.enum(['keys', 'shares', 'unmask', 'abort']),
  message: z.instanceof(Uint8Array).optional(),
  /** With the keys: every cohort member's signed advertisement, so each envoy checks the others' digests itself. */
  advertisements: z.array(SignedAdvertisementSchema).optional(),
  reason: z.string().max(1000).optional(),
}).strict();
export type SecAggDelivery = z.infer<typeof SecAggDeliverySchema>;

/** Envoy -> director: the addon's message of one stage (masked input as a blob: it exceeds max_payload). */
export const SecAggUploadSchema = TaskHeaderSchema.extend({
  envoy: NameSchema,
  stage: z.enum(['advertise', 'share_keys', 'masked_input', 'unmask']),
  message: z.instanceof(Uint8Array).optional(),
  blob: BlobRefSchema.optional(),
  /** With the advertisement: the task digest and the envoy's attestation (SignedAdvertisementSchema). */
  digest: z.instanceof(Uint8Array).optional(),
  signature: z.instanceof(Uint8Array).optional(),
  /** The envoy cannot go on (e.g. training failed): the director drops it from the round. */
  error: z.string().max(1000).optional(),
  /** With an error that is a refusal (a director that cheats, say): the rule that said no. */
  rule: z.string().max(100).optional(),
  /** With the masked input: the envoy's metrics in the clear (never an update). */
  result: TrainResultSchema.optional(),
}).strict();
export type SecAggUpload = z.infer<typeof SecAggUploadSchema>;
export type SecAggStage = SecAggUpload['stage'];

export const SubmitExperimentSchema = z.object({ config: ExperimentSchema }).strict();
export const SubmitReplySchema = z.object({
  accepted: z.boolean(),
  reason: z.string().optional(),
  resumed_from_round: z.number().int().optional(),
}).strict();

export const ExperimentEventSchema = z.object({
  experiment: NameSchema,
  type: z.enum(['queued', 'started', 'round', 'round_failed', 'finished', 'failed', 'log']),
  round: z.number().int().optional(),
  rounds: z.number().int().optional(),
  message: z.string().optional(),
  test: MetricsSchema.optional(),
  envoys: z.array(z.object({
    envoy: NameSchema, examples: z.number().int(), train_loss: Finite().optional(), train_seconds: Finite().optional(),
    val_global: MetricsSchema.optional(), val_local: MetricsSchema.optional(), epsilon: Finite().optional(),
  }).strict()).optional(),
  dropped: z.array(NameSchema).optional(),
  /** Envoys whose privacy policy refused this round's task, with the rule (envoy.yaml key) and why. */
  refusals: z.array(z.object({ envoy: NameSchema, rule: z.string(), reason: z.string() }).strict()).optional(),
  run_dir: z.string().optional(),
  seconds: Finite().optional(),
  /** With 'finished': the decision threshold chosen from the federation's validation data, and the test metrics at it. */
  threshold: z.object({
    threshold: Finite(), sensitivity: Finite(), specificity: Finite(), examples: z.number().int(), envoys: z.number().int(),
  }).strict().optional(),
  test_at_threshold: MetricsSchema.optional(),
}).strict();
export type ExperimentEvent = z.infer<typeof ExperimentEventSchema>;

export const StatusRequestSchema = z.object({}).strict();
export const StatusReplySchema = z.object({
  federation: NameSchema,
  envoys: z.array(z.object({
    name: NameSchema, alive: z.boolean(), busy: z.boolean(), last_seen_seconds_ago: z.number(),
    descriptor: ShardDescriptorSchema,
    /** Tasks its privacy policy refused, and the last refusal's rule and reason. */
    refused_tasks: z.number().int().default(0),
    last_refusal: z.string().optional(),
  }).strict()),
  running: z.string().optional(),
  queued: z.array(z.string()),
  /** Messages the director refused, per sender and reason (trust/rejections.ts). */
  refused: z.array(z.object({ sender: z.string(), reason: z.string(), count: z.number().int(), last_subject: z.string() }).strict()).default([]),
  protection: z.string().default(''),
}).strict();

export type StatusReply = z.input<typeof StatusReplySchema>;

/** Error replies are short and never repeat what was received. */
export const ERROR_REPLY_MAX = 300;
export const ErrorReplySchema = z.object({ error: z.string().max(ERROR_REPLY_MAX) }).strict();

export class MessageError extends Error {
  override name = 'MessageError';
  /** For error replies: where the message was wrong, without the values received. */
  constructor(message: string, readonly brief: string = message) {
    super(message);
  }
}

/**
 * The protocol: each message kind, its reply, and the roles that may send it. Receivers check the role
 * against the sender's verified identity (bus.ts), so an envoy cannot hand out tasks or a data scientist
 * register as a hospital, whatever the NATS server allows.
 */
export interface Kind<Req extends z.ZodTypeAny = z.ZodTypeAny, Rep extends z.ZodTypeAny = z.ZodTypeAny> {
  kind: string;
  what: string;
  schema: Req;
  reply?: Rep;
  from: readonly Role[];
}

function kind<Req extends z.ZodTypeAny, Rep extends z.ZodTypeAny>(name: string, what: string, schema: Req, reply: Rep | undefined, from: readonly Role[]): Kind<Req, Rep> {
  return { kind: name, what, schema, reply, from };
}

export const kinds = {
  register: kind('register', 'registration', RegisterSchema, RegisterReplySchema, ['envoy']),
  heartbeat: kind('heartbeat', 'heartbeat', HeartbeatSchema, HeartbeatReplySchema, ['envoy']),
  leave: kind('leave', 'leave notice', LeaveSchema, undefined, ['envoy']),
  submit: kind('submit', 'experiment submission', SubmitExperimentSchema, SubmitReplySchema, ['scientist']),
  status: kind('status', 'status request', StatusRequestSchema, StatusReplySchema, ['scientist']),
  task: kind('task', 'training task', TrainTaskSchema, TaskAckSchema, ['director']),
  secaggDelivery: kind('secagg_delivery', 'secure aggregation message', SecAggDeliverySchema, ResultAckSchema, ['director']),
  result: kind('result', 'training result', TrainResultSchema, ResultAckSchema, ['envoy']),
  secaggUpload: kind('secagg_upload', 'secure aggregation message', SecAggUploadSchema, ResultAckSchema, ['envoy']),
  event: kind('event', 'experiment event', ExperimentEventSchema, undefined, ['director']),
};

export function encode<S extends z.ZodTypeAny>(schema: S, value: z.input<S>): Uint8Array {
  return pack(schema.parse(value));
}

export function decode<S extends z.ZodTypeAny>(schema: S, bytes: Uint8Array, what: string): z.output<S> {
  let raw: unknown;
  try {
    raw = unpack(bytes);
  } catch (error) {
    throw new MessageError(`malformed ${what}: not msgpack (${(error as Error).message.slice(0, 200)})`, `malformed ${what}: not msgpack`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5);
    const problems = issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
    const where = [...new Set(issues.map((i) => `${i.path.slice(0, 3).join('.') || '(message)'} (${i.code})`))].join(', ');
    throw new MessageError(`malformed ${what}: ${problems}`.slice(0, 600), `malformed ${what}: ${where}`.slice(0, ERROR_REPLY_MAX));
  }
  return parsed.data;
}
