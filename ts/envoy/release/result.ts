/** Sending a result to the director (acknowledged, retried), and the result that says a task failed. */
import { headerOf, kinds, type TrainResult, type TrainTask } from '../../core/messages.ts';
import { subjects } from '../../core/subjects.ts';
import { DirectorRefused } from '../director-checks/index.ts';
import type { ReleaseDeps } from './types.ts';

/** True when the director accepted the result (and so fetched any update it names). */
export async function sendResult(deps: Pick<ReleaseDeps, 'bus' | 'director' | 'envoy' | 'log'>, task: TrainTask, result: TrainResult): Promise<boolean> {
  const { bus, director, log } = deps;
  const subject = subjects.results(bus.federation, task.experiment, task.run_id, deps.envoy);
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const ack = await bus.request(kinds.result, subject, director, result, 120_000, 'sending the result');
      if (!ack.accepted) log.warn(`director did not accept the result: ${ack.reason}`);
      return ack.accepted;
    } catch (error) {
      log.warn(`${(error as Error).message} (attempt ${attempt}/3)`);
    }
  }
  return false;
}

/** The result of a task that failed or was refused (a refusal of the director names its rule). */
export function failedResult(task: TrainTask, envoy: string, error: Error): TrainResult {
  const rule = error instanceof DirectorRefused ? error.refusal.rule : undefined;
  return { ...headerOf(task), envoy, ok: false, error: error.message, examples: 0, ...(rule ? { rule } : {}) };
}
