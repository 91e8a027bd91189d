/**
 * `secflow provision`: a federation's identities from one federation.yaml, and later changes to them.
 *
 *   out/provisioner/   the CA key and the provisioner's state: stays with whoever provisions, never copied out
 *   out/nats-server/   server certificate and key, CA, nats-server.conf (TLS verify, one user per participant)
 *   out/<name>/        one startup kit per participant, copied as a whole to its machine
 *
 * `addEnvoy` and `revoke` issue a new roster version (signed by the CA) into every kit folder present and
 * rewrite the server config; nobody else's keys change.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import type { DataSource } from '../core/config/data-source.ts';
import { resolveSourcePaths } from '../core/config/data-source.ts';
import { checkName } from '../core/names.ts';
import { KIT_FILES } from '../core/trust/kit.ts';
import type { Member, Role } from '../core/trust/index.ts';
import { RosterBodySchema, signRoster, type RosterBody } from '../core/trust/roster.ts';
import { createCertificateAuthority, issueCertificate, type CertificateAuthority } from './certificates.ts';
import { FederationSchema, urlHostPort, type EnvoyEntry, type FederationConfig } from './federation-config.ts';
import { makePrivateDir, newParticipant, writeKit, writePrivate, writePublic, writeRosterInto, type NewParticipant } from './kits.ts';
import { natsServerConfig, SERVER_FILES } from './nats-config.ts';

export const PROVISIONER_DIR = 'provisioner';
export const NATS_SERVER_DIR = 'nats-server';

const StateSchema = z.object({ federation: FederationSchema, roster: RosterBodySchema, without_permissions: z.boolean().default(false) }).strict();
type State = z.infer<typeof StateSchema>;

export interface Provisioned {
  out: string;
  federation: string;
  natsUrl: string;
  natsServerDir: string;
  rosterVersion: number;
  /** Kit folder per participant name. */
  kits: Record<string, string>;
}

export interface ProvisionOptions {
  /** Where relative data paths in federation.yaml are relative to (its folder). */
  configDir?: string;
  /** Testing only: a server config without subject permissions (see nats-config.ts). */
  withoutPermissions?: boolean;
}

export async function provisionFederation(raw: FederationConfig, outDir: string, options: ProvisionOptions = {}): Promise<Provisioned> {
  const config = FederationSchema.parse(raw);
  const out = resolve(outDir);
  if (existsSync(join(out, PROVISIONER_DIR))) {
    throw new Error(`${out} already holds a provisioned federation: add or revoke participants with \`secflow provision add-envoy\` / \`revoke\`, or choose another --out`);
  }
  makePrivateDir(join(out, PROVISIONER_DIR));
  const ca = await createCertificateAuthority(config.federation, config.validity_days);
  writePrivate(join(out, PROVISIONER_DIR, 'ca.key'), ca.privateKeyPem);
  writePublic(join(out, PROVISIONER_DIR, 'ca.crt'), ca.certificatePem);

  const fed = withAbsoluteDataPaths(config, options.configDir ?? process.cwd());
  const participants: [NewParticipant, EnvoyEntry | undefined][] = [];
  const add = async (name: string, role: Role, entry?: EnvoyEntry) => {
    participants.push([await newParticipant(ca, fed.federation, name, role, fed.validity_days, entry?.max_examples ? { max_examples: entry.max_examples } : {}), entry]);
  };
  await add(fed.director.name, 'director');
  for (const envoy of fed.envoys) await add(envoy.name, 'envoy', envoy);
  for (const scientist of fed.scientists) await add(scientist.name, 'scientist');

  const roster: RosterBody = { federation: fed.federation, version: 1, issued_at: new Date().toISOString(), members: participants.map(([p]) => p.member) };
  const state: State = { federation: fed, roster, without_permissions: !!options.withoutPermissions };
  const signed = signRoster(roster, ca.privateKeyPem);
  for (const [participant, entry] of participants) {
    writeKit({
      dir: join(out, participant.member.name), caPem: ca.certificatePem, participant, roster: signed,
      manifest: { federation: fed.federation, name: participant.member.name, role: participant.member.role, nats_url: fed.nats.url },
      roleConfig: roleConfigFor(fed, participant.member, entry),
    });
  }
  await writeNatsServerKit(out, ca, state);
  saveState(out, state);
  return describe(out, state);
}

