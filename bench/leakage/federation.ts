/**
 * The federation the leakage bench attacks "after one federated round": a real one on this machine (private
 * nats-server, a director and three envoy processes talking only through NATS), set up as the demo
 * (`npm run federation`): three hospitals on Dirichlet(1.0) shares of PneumoniaMNIST's training split, Adam,
 * one local epoch, class weighting, FedAvg, with auditing and a probe (one plain SGD step on one image per
 * envoy, recorded by the director and never aggregated). Only the model differs from the demo: ConvNetBN
 * width 32 with PyTorch-default initialization, seed 0, i.e. the very untrained model of the reference runs.
 *
 * Two rounds, so that round 2's probe is asked of the global model after one round (round-0001 checkpoint).
 */
import { join } from 'node:path';
import { readMetricsLog } from '../../ts/director/run-folder.ts';
import { runLocalFederation } from '../../ts/local/federation.ts';

export const FEDERATION = 'leakage-bench';
export const ENVOYS = ['hospital-a', 'hospital-b', 'hospital-c'];
/** The demo's probe (ts/demo/federation.ts, AUDIT_PROBE): the attack papers' one SGD step on one image. */
export const PROBE = { examples_per_round: 1, batch_size: 1, local_epochs: 1, optimizer: 'sgd', momentum: 0, learning_rate: 0.001 };

export interface FederationRun {
  dir: string;
  /** <workspace>/<federation>/<experiment>: checkpoints/, audit/, metrics.jsonl. */
  runDir: string;
  /** Each envoy's audit_dir is <envoyAudit>/<envoy>. */
  envoyAudit: string;
  experiment: string;
}

const EXPERIMENT = 'round1';

/** The paths of a federation this module ran into `dir` earlier (bench --fed-dir). */
export function federationAt(dir: string): FederationRun {
  return { dir, runDir: join(dir, 'workspace', FEDERATION, EXPERIMENT), envoyAudit: join(dir, 'envoy-audit'), experiment: EXPERIMENT };
}

/** From the run's metrics.jsonl: the director's test metrics after round 1 and each envoy's training examples. */
export function roundOneMetrics(runDir: string): { test_auc: number; test_accuracy: number; examples: Record<string, number> } {
  const lines = readMetricsLog(runDir);
  const first = lines.filter((l) => l.round === 0);
  const test = first.find((l) => l.scope === 'director' && l.split === 'test');
  const { roc_auc: auc, accuracy } = test?.metrics ?? {};
  if (auc === undefined || auc === null || accuracy === undefined) throw new Error(`${runDir}/metrics.jsonl has no test metrics for round 1`);
  const examples = Object.fromEntries(first.filter((l) => l.scope === 'envoy' && l.split === 'train').map((l) => [l.envoy, l.metrics.examples]));
  return { test_auc: auc, test_accuracy: accuracy, examples };
}

export async function runAuditedFederation(dir: string, dataPath: string, model: Record<string, unknown>, log: (line: string) => void): Promise<FederationRun> {
  let completed = 0;
  const { final, config } = await runLocalFederation({
    dir, federation: FEDERATION, dataPath, envoys: ENVOYS,
    partition: { scheme: 'dirichlet', alpha: 1.0, seed: 7 },
    experiment: {
      // The undefended setting the leakage bench measures attacks in (each envoy's update in the clear).
      name: EXPERIMENT, rounds: 2, min_envoys_to_start: 3, model: { precode: { enabled: false }, ...model },
      training: { optimizer: 'adam', learning_rate: 0.001, local_epochs: 1, batch_size: 32, class_weighting: true, batch_norm_statistics: 'batch' },
      aggregation: { strategy: 'fedavg', min_envoys: 2 }, secagg: { enabled: false },
      audit: { enabled: true, probe: PROBE },
      // A loaded 2-core machine trains three envoys at once: be patient.
      start_timeout_seconds: 300,
    },
    registrationTimeoutMs: 300_000,
    silenceTimeoutMs: 1_800_000,
    privacy: { preset: 'open' },
    onEvent: (e) => {
      if (e.type === 'round') {
        completed++;
        log(`federation round ${e.round! + 1}: test AUC ${e.test?.roc_auc?.toFixed(4)}, ${e.seconds?.toFixed(1)} s`);
      }
      if (e.type === 'round_failed') log(`federation round ${e.round! + 1} failed: ${e.message}`);
    },
  });
  if (final.type !== 'finished') throw new Error(`the federation did not finish: ${final.message}`);
  if (completed !== config.rounds) throw new Error(`only ${completed} of ${config.rounds} rounds completed`);
  const run = federationAt(dir);
  if (final.run_dir !== run.runDir) throw new Error(`the director wrote its run to ${final.run_dir}, expected ${run.runDir}`);
  return run;
}
