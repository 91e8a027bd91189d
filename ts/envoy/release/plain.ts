/**
 * Plain release: the update is offered as a blob to the director only, and the result naming it is sent
 * until the director acknowledges (it fetches the update before it answers). A failed training still gets
 * a result, so the director drops this envoy at once instead of at the round's timeout.
 */
import type { TrainResult, TrainTask } from '../../core/messages.ts';
import { offerBlob } from '../../core/transport/blobs.ts';
import { encodeWeights } from '../../core/weights.ts';
import { DirectorRefused } from '../director-checks/index.ts';
import { failedResult, sendResult } from './result.ts';
import type { ReceivedModel, Release, ReleaseDeps, TrainedUpdate } from './types.ts';

export class PlainRelease implements Release {
  constructor(private readonly deps: ReleaseDeps, private readonly task: TrainTask) {}

  async run(receive: () => Promise<ReceivedModel>, train: (model: ReceivedModel) => Promise<TrainedUpdate>): Promise<boolean> {
    const { bus, director, log } = this.deps;
    let result: TrainResult;
    let offered: ReturnType<typeof offerBlob> | undefined;
    try {
      const trained = await train(await receive());
      offered = offerBlob(bus, encodeWeights(trained.delta), [director], this.deps.chunkBytes);
      result = { ...trained.result, update: offered.refFor(director) };
    } catch (error) {
      if (!(error instanceof DirectorRefused)) log.error(`task failed: ${(error as Error).message}`);
      result = failedResult(this.task, this.deps.envoy, error as Error);
    }
    try {
      return (await sendResult(this.deps, this.task, result)) && !!result.update;
    } finally {
      offered?.close();
    }
  }
}
