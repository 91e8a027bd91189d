/**
 * Writing startup kits: one folder per participant, private files 0600 in a 0700 folder.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from 'nats';
import { stringify } from 'yaml';
import { certificateSha256, KIT_FILES, type KitManifest } from '../core/trust/kit.ts';
import { generateSealingKeyPair, generateSigningKeyPair, signingPrivateKeyToPem, signingPublicKeyB64 } from '../core/trust/keys.ts';
import type { Member, Role } from '../core/trust/index.ts';
import type { SignedRoster } from '../core/trust/roster.ts';
import { issueCertificate, type CertificateAuthority } from './certificates.ts';
import { X509Certificate } from 'node:crypto';

export function writePrivate(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data, { mode: 0o600 });
  chmodSync(path, 0o600); // writeFileSync keeps the mode of a file that already existed
}

export function writePublic(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data, { mode: 0o644 });
}

export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** A participant's fresh keys and certificate: what its kit holds, and the member entry the roster lists. */
export interface NewParticipant { member: Member; secrets: Record<string, string> }

export async function newParticipant(ca: CertificateAuthority, federation: string, name: string, role: Role, days: number,
  extra: Partial<Pick<Member, 'max_examples'>> = {}): Promise<NewParticipant> {
  const tls = await issueCertificate({ ca, commonName: name, organizationalUnit: `${role} of ${federation}`, days });
  const user = nkeys.createUser();
  const signing = generateSigningKeyPair();
  const sealing = await generateSealingKeyPair();
  return {
    member: {
      name, role, nkey: user.getPublicKey(),
      signing_key: signingPublicKeyB64(signing.publicKey),
      sealing_key: Buffer.from(sealing.publicKey).toString('base64'),
      certificate_sha256: certificateSha256(new X509Certificate(tls.certificatePem)),
      ...extra,
    },
    secrets: {
      [KIT_FILES.certificate]: tls.certificatePem,
      [KIT_FILES.tlsKey]: tls.privateKeyPem,
      [KIT_FILES.nkeySeed]: `${new TextDecoder().decode(user.getSeed())}\n`,
      [KIT_FILES.signingKey]: signingPrivateKeyToPem(signing.privateKey),
      [KIT_FILES.sealingKey]: `${Buffer.from(sealing.privateKey).toString('base64')}\n`,
    },
  };
}

export interface KitWrite {
  dir: string;
  manifest: KitManifest;
  caPem: string;
  participant: NewParticipant;
  roster: SignedRoster;
  /** The role's ready config (director.yaml, envoy.yaml), with a header comment. */
  roleConfig?: { file: string; header: string; value: unknown };
}

export function writeKit(k: KitWrite): void {
  makePrivateDir(k.dir);
  for (const [file, content] of Object.entries(k.participant.secrets)) {
    (file === KIT_FILES.certificate ? writePublic : writePrivate)(join(k.dir, file), content);
  }
  writePublic(join(k.dir, KIT_FILES.ca), k.caPem);
  writePublic(join(k.dir, KIT_FILES.manifest), `# Startup kit of ${k.manifest.name} (${k.manifest.role}) in federation '${k.manifest.federation}'.\n` +
    '# Keep this folder private: it holds this participant\'s keys. Copy it as a whole to its machine.\n' + stringify(k.manifest));
  writeRosterInto(k.dir, k.roster);
  if (k.roleConfig) writePublic(join(k.dir, k.roleConfig.file), k.roleConfig.header + stringify(k.roleConfig.value));
}

export function writeRosterInto(dir: string, roster: SignedRoster): void {
  if (!existsSync(dir)) return;
  writePublic(join(dir, KIT_FILES.roster), `${JSON.stringify(roster, null, 2)}\n`);
}
