/** What a release needs and what it is given: shared by the plain and the secure release. */
import type { Logger } from '../../core/log.ts';
import type { TrainResult } from '../../core/messages.ts';
import type { Bus } from '../../core/transport/bus.ts';
import type { DirectorChecks } from '../director-checks/index.ts';
import type { FlatWeights } from '../../core/weights.ts';

export interface ReleaseDeps {
  bus: Bus; envoy: string; director: string; chunkBytes: number; log: Logger;
  /** The envoy's checks of its director (director-checks/): a secure round's cohort is checked at the keys. */
  checks: DirectorChecks;
  /** The privacy policy's fewest distinct hospitals in a secure sum. */
  minCohort: number;
}

/** The round's global model as received (and checked): its bytes' SHA-256 goes into the task digest. */
export interface ReceivedModel { weights: FlatWeights; sha256: string }

/** What local training hands over: the delta stays inside the release, the result (metrics only) may go out in the clear. */
export interface TrainedUpdate { delta: FlatWeights; result: TrainResult }

export interface Release {
  /**
   * Receives the model, trains on it (when the protocol is ready for it) and releases the update; true once
   * the director accepted it. `receive` raises DirectorRefused for a model the envoy's checks refuse.
   */
  run(receive: () => Promise<ReceivedModel>, train: (model: ReceivedModel) => Promise<TrainedUpdate>): Promise<boolean>;
}
