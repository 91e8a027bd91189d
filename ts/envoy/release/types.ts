/** What a release needs and what it is given: shared by the plain and the secure release. */
import type { Logger } from '../../core/log.ts';
import type { TrainResult } from '../../core/messages.ts';
import type { Bus } from '../../core/transport/bus.ts';
import type { FlatWeights } from '../../core/weights.ts';

export interface ReleaseDeps { bus: Bus; envoy: string; director: string; chunkBytes: number; log: Logger }

/** What local training hands over: the delta stays inside the release, the result (metrics only) may go out in the clear. */
export interface TrainedUpdate { delta: FlatWeights; result: TrainResult }

export interface Release {
  /** Trains (when the protocol is ready for it) and releases the update; true once the director accepted it. */
  run(train: () => Promise<TrainedUpdate>): Promise<boolean>;
}
