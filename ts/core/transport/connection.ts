import { connect, type NatsConnection } from 'nats';

export type { NatsConnection };

/** Connect with a message that says which server could not be reached and what to do about it. */
export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 5000,
    });
  } catch (error) {
    throw new Error(`cannot reach the NATS server at ${url} (${(error as Error).message}); ` +
      'start one (e.g. `nats-server -a 127.0.0.1 -p 4222`) or set nats.url in the config');
  }
}
