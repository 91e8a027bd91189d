/**
 * Plain release: the update is offered as a blob to the director only, and the result naming it is sent
 * until the director acknowledges (it fetches the update before it answers). A failed training still gets
 * a result, so the director drops this envoy at once instead of at the round's timeout.
 */
import { headerOf, kinds, type TrainResult, type TrainTask } from '../../core/messages.ts';
import { subjects } from '../../core/subjects.ts';
import { offerBlob } from '../../core/transport/blobs.ts';
import { encodeWeights } from '../../core/weights.ts';
import { DirectorRefused } from '../director-checks/index.ts';
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
      const rule = error instanceof DirectorRefused ? error.refusal.rule : undefined;
      if (!rule) log.error(`task failed: ${(error as Error).message}`);
      result = { ...headerOf(this.task), envoy: this.deps.envoy, ok: false, error: (error as Error).message, examples: 0, ...(rule ? { rule } : {}) };
    }
    try {
      return (await this.send(result)) && !!result.update;
    } finally {
      offered?.close();
    }
  }

  /** True when the director accepted the result (and so fetched the update it names). */
  private async send(result: TrainResult): Promise<boolean> {
    const { bus, director, log } = this.deps;
    const subject = subjects.results(bus.federation, this.task.experiment, this.task.run_id, this.deps.envoy);
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        const ack = await bus.request(kinds.result, subject, director, result, 120_000, 'sending the training result');
        if (!ack.accepted) log.warn(`director did not accept the result: ${ack.reason}`);
        return ack.accepted;
      } catch (error) {
        log.warn(`${(error as Error).message} (attempt ${attempt}/3)`);
      }
    }
    return false;
  }
}
