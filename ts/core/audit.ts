/**
 * Audit records: what the leakage lab attacks and what it scores against, kept on the two sides that
 * really hold them.
 *
 *  - The director's side (`<run dir>/audit/round-0001[-probe]/`): the global weights it sent, each update it
 *    received (per envoy without secure aggregation; only the aggregate with it) and `record.json` saying
 *    how the updates were trained. This is exactly the attacker's view.
 *  - The envoy's side (`<envoy audit_dir>/<federation>/<experiment>/<envoy>/round-0001[-probe].truth`): which
 *    images it trained on, with their pixels and labels. Ground truth for scoring only: it never travels.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { ModelSpecSchema, TrainingSchema } from './config/experiment.ts';
import { decodeWeights, encodeWeights, type FlatWeights } from './weights.ts';

export type AuditKind = 'round' | 'probe';

export const AuditUpdateSchema = z.object({
  /** The envoy whose update this is, or for an aggregate every envoy summed into it. */
  envoys: z.array(z.string()).min(1),
  /** As aggregated: capped by admission, possibly fractional under a weight cap. */
  examples: z.number().nonnegative(),
  file: z.string(),
  /** A secure aggregate: each member's FedAvg weight in it (summing to 1), which the director knows. */
  weights: z.record(z.number().nonnegative()).optional(),
}).strict();

export const AuditRecordSchema = z.object({
  experiment: z.string(),
  round: z.number().int().nonnegative(),
  kind: z.enum(['round', 'probe']),
  /** 'updates': one per envoy; 'aggregate': secure aggregation let the director see only their sum. */
  view: z.enum(['updates', 'aggregate']),
  model: ModelSpecSchema,
  training: TrainingSchema,
  sent: z.string(),
  updates: z.array(AuditUpdateSchema),
}).strict();
export type AuditRecord = z.infer<typeof AuditRecordSchema>;

export interface AuditTruth {
  envoy: string;
  experiment: string;
  round: number;
  kind: AuditKind;
  /** Indices into the envoy's training split. */
  indices: number[];
  labels: Int32Array;
  /** N * H * W * C pixels in [0, 1]. */
  images: Float32Array;
  sampleShape: [number, number, number];
}

export function roundFolderName(round: number, kind: AuditKind): string {
  return `round-${String(round + 1).padStart(4, '0')}${kind === 'probe' ? '-probe' : ''}`;
}

// ---- the director's side -------------------------------------------------------------------------

export function auditRoundDir(runDir: string, round: number, kind: AuditKind): string {
  return join(runDir, 'audit', roundFolderName(round, kind));
}

export function writeAuditRecord(dir: string, record: Omit<AuditRecord, 'sent' | 'updates'>, sent: FlatWeights,
  updates: { envoys: string[]; examples: number; delta: FlatWeights; weights?: Record<string, number> }[]): AuditRecord {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'sent.weights'), encodeWeights(sent));
  const entries = updates.map((u, i) => {
    const file = record.view === 'aggregate' ? 'aggregate.weights' : `update-${safeName(u.envoys[0] ?? String(i))}.weights`;
    writeFileSync(join(dir, file), encodeWeights(u.delta));
    return { envoys: u.envoys, examples: u.examples, file, ...(u.weights ? { weights: u.weights } : {}) };
  });
  const full: AuditRecord = { ...record, sent: 'sent.weights', updates: entries };
  writeFileSync(join(dir, 'record.json'), JSON.stringify(full, null, 2) + '\n');
  return full;
}

export function readAuditRecord(dir: string): AuditRecord {
  const path = join(dir, 'record.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read audit record ${path}: ${(error as Error).message}`);
  }
  const parsed = AuditRecordSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`audit record ${path} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export function readAuditWeights(dir: string, file: string): FlatWeights {
  return decodeWeights(readFileSync(join(dir, file)));
}

/** The update an envoy's name points to in a record (the aggregate, under secure aggregation). */
export function updateOf(record: AuditRecord, envoy: string): AuditRecord['updates'][number] {
  const found = record.updates.find((u) => u.envoys.includes(envoy));
  if (!found) {
    throw new Error(`round ${record.round + 1} (${record.kind}) has no update from ${envoy}; it has ${record.updates.map((u) => u.envoys.join('+')).join(', ') || 'none'}`);
  }
  return found;
}

// ---- the envoy's side ----------------------------------------------------------------------------

export function truthPath(auditDir: string, federation: string, experiment: string, envoy: string, round: number, kind: AuditKind): string {
  return join(auditDir, federation, experiment, envoy, `${roundFolderName(round, kind)}.truth`);
}

export function writeAuditTruth(path: string, truth: AuditTruth): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, pack({ ...truth, labels: [...truth.labels], images: new Uint8Array(truth.images.buffer, truth.images.byteOffset, truth.images.byteLength) }));
}

export function readAuditTruth(path: string): AuditTruth {
  let raw: Record<string, unknown>;
  try {
    raw = unpack(readFileSync(path)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`cannot read the envoy's audit truth ${path}: ${(error as Error).message}`);
  }
  const { images, labels, sampleShape, indices } = raw;
  if (!(images instanceof Uint8Array) || !Array.isArray(labels) || !Array.isArray(sampleShape) || !Array.isArray(indices)) {
    throw new Error(`the envoy's audit truth ${path} lacks images, labels, indices or their shape`);
  }
  const pixels = new Float32Array(images.byteLength / 4);
  new Uint8Array(pixels.buffer).set(images);
  return { ...(raw as unknown as AuditTruth), images: pixels, labels: Int32Array.from(labels as number[]) };
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}