/** A new hospital: its kit, a roster with it, a server config with its user. No other key changes. */
export async function addEnvoy(outDir: string, entry: EnvoyEntry): Promise<Provisioned> {
  const out = resolve(outDir);
  const { state, ca } = loadProvisioner(out);
  checkName(entry.name, 'envoy name');
  if (state.roster.members.some((m) => m.name === entry.name)) throw new Error(`${entry.name} is already in federation '${state.federation.federation}' (revoked names stay taken)`);
  const participant = await newParticipant(ca, state.federation.federation, entry.name, 'envoy', state.federation.validity_days,
    entry.max_examples ? { max_examples: entry.max_examples } : {});
  state.federation.envoys.push(entry);
  state.roster = nextRoster(state.roster, [...state.roster.members, participant.member]);
  const signed = signRoster(state.roster, ca.privateKeyPem);
  writeKit({
    dir: join(out, entry.name), caPem: ca.certificatePem, participant, roster: signed,
    manifest: { federation: state.federation.federation, name: entry.name, role: 'envoy', nats_url: state.federation.nats.url },
    roleConfig: roleConfigFor(state.federation, participant.member, entry),
  });
  publishRoster(out, state, ca);
  return describe(out, state);
}

/** Takes a participant out: the roster marks it revoked, the server config drops its user. */
export async function revoke(outDir: string, name: string): Promise<Provisioned> {
  const out = resolve(outDir);
  const { state, ca } = loadProvisioner(out);
  const member = state.roster.members.find((m) => m.name === name);
  if (!member) throw new Error(`${name} is not a member of federation '${state.federation.federation}'`);
  if (member.revoked_at) throw new Error(`${name} was already revoked at ${member.revoked_at}`);
  if (member.role === 'director') throw new Error('the director cannot be revoked: provision a new federation instead');
  state.roster = nextRoster(state.roster, state.roster.members.map((m) => (m.name === name ? { ...m, revoked_at: new Date().toISOString() } : m)));
  publishRoster(out, state, ca);
  return describe(out, state);
}

function nextRoster(previous: RosterBody, members: Member[]): RosterBody {
  return { ...previous, version: previous.version + 1, issued_at: new Date().toISOString(), members };
}

/** The new roster into every kit folder here (the director's picks it up while running) and the server config. */
function publishRoster(out: string, state: State, ca: CertificateAuthority): void {
  const signed = signRoster(state.roster, ca.privateKeyPem);
  for (const member of state.roster.members) writeRosterInto(join(out, member.name), signed);
  writeServerConfig(out, state);
  saveState(out, state);
}

async function writeNatsServerKit(out: string, ca: CertificateAuthority, state: State): Promise<void> {
  const dir = join(out, NATS_SERVER_DIR);
  makePrivateDir(dir);
  const { host } = urlHostPort(state.federation.nats.url);
  const hosts = [...new Set(state.federation.nats.hosts ?? [host, 'localhost', '127.0.0.1'])];
  const server = await issueCertificate({ ca, commonName: `nats.${state.federation.federation}`, organizationalUnit: 'NATS server', days: state.federation.validity_days, hosts });
  writePublic(join(dir, SERVER_FILES.certificate), server.certificatePem);
  writePrivate(join(dir, SERVER_FILES.key), server.privateKeyPem);
  writePublic(join(dir, SERVER_FILES.ca), ca.certificatePem);
  writeServerConfig(out, state);
}

