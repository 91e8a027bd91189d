import { connect, type NatsConnection } from 'nats';
import type { Logger } from '../log.ts';
import { INSECURE_WARNING, insecureTrust, secureTrust, type Trust } from '../trust/index.ts';
import { Bus } from './bus.ts';

export type { NatsConnection };

export interface Participant {
  url: string;
  /** The startup kit folder; absent only with `insecure`. */
  kit?: string;
  insecure?: boolean;
  /** Insecure mode only: who this participant says it is, and in which federation. */
  name?: string;
  federation?: string;
}

/** The participant's trust: from its kit, or (explicit opt-out) none, with the warning printed every time. */
export function trustFor(p: Participant, log: Logger): Trust {
  if (p.kit) return secureTrust(p.kit, log);
  if (!p.insecure || !p.name || !p.federation) throw new Error('no startup kit given: pass a kit (`secflow provision` makes them) or opt out with --insecure');
  process.stderr.write(`${INSECURE_WARNING}\n`);
  return insecureTrust(p.name, p.federation, log);
}

/** Connects a participant to its federation's bus, with a message saying which server could not be reached and why. */
export async function connectBus(p: Participant, connectionName: string, log: Logger): Promise<Bus> {
  const trust = trustFor(p, log);
  if (trust.secure && !/^tls:\/\//.test(p.url)) {
    throw new Error(`nats.url ${p.url} is not tls://: a kit connects over TLS only (the provisioned server refuses plaintext)`);
  }
  try {
    const nc = await connect({
      servers: p.url, name: connectionName, maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 5000,
      ...trust.connectOptions(),
    });
    return new Bus(nc, trust, log);
  } catch (error) {
    throw new Error(`cannot reach the NATS server at ${p.url} as ${trust.self} (${(error as Error).message}); ` +
      (trust.secure ? 'is it the federation\'s server, started with its provisioned config, and is this kit still valid?'
        : 'start one (e.g. `nats-server -a 127.0.0.1 -p 4222`) or set nats.url in the config'));
  }
}
