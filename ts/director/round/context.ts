/** What one round's collection step is given and what it hands back to the experiment runner. */
import type { ExperimentConfig } from '../../core/config/experiment.ts';
import type { Logger } from '../../core/log.ts';
import type { TrainResult, TrainTask } from '../../core/messages.ts';
import type { Bus } from '../../core/transport/bus.ts';
import type { OfferedBlob } from '../../core/transport/blobs.ts';
import type { FlatWeights } from '../../core/weights.ts';
import type { EnvoyRegistry } from '../registry.ts';
import type { ClientUpdate } from '../strategies/index.ts';
import type { SubCohortOutcome } from './sub-cohorts.ts';

export interface RoundContext {
  bus: Bus;
  config: ExperimentConfig;
  runId: string;
  round: number;
  /** The global model, offered to every participant. */
  globalWeights: OfferedBlob;
  /** SHA-256 (hex) of the offered model's plaintext bytes: what each envoy hashes into a secure round's task digest. */
  globalSha256: string;
  /** The same model as a vector: updates must fit it; its size fixes a secure round's vector length. */
  global: FlatWeights;
  participants: string[];
  registry: EnvoyRegistry;
  log: Logger;
  /** Set on audited rounds: the envoys record which images they trained on (core/audit.ts). */
  audit?: TrainTask['audit'];
  /** The evaluation round after the last one (evaluation.ts): metrics and operating points, no training. */
  evaluate?: true;
  /** How many rounds in a row an envoy's sub-cohort was refused (sub-cohorts.ts): suspects are dealt apart. */
  suspicion?: (envoy: string) => number;
}

/** An envoy that left the round, and why; `rule` when its privacy policy refused the task (envoy.yaml key). */
export interface Dropout { envoy: string; reason: string; rule?: string }

export interface RoundCollection {
  updates: ClientUpdate[];
  results: TrainResult[];
  dropped: Dropout[];
  /** Envoys whose updates are in `updates` (a secure round hands over one pre-summed update); default updates.length. */
  contributors?: number;
  /** Set when the round cannot produce an aggregate; says why. */
  failure?: string;
  /** A round in secure sub-cohorts: each group, and why it was refused (the runner's SubCohortWatch learns from it). */
  subCohorts?: SubCohortOutcome[];
}

/** Raised to end the round as failed (not the experiment): the message says why. */
export class RoundFailure extends Error {}
