/**
 * A throw-away secured federation on this machine: provisioned into `<dir>/kits/` (CA, server and
 * participant kits), with its own nats-server on a free loopback port running the provisioned config (TLS
 * verified both ways, one nkey user per participant, per-identity permissions). The demo, the tests and the
 * audit sweep run on it, so the protected federation is the one everybody exercises.
 */
import { join } from 'node:path';
import { provisionFederation, type Provisioned } from '../provision/provisioner.ts';
import { SERVER_FILES } from '../provision/nats-config.ts';
import { freePort, startNatsServer, type LocalNats } from './nats-server.ts';

export const LOCAL_SCIENTIST = 'scientist';
export const LOCAL_DIRECTOR = 'director';

export interface LocalSecureFederation { provisioned: Provisioned; nats: LocalNats }

export interface ProvisionLocalOptions {
  dir: string;
  federation: string;
  envoys: string[];
  /** Extra data scientists beside `scientist`. */
  scientists?: string[];
  /** Testing only: a server without subject permissions, as a misconfigured one would be. */
  withoutPermissions?: boolean;
  maxPayload?: number;
  /** What each hospital may claim to train on (the roster's max_examples), as a provisioner would write down. */
  maxExamples?: Record<string, number>;
}

export async function provisionLocalFederation(o: ProvisionLocalOptions): Promise<LocalSecureFederation> {
  const port = await freePort();
  const provisioned = await provisionFederation({
    federation: o.federation,
    nats: { url: `tls://127.0.0.1:${port}`, listen: `127.0.0.1:${port}`, hosts: ['127.0.0.1', 'localhost'], max_payload: o.maxPayload },
    director: { name: LOCAL_DIRECTOR, workspace: 'runs' },
    envoys: o.envoys.map((name) => ({ name, ...(o.maxExamples?.[name] ? { max_examples: o.maxExamples[name] } : {}) })),
    scientists: [LOCAL_SCIENTIST, ...(o.scientists ?? [])].map((name) => ({ name })),
    validity_days: 30,
  }, join(o.dir, 'kits'), { withoutPermissions: o.withoutPermissions });
  const nats = await startNatsServer(join(provisioned.natsServerDir, SERVER_FILES.config), provisioned.natsServerDir, port, provisioned.natsUrl);
  return { provisioned, nats };
}
