/**
 * The data scientist's side: submit an experiment to a running director and follow it round by round.
 * Events arrive on this scientist's own subject, sealed to it; nobody else can read or forge them.
 */
import type { ExperimentConfig } from '../core/config/experiment.ts';
import { kinds, type ExperimentEvent } from '../core/messages.ts';
import { subjects } from '../core/subjects.ts';
import type { Bus } from '../core/transport/bus.ts';

export interface FollowOptions {
  onEvent?: (event: ExperimentEvent) => void;
  /** Give up if the director says nothing for this long. */
  silenceTimeoutMs?: number;
}

/** Submits (or re-attaches to) an experiment and resolves with its final event: 'finished' or 'failed'. */
export async function runExperimentRemotely(bus: Bus, config: ExperimentConfig, options: FollowOptions = {}): Promise<ExperimentEvent> {
  const federation = bus.federation;
  // Subscribe before submitting: the first events may follow the reply immediately.
  const events = bus.subscribe(kinds.event, subjects.events(federation, config.name, bus.self));
  try {
    await bus.flush();
    const reply = await bus.request(kinds.submit, subjects.submit(federation, bus.self), bus.trust.director(), { config }, 15_000,
      `submitting experiment '${config.name}' to federation '${federation}'`);
    if (!reply.accepted) throw new Error(`the director refused experiment '${config.name}': ${reply.reason}`);
    return await follow(events, config.name, options);
  } finally {
    events.unsubscribe();
  }
}

async function follow(events: AsyncIterable<ExperimentEvent>, experiment: string, options: FollowOptions): Promise<ExperimentEvent> {
  const silence = options.silenceTimeoutMs ?? 60 * 60 * 1000;
  const iterator = events[Symbol.asyncIterator]();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      iterator.next(),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the director sent nothing for ${silence / 1000} s`)), silence); }),
    ]).finally(() => clearTimeout(timer));
    if (next.done) throw new Error('the event stream closed before the experiment ended');
    const event = next.value;
    if (event.experiment !== experiment) continue;
    options.onEvent?.(event);
    if (event.type === 'finished' || event.type === 'failed') return event;
  }
}
