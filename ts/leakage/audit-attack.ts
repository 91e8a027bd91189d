/**
 * The attack on an audit record: what the director received in one round (core/audit.ts), attacked with
 * only what the director knows (the weights it sent, the experiment's model and training settings), and
 * scored against the images the envoy recorded on its own side.
 */
import { join } from 'node:path';
import { auditRoundDir, readAuditRecord, readAuditTruth, readAuditWeights, truthPath, updateOf, type AuditRecord, type AuditTruth } from '../core/audit.ts';
import { localStepCount } from '../core/training.ts';
import type { LeakageRunConfig } from './run.ts';

export type AttackSettings = Pick<LeakageRunConfig, 'attack' | 'iterations' | 'restarts' | 'learningRate' | 'tvWeight' | 'seed'>;

export function auditedRunConfig(recordDir: string, envoy: string, truthPaths: string[], attack: AttackSettings): Omit<LeakageRunConfig, 'floorImages'> {
  const record = readAuditRecord(recordDir);
  const update = updateOf(record, envoy);
  const truths = matchingTruths(record, update.envoys, truthPaths.map(readAuditTruth));
  const perEnvoy = truths[0].labels.length;
  const { training } = record;
  if (training.optimizer === 'adadelta') throw new Error('the attack cannot simulate adadelta; audit with sgd or adam');
  if (training.batch_size < perEnvoy) {
    throw new Error(`each envoy trained on ${perEnvoy} images in batches of ${training.batch_size}: the attack simulates full-batch ` +
      'steps only (set training.examples_per_round <= batch_size in the audited experiment or its probe)');
  }
  return {
    ...attack,
    model: record.model,
    bnMode: 'train', // envoys train with batch statistics
    images: concat(truths.map((t) => t.images)),
    labels: Int32Array.from(truths.flatMap((t) => [...t.labels])),
    batch: truths.reduce((n, t) => n + t.labels.length, 0),
    localSteps: localStepCount(perEnvoy, training), // full batch: one step per epoch
    localLearningRate: training.learning_rate,
    localOptimizer: training.optimizer,
    localMomentum: training.optimizer === 'sgd' ? training.momentum : undefined,
    saved: { sent: readAuditWeights(recordDir, record.sent), delta: readAuditWeights(recordDir, update.file) },
    // A secure aggregate is the weighted sum of each envoy's own update (own batch, own batch-norm statistics).
    ...(record.view === 'aggregate' && update.envoys.length > 1 ? { aggregateWeights: aggregateWeightsOf(update, truths) } : {}),
    // The director knows the experiment: statistics over the whole shard say nothing about the batch, and
    // matching them as if they were the batch's would only mislead the attack.
    ...(training.batch_norm_statistics === 'shard' ? { bnStatisticsWeight: 0 } : {}),
  };
}

/** Each member's FedAvg weight, in the order of the truths; equal weights for a record from before they were kept. */
function aggregateWeightsOf(update: AuditRecord['updates'][number], truths: AuditTruth[]): number[] {
  const counts = new Set(truths.map((t) => t.labels.length));
  if (counts.size !== 1) throw new Error(`the envoys in this aggregate trained on ${[...counts].join(', ')} images: the attack models equal batches`);
  return truths.map((t) => update.weights?.[t.envoy] ?? 1 / truths.length);
}

/** Where a local run's audit records are: the director's run folder and the envoys' audit folders (ts/local). */
export interface LocalAuditedRun { runDir: string; envoyAudit: string; federation: string; experiment: string }

/** The attack on round `round`'s probe of `envoys`: one envoy, or every envoy in a secure aggregate. */
export function probeAttackConfig(run: LocalAuditedRun, round: number, envoys: string[], attack: AttackSettings): Omit<LeakageRunConfig, 'floorImages'> {
  const truths = envoys.map((e) => truthPath(join(run.envoyAudit, e), run.federation, run.experiment, e, round, 'probe'));
  return auditedRunConfig(auditRoundDir(run.runDir, round, 'probe'), envoys[0], truths, attack);
}

/** The truth files of exactly the envoys in this update, from this round; anything else is an error. */
function matchingTruths(record: AuditRecord, envoys: string[], truths: AuditTruth[]): AuditTruth[] {
  const where = `round ${record.round + 1} (${record.kind}) of ${record.experiment}`;
  const found = envoys.map((envoy) => {
    const t = truths.find((x) => x.envoy === envoy);
    if (!t) throw new Error(`no audit truth for ${envoy} among the files given; the update of ${where} comes from ${envoys.join(', ')}`);
    if (t.round !== record.round || t.kind !== record.kind || t.experiment !== record.experiment) {
      throw new Error(`the audit truth of ${envoy} is from round ${t.round + 1} (${t.kind}) of ${t.experiment}, not ${where}`);
    }
    return t;
  });
  const sizes = new Set(found.map((t) => t.labels.length));
  if (sizes.size > 1) throw new Error(`the envoys in ${where} trained on different numbers of images (${[...sizes].join(', ')})`);
  return found;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}
