/**
 * Auditing on the director: keep exactly what this director received in a round (the attacker's view)
 * and, when asked, run a probe round whose updates are recorded and never aggregated.
 *
 * Why a probe: real local training (an epoch over hundreds of images) gives an update no attack can invert,
 * which would flatter every defense. The probe asks each envoy for what the attack papers assume (e.g. one
 * SGD step on one image) on the same global model, through the same transport, defenses and secure
 * aggregation as the real round, so leakage is measured where it is largest, every round.
 */
import { auditRoundDir, writeAuditRecord, type AuditKind } from '../core/audit.ts';
import { TrainingSchema, type ExperimentConfig, type TrainingConfig } from '../core/config/experiment.ts';
import type { FlatWeights } from '../core/weights.ts';
import { collectRound, type RoundCollection, type RoundContext } from './round/index.ts';

/** Probe training: the experiment's settings (defenses included) with the probe's overrides on top. */
export function probeTraining(config: ExperimentConfig): TrainingConfig {
  // Class weights and FedProx would only rescale or bend a one-step update; the probe leaves them off
  // unless it asks for them, so the attacker's simulation of the envoy's steps is the envoy's own.
  return TrainingSchema.parse({ ...config.training, class_weighting: false, fedprox_mu: 0, ...config.audit.probe });
}

/** Writes the round's record: the sent weights and each received update (or the secure aggregate). */
export function recordReceived(runDir: string, kind: AuditKind, round: number, config: ExperimentConfig,
  sent: FlatWeights, collection: RoundCollection): string | undefined {
  if (!collection.updates.length) return undefined;
  const aggregate = config.secagg.enabled;
  const dir = auditRoundDir(runDir, round, kind);
  writeAuditRecord(dir, {
    experiment: config.name, round, kind, view: aggregate ? 'aggregate' : 'updates', model: config.model, training: config.training,
  }, sent, collection.updates.map((u) => ({
    // A secure sum is over its members (the whole round, or one sub-cohort); a plain update is its envoy's.
    envoys: aggregate ? (u.members ? Object.keys(u.members).sort() : collection.results.map((r) => r.envoy)) : [u.envoy],
    examples: u.examples,
    delta: u.delta,
    ...(u.members ? { weights: normalized(u.members) } : {}),
  })));
  return dir;
}

/** The probe round: same global model, the probe's training settings; recorded, not aggregated. */
export async function runProbe(ctx: RoundContext, runDir: string): Promise<void> {
  const config = { ...ctx.config, training: probeTraining(ctx.config) };
  const collection = await collectRound({ ...ctx, config, runId: `${ctx.runId}-probe`, audit: { kind: 'probe' } });
  const dir = recordReceived(runDir, 'probe', ctx.round, config, ctx.global, collection);
  for (const d of collection.dropped) if (d.rule) ctx.registry.refused(d.envoy, d.rule, d.reason);
  const problems = [collection.failure, ...collection.dropped.map((d) => `${d.envoy}: ${d.reason}`)].filter(Boolean);
  if (problems.length) ctx.log.warn(`round ${ctx.round + 1}: audit probe incomplete (${problems.join('; ')})`);
  if (dir) ctx.log.info(`round ${ctx.round + 1}: audit probe recorded in ${dir}`);
}

function normalized(examples: Record<string, number>): Record<string, number> {
  const total = Object.values(examples).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(examples).map(([e, n]) => [e, n / total]));
}
