/**
 * The data scientist's side: submit an experiment to a running director and follow it round by round.
 */
import type { NatsConnection } from 'nats';
import type { ExperimentConfig } from '../core/config/experiment.ts';
import { decode, ExperimentEventSchema, SubmitExperimentSchema, SubmitReplySchema, type ExperimentEvent } from '../core/messages.ts';
import { subjects } from '../core/subjects.ts';
import { request } from '../core/transport/rpc.ts';

export interface FollowOptions {
  onEvent?: (event: ExperimentEvent) => void;
  /** Give up if the director says nothing for this long. */
  silenceTimeoutMs?: number;
}

/** Submits (or re-attaches to) an experiment and resolves with its final event: 'finished' or 'failed'. */
export async function runExperimentRemotely(nc: NatsConnection, federation: string, config: ExperimentConfig, options: FollowOptions = {}): Promise<ExperimentEvent> {
  // Subscribe before submitting: the first events may follow the reply immediately.
  const sub = nc.subscribe(subjects.events(federation, config.name));
  try {
    const reply = await request(nc, subjects.submit(federation), SubmitExperimentSchema, { config }, SubmitReplySchema, 15_000,
      `submitting experiment '${config.name}' to federation '${federation}'`);
    if (!reply.accepted) throw new Error(`the director refused experiment '${config.name}': ${reply.reason}`);
    return await follow(sub, options);
  } finally {
    sub.unsubscribe();
  }
}

async function follow(sub: AsyncIterable<{ data: Uint8Array }>, options: FollowOptions): Promise<ExperimentEvent> {
  const silence = options.silenceTimeoutMs ?? 60 * 60 * 1000;
  const iterator = sub[Symbol.asyncIterator]();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      iterator.next(),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the director sent nothing for ${silence / 1000} s`)), silence); }),
    ]).finally(() => clearTimeout(timer));
    if (next.done) throw new Error('the event stream closed before the experiment ended');
    const event = decode(ExperimentEventSchema, next.value.data, 'experiment event');
    options.onEvent?.(event);
    if (event.type === 'finished' || event.type === 'failed') return event;
  }
}
