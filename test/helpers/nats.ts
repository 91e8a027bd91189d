import type { ExecutionContext } from 'ava';
import { startLocalNats, type LocalNats } from '../../ts/local/nats-server.ts';

/** A real nats-server on a free loopback port, stopped when the test file ends. */
export async function natsForTests(options: { maxPayload?: number } = {}): Promise<LocalNats> {
  return startLocalNats(options);
}

export type { LocalNats, ExecutionContext };
