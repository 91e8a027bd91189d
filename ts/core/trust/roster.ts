/**
 * The roster: who belongs to a federation, in which role, with which public keys. `secflow provision`
 * writes it and signs it with the federation's CA key; every participant checks that signature against the
 * CA certificate in its kit before believing a single entry, so a roster edited on disk is refused.
 * Adding or revoking a participant issues a new roster with a higher version.
 */
import { createPrivateKey, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { NameSchema } from '../names.ts';
import { signingPublicKeyFromB64, type SigningKeyPair } from './keys.ts';
import { SealingPublicKey } from './sealing.ts';

export const ROLES = ['director', 'envoy', 'scientist'] as const;
export type Role = (typeof ROLES)[number];

const Base64Key = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'base64 of 32 bytes');

export const MemberSchema = z.object({
  name: NameSchema,
  role: z.enum(ROLES),
  signing_key: Base64Key.describe('Ed25519 public key: verifies this member\'s messages'),
  sealing_key: Base64Key.describe('X25519 public key: payloads for this member are sealed to it'),
  nkey: z.string().regex(/^U[A-Z2-7]{55}$/, 'a NATS user nkey').describe('its NATS user (the server config grants it its permissions)'),
  certificate_sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('fingerprint of its TLS client certificate'),
  max_examples: z.number().int().positive().optional().describe('envoys: the most training examples it may claim per update'),
  revoked_at: z.string().optional().describe('set when the member was revoked; it is refused from then on'),
}).strict();
export type Member = z.infer<typeof MemberSchema>;

export const RosterBodySchema = z.object({
  federation: NameSchema,
  version: z.number().int().positive(),
  issued_at: z.string(),
  members: z.array(MemberSchema),
}).strict();
export type RosterBody = z.infer<typeof RosterBodySchema>;

export const SignedRosterSchema = z.object({
  roster: RosterBodySchema,
  /** ECDSA P-256 / SHA-256 by the federation CA over canonicalJson(roster), base64 DER. */
  signature: z.string().min(1),
}).strict();
export type SignedRoster = z.infer<typeof SignedRosterSchema>;

/** JSON with object keys sorted at every level: the bytes a roster signature covers. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function signRoster(body: RosterBody, caPrivateKeyPem: string): SignedRoster {
  const signature = sign('sha256', Buffer.from(canonicalJson(body)), createPrivateKey(caPrivateKeyPem)).toString('base64');
  return { roster: body, signature };
}

/** A verified roster, with each member's keys parsed once. */
export class Roster {
  private readonly byName = new Map<string, { member: Member; signing: KeyObject; sealing: SealingPublicKey }>();

  private constructor(readonly body: RosterBody) {
    for (const member of body.members) {
      if (this.byName.has(member.name)) throw new Error(`roster lists ${member.name} twice`);
      this.byName.set(member.name, {
        member, signing: signingPublicKeyFromB64(member.signing_key), sealing: new SealingPublicKey(Buffer.from(member.sealing_key, 'base64')),
      });
    }
  }

  /** Parses and verifies a roster against the federation's CA certificate (PEM); throws naming the problem. */
  static verify(raw: unknown, caCertificatePem: string, where = 'roster'): Roster {
    const parsed = SignedRosterSchema.safeParse(raw);
    if (!parsed.success) throw new Error(`${where} is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const ca = new X509Certificate(caCertificatePem);
    const ok = verify('sha256', Buffer.from(canonicalJson(parsed.data.roster)), ca.publicKey, Buffer.from(parsed.data.signature, 'base64'));
    if (!ok) throw new Error(`${where} is not signed by this federation's CA (${ca.subject.replace(/\n/g, ', ')}): refused`);
    return new Roster(parsed.data.roster);
  }

  get federation(): string { return this.body.federation; }
  get version(): number { return this.body.version; }

  /** A member that is not revoked, or undefined. */
  active(name: string): (Member & { signingKey: KeyObject; sealingKey: SealingPublicKey }) | undefined {
    const entry = this.byName.get(name);
    if (!entry || entry.member.revoked_at) return undefined;
    return { ...entry.member, signingKey: entry.signing, sealingKey: entry.sealing };
  }

  isRevoked(name: string): boolean {
    return !!this.byName.get(name)?.member.revoked_at;
  }

  members(role?: Role): Member[] {
    return this.body.members.filter((m) => !m.revoked_at && (!role || m.role === role));
  }
}

export type { SigningKeyPair };
