/**
 * One experiment's run folder: its config, metrics (JSONL, CSV, TensorBoard), checkpoints and round state.
 *
 *   <workspace>/<federation>/<experiment>/
 *     config.yaml  metadata.json  state.json  followers.json  metrics.jsonl  metrics.csv  threshold.json  tensorboard/  checkpoints/round-0003.weights
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { csvField } from '../core/csv.ts';
import { tf } from '../core/tf.ts';
import type { ExperimentConfig } from '../core/config/experiment.ts';
import type { ClassificationMetrics } from '../core/metrics.ts';
import { decodeWeights, encodeWeights, type FlatWeights } from '../core/weights.ts';

export interface MetricsRecord {
  round: number;
  scope: 'director' | 'envoy';
  envoy?: string;
  /**
   * test: director's held-out set; val_global / val_local: an envoy's validation split before / after local training;
   * test_at_threshold: the final model on the test set at the threshold chosen from the federation's validation data.
   */
  split: 'test' | 'val_global' | 'val_local' | 'train' | 'privacy' | 'test_at_threshold';
  metrics: Partial<ClassificationMetrics> & { epsilon?: number; delta?: number; threshold?: number };
}

export interface RunState {
  experiment: string;
  config_sha256: string;
  status: 'running' | 'finished' | 'failed';
  next_round: number;
  rounds: number;
  checkpoint?: string;
  failed_rounds: number[];
  updated_at: string;
}

const CSV_COLUMNS = ['round', 'scope', 'envoy', 'split', 'loss', 'accuracy', 'precision', 'recall', 'f1', 'roc_auc', 'sensitivity', 'specificity', 'examples', 'epsilon', 'delta', 'threshold', 'time'] as const;

type SummaryWriter = { scalar(tag: string, value: number, step: number): void; flush(): void };

export function configDigest(config: ExperimentConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}

export class RunFolder {
  private writer?: SummaryWriter;

  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'checkpoints'), { recursive: true });
  }

  static for(workspace: string, federation: string, experiment: string): RunFolder {
    return new RunFolder(join(workspace, federation, experiment));
  }

  readState(): RunState | undefined {
    const path = join(this.dir, 'state.json');
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as RunState) : undefined;
  }

  writeState(state: RunState): void {
    atomicWrite(join(this.dir, 'state.json'), JSON.stringify(state, null, 2));
  }

  /** The data scientists who submitted or re-attached to this experiment: its events go to each of them. */
  readFollowers(): string[] {
    const path = join(this.dir, 'followers.json');
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as string[]) : [];
  }

  addFollower(name: string): void {
    const followers = this.readFollowers();
    if (!followers.includes(name)) atomicWrite(join(this.dir, 'followers.json'), JSON.stringify([...followers, name]));
  }

  writeConfig(config: ExperimentConfig, metadata: Record<string, unknown>): void {
    writeFileSync(join(this.dir, 'config.yaml'), stringify(config));
    writeFileSync(join(this.dir, 'metadata.json'), JSON.stringify(metadata, null, 2));
  }

  /** threshold.json: the decision threshold chosen from the federation's validation data, and what it gives. */
  writeThreshold(record: Record<string, unknown>): void {
    atomicWrite(join(this.dir, 'threshold.json'), JSON.stringify(record, null, 2));
  }

  saveCheckpoint(round: number, weights: FlatWeights): string {
    const name = `checkpoints/round-${String(round + 1).padStart(4, '0')}.weights`;
    atomicWrite(join(this.dir, name), encodeWeights(weights));
    return name;
  }

  loadCheckpoint(name: string): FlatWeights {
    return decodeWeights(readFileSync(join(this.dir, name)));
  }

  log(record: MetricsRecord): void {
    const time = new Date().toISOString();
    appendFileSync(join(this.dir, 'metrics.jsonl'), JSON.stringify({ ...record, time }) + '\n');
    const csvPath = join(this.dir, 'metrics.csv');
    if (!existsSync(csvPath)) appendFileSync(csvPath, CSV_COLUMNS.join(',') + '\n');
    const flat: Record<string, unknown> = { ...record.metrics, round: record.round + 1, scope: record.scope, envoy: record.envoy ?? '', split: record.split, time };
    appendFileSync(csvPath, CSV_COLUMNS.map((c) => formatCell(flat[c])).join(',') + '\n');
    this.logTensorBoard(record);
  }

  close(): void {
    this.writer?.flush();
  }

  private logTensorBoard(record: MetricsRecord): void {
    const writer = this.summaryWriter();
    if (!writer) return;
    const prefix = record.scope === 'director' ? `director/${record.split}` : `envoy/${record.envoy}/${record.split}`;
    for (const [key, value] of Object.entries(record.metrics)) {
      if (typeof value === 'number' && Number.isFinite(value) && key !== 'examples') writer.scalar(`${prefix}/${key}`, value, record.round + 1);
    }
    writer.flush();
  }

  private summaryWriter(): SummaryWriter | undefined {
    const node = (tf as unknown as { node?: { summaryFileWriter(dir: string): SummaryWriter } }).node;
    if (!node) return undefined;
    this.writer ??= node.summaryFileWriter(join(this.dir, 'tensorboard'));
    return this.writer;
  }
}

/** A run folder's metrics.jsonl as records (empty if the run logged none yet). */
export function readMetricsLog(runDir: string): (MetricsRecord & { time: string })[] {
  const path = join(runDir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/** Metrics are rounded to 6 significant digits for the CSV (metrics.jsonl keeps them whole). */
function formatCell(value: unknown): string {
  if (typeof value === 'number') return Number.isFinite(value) ? String(+value.toPrecision(6)) : '';
  return csvField(value as string | undefined);
}

/** Write-then-rename, so a director killed mid-write never leaves a half checkpoint behind. */
function atomicWrite(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}