function writeServerConfig(out: string, state: State): void {
  const { host, port } = urlHostPort(state.federation.nats.url);
  const text = natsServerConfig({
    federation: state.federation.federation, listen: state.federation.nats.listen ?? `${host}:${port}`,
    maxPayload: state.federation.nats.max_payload, rosterVersion: state.roster.version, withoutPermissions: state.without_permissions,
  }, state.roster.members);
  writePublic(join(out, NATS_SERVER_DIR, SERVER_FILES.config), text);
}

function loadProvisioner(out: string): { state: State; ca: CertificateAuthority } {
  const dir = join(out, PROVISIONER_DIR);
  if (!existsSync(join(dir, 'state.json'))) throw new Error(`${out} holds no provisioned federation (no ${PROVISIONER_DIR}/state.json); run \`secflow provision --config federation.yaml --out ${out}\` first`);
  const state = StateSchema.parse(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')));
  const ca = { subject: '', certificatePem: readFileSync(join(dir, 'ca.crt'), 'utf8'), privateKeyPem: readFileSync(join(dir, 'ca.key'), 'utf8') };
  return { state, ca };
}

function saveState(out: string, state: State): void {
  writePrivate(join(out, PROVISIONER_DIR, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
}

function describe(out: string, state: State): Provisioned {
  const kits: Record<string, string> = {};
  for (const m of state.roster.members) if (!m.revoked_at) kits[m.name] = join(out, m.name);
  return { out, federation: state.federation.federation, natsUrl: state.federation.nats.url, natsServerDir: join(out, NATS_SERVER_DIR), rosterVersion: state.roster.version, kits };
}

/** Data paths in federation.yaml are relative to it; the kits' configs live elsewhere, so they get absolute ones. */
function withAbsoluteDataPaths(config: FederationConfig, configDir: string): FederationConfig {
  const fix = (s: DataSource) => resolveSourcePaths(s, join(configDir, 'federation.yaml'));
  return {
    ...config,
    director: { ...config.director, workspace: isAbsolute(config.director.workspace) ? config.director.workspace : config.director.workspace, test_data: config.director.test_data && fix(config.director.test_data) },
    envoys: config.envoys.map((e) => (e.shard ? { ...e, shard: { ...e.shard, train: fix(e.shard.train), val: e.shard.val && fix(e.shard.val) } } : e)),
  };
}

const PLACEHOLDER_SHARD = { description: 'this hospital\'s chest X-rays', train: { kind: 'xray_folder', root: 'REPLACE-WITH-THE-PATH-TO-YOUR-TRAINING-IMAGES' } };

function roleConfigFor(fed: FederationConfig, member: Member, entry?: EnvoyEntry) {
  const common = { federation: fed.federation, kit: '.', nats: { url: fed.nats.url } };
  if (member.role === 'director') {
    return {
      file: 'director.yaml',
      header: `# director.yaml of federation '${fed.federation}': npx secflow director start --config director.yaml\n`,
      value: { ...common, workspace: fed.director.workspace, ...(fed.director.test_data ? { test_data: fed.director.test_data } : {}), ...(fed.director.heartbeat ? { heartbeat: fed.director.heartbeat } : {}) },
    };
  }
  if (member.role === 'envoy') {
    return {
      file: 'envoy.yaml',
      header: `# envoy.yaml of ${member.name} in federation '${fed.federation}': npx secflow envoy start --config envoy.yaml\n` +
        (entry?.shard ? '' : '# Fill in shard: where this hospital keeps its images (README, "Data sources").\n'),
      value: { name: member.name, ...common, shard: entry?.shard ?? { ...PLACEHOLDER_SHARD, description: entry?.description ?? PLACEHOLDER_SHARD.description }, ...(fed.director.heartbeat ? { heartbeat: fed.director.heartbeat } : {}) },
    };
  }
  return undefined;
}

export function listKits(out: string): string[] {
  return readdirSync(out).filter((d) => existsSync(join(out, d, KIT_FILES.manifest)));
}
