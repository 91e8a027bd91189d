/**
 * A startup kit: everything one participant needs to join its federation, in one folder that is copied to
 * the participant's machine. `secflow provision` writes it; every role loads it at start-up and refuses to
 * run from a kit whose private files others can read, whose roster is not signed by the federation's CA, or
 * whose keys are not the ones the roster lists for it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { NameSchema } from '../names.ts';
import { signingPrivateKeyFromPem, signingPublicKeyB64 } from './keys.ts';
import { ROLES, Roster, type Member, type Role } from './roster.ts';
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';

export const KIT_FILES = {
  manifest: 'kit.yaml',
  ca: 'ca.crt',
  certificate: 'tls.crt',
  tlsKey: 'tls.key',
  nkeySeed: 'nats.nk',
  signingKey: 'signing.key',
  sealingKey: 'sealing.key',
  roster: 'roster.json',
} as const;

/** Files that must be readable by their owner only (written 0600). */
export const PRIVATE_KIT_FILES = [KIT_FILES.tlsKey, KIT_FILES.nkeySeed, KIT_FILES.signingKey, KIT_FILES.sealingKey] as const;

export const KitManifestSchema = z.object({
  federation: NameSchema,
  name: NameSchema,
  role: z.enum(ROLES),
  nats_url: z.string().min(1).describe('the federation NATS server, tls://host:port'),
}).strict();
export type KitManifest = z.infer<typeof KitManifestSchema>;

export interface Kit {
  dir: string;
  manifest: KitManifest;
  paths: { ca: string; certificate: string; tlsKey: string; roster: string };
  caPem: string;
  nkeySeed: Uint8Array;
  signingKey: KeyObject;
  sealingKey: Uint8Array;
  roster: Roster;
  self: Member;
}

export class KitError extends Error {
  override name = 'KitError';
}

export function loadKit(dir: string): Kit {
  const root = resolve(dir);
  const file = (name: string) => join(root, name);
  if (!existsSync(file(KIT_FILES.manifest))) {
    throw new KitError(`${root} is not a startup kit (no ${KIT_FILES.manifest}); make kits with \`secflow provision --config federation.yaml --out kits/\``);
  }
  for (const name of Object.values(KIT_FILES)) {
    if (!existsSync(file(name))) throw new KitError(`startup kit ${root} lacks ${name}; provision the participant again`);
  }
  for (const name of PRIVATE_KIT_FILES) {
    const mode = statSync(file(name)).mode & 0o777;
    if (mode & 0o077) {
      throw new KitError(`${file(name)} is readable by others (mode ${mode.toString(8)}): a private key must be 0600 (chmod 600 ${file(name)})`);
    }
  }
  let manifest: KitManifest;
  try {
    manifest = KitManifestSchema.parse(parse(readFileSync(file(KIT_FILES.manifest), 'utf8')));
  } catch (error) {
    throw new KitError(`${file(KIT_FILES.manifest)} is invalid: ${(error as Error).message}`);
  }
  const caPem = readFileSync(file(KIT_FILES.ca), 'utf8');
  const roster = readRoster(file(KIT_FILES.roster), caPem);
  if (roster.federation !== manifest.federation) {
    throw new KitError(`the kit is for federation '${manifest.federation}' but its roster is for '${roster.federation}'`);
  }
  const self = roster.active(manifest.name);
  if (!self) {
    throw new KitError(roster.isRevoked(manifest.name) ? `${manifest.name} has been revoked from federation '${manifest.federation}'`
      : `${manifest.name} is not in the roster of federation '${manifest.federation}'`);
  }
  if (self.role !== manifest.role) throw new KitError(`the kit says ${manifest.name} is a ${manifest.role}, the roster a ${self.role}`);
  const signingKey = signingPrivateKeyFromPem(readFileSync(file(KIT_FILES.signingKey), 'utf8'));
  if (signingPublicKeyB64(signingKey) !== self.signing_key) throw new KitError(`the kit's signing key is not the one the roster lists for ${manifest.name}`);
  const certificate = new X509Certificate(readFileSync(file(KIT_FILES.certificate)));
  if (certificateSha256(certificate) !== self.certificate_sha256) throw new KitError(`the kit's TLS certificate is not the one the roster lists for ${manifest.name}`);
  const sealingKey = Buffer.from(readFileSync(file(KIT_FILES.sealingKey), 'utf8').trim(), 'base64');
  return {
    dir: root, manifest, caPem, roster, signingKey, sealingKey,
    self: roster.active(manifest.name)!,
    nkeySeed: new TextEncoder().encode(readFileSync(file(KIT_FILES.nkeySeed), 'utf8').trim()),
    paths: { ca: file(KIT_FILES.ca), certificate: file(KIT_FILES.certificate), tlsKey: file(KIT_FILES.tlsKey), roster: file(KIT_FILES.roster) },
  };
}

export function readRoster(path: string, caPem: string): Roster {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new KitError(`cannot read the roster ${path}: ${(error as Error).message}`);
  }
  try {
    return Roster.verify(raw, caPem, path);
  } catch (error) {
    throw new KitError((error as Error).message);
  }
}

export function certificateSha256(certificate: X509Certificate): string {
  return createHash('sha256').update(certificate.raw).digest('hex');
}

export type { Role };
