/**
 * What an envoy checks of its director before anything derived from its data leaves (a director that
 * cheats is in the threat model): the cohort is distinct provisioned hospitals, every hospital of a secure
 * round holds the same task (signed digests), the model is the experiment's own initial model or reachable
 * from the last one, and no image of this hospital's dominates its dense layers' gradient (crafted weights).
 * Each failed check is a refusal naming its rule, like the privacy policy's.
 */
import type { TrainTask } from '../../core/messages.ts';
import type { Trust } from '../../core/trust/index.ts';
import type { FlatWeights } from '../../core/weights.ts';
import type { ImageDataset } from '../../core/data/dataset.ts';
import type { LayersModel } from '../../core/model-types.ts';
import { craftedWeightsProblem } from './crafted-weights.ts';
import { cohortMembersProblem, keysProblem, type DirectorRefusal, type KeysCheck } from './cohort.ts';
import { Trajectory } from './trajectory.ts';

export type { DirectorRefusal, KeysCheck } from './cohort.ts';
export { CHECK_BATCH } from './crafted-weights.ts';

export class DirectorChecks {
  private readonly trajectory: Trajectory;

  /** `modelsDir`: where the last model of each experiment is kept across restarts (beside the privacy ledger). */
  constructor(private readonly trust: Trust, private readonly self: string, modelsDir?: string) {
    this.trajectory = new Trajectory(modelsDir);
  }

  /** At the task, before it is accepted. */
  taskProblem(task: TrainTask): DirectorRefusal | undefined {
    return task.secagg ? cohortMembersProblem(task.secagg, this.trust, this.self) : undefined;
  }

  /** Once the global model arrived, before training on it. */
  modelProblem(task: TrainTask, global: FlatWeights): DirectorRefusal | undefined {
    return this.trajectory.problem(task, global);
  }

  /**
   * Once the model is loaded, before training on it: a model whose dense layers' gradient on this hospital's
   * own images is dominated by single images (crafted-weights.ts) is refused.
   */
  craftedWeightsProblem(task: TrainTask, model: LayersModel, batch: ImageDataset): DirectorRefusal | undefined {
    return craftedWeightsProblem(model, batch, task);
  }

  /** The model was trained on: later rounds must be reachable from it. */
  trained(task: TrainTask, global: FlatWeights): void {
    this.trajectory.record(task, global);
  }

  /** At the secure round's keys, before sharing keys (and so before any masked update). */
  keysProblem(check: Omit<KeysCheck, 'trust' | 'self'>): DirectorRefusal | undefined {
    return keysProblem({ ...check, trust: this.trust, self: this.self });
  }
}

/** Raised where the envoy stops a task because of a check above: the release reports the rule. */
export class DirectorRefused extends Error {
  constructor(readonly refusal: DirectorRefusal) {
    super(`refused by ${refusal.rule}: ${refusal.reason}`);
  }
}
