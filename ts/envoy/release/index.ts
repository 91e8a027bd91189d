/**
 * How a trained update leaves the envoy: in the clear to the director (plain.ts), or only masked through the
 * secure-aggregation stages (secure.ts), like a client mod wrapped around the one training step. The task
 * says which; training itself is the same either way and runs when the release asks for it.
 */
import type { TrainTask } from '../../core/messages.ts';
import { PlainRelease } from './plain.ts';
import { SecureRelease } from './secure.ts';
import type { ReleaseDeps } from './types.ts';

export type { ReceivedModel, Release, ReleaseDeps, TrainedUpdate } from './types.ts';

export function releaseFor(task: TrainTask, deps: ReleaseDeps): PlainRelease | SecureRelease {
  return task.secagg ? new SecureRelease(deps, task) : new PlainRelease(deps, task);
}

export { PlainRelease, SecureRelease };
