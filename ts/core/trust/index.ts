/**
 * The trust boundary, entered through one interface. A role holds a `Trust` and asks it two things: wrap
 * what I send (sign it, seal it to its receiver), and open what I received (who really sent it, was it
 * meant for me, on this subject, once, and is the sender allowed to send it). Everything else (kits,
 * rosters, keys, HPKE, replay windows) stays behind this file.
 *
 * `secureTrust(kit)` is the default. `insecureTrust(...)` exists for explicit opt-outs (`--insecure`,
 * `insecure: true`): the same envelopes, unsigned and unsealed, whose claimed sender is believed.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { nkeyAuthenticator, type ConnectionOptions } from 'nats';
import type { Logger } from '../log.ts';
import { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION, headerBytes, signedBytes, type Envelope, type EnvelopeHeader } from './envelope.ts';
import { loadKit, readRoster, type Kit } from './kit.ts';
import { signBytes, verifyBytes } from './keys.ts';
import { Rejections } from './rejections.ts';
import { SenderRateLimit } from './rate-limit.ts';
import { ReplayGuard } from './replay.ts';
import type { Member, Role, Roster } from './roster.ts';
import { SealingPrivateKey } from './sealing.ts';

export type { Role, Member } from './roster.ts';
export { ROLES } from './roster.ts';
export { KitError, loadKit, type Kit } from './kit.ts';

export interface Peer { name: string; role?: Role; verified: boolean }

export interface Outgoing {
  subject: string;
  kind: string;
  to?: string;
  /** Replies: the request's nonce. */
  re?: Uint8Array;
  /** Default true when `to` is set: seal the body to the receiver. Error replies go unsealed. */
  seal?: boolean;
}

export interface Expectation {
  kinds: readonly string[];
  /** Roles allowed to send this; default any member. */
  from?: readonly Role[];
  /** The one sender expected (a reply comes from whom the request went to). */
  fromName?: string;
  /** Replies: the nonce of the request they answer. */
  re?: Uint8Array;
  /** Whether the payload must arrive sealed (default true); chunk requests are not. */
  sealed?: boolean;
  /** Kinds among `kinds` that may arrive unsealed (error replies). */
  unsealedKinds?: readonly string[];
}

export interface Opened { sender: Peer; kind: string; body: Uint8Array; nonce: Uint8Array }

/** A refused message: `reason` is short and stable (counted, shown in status); `claimed` is the unverified sender. */
export class TrustError extends Error {
  override name = 'TrustError';
  constructor(readonly reason: string, readonly claimed: string, detail?: string) {
    super(detail ? `${reason}: ${detail}` : reason);
  }
}

export interface Trust {
  readonly self: string;
  readonly role?: Role;
  readonly federation: string;
  readonly secure: boolean;
  readonly rejections: Rejections;
  connectOptions(): Partial<ConnectionOptions>;
  wrap(out: Outgoing, body: Uint8Array): Promise<{ bytes: Uint8Array; nonce: Uint8Array }>;
  /** `receivedOn` is the subject the message arrived on (empty for a reply). Throws TrustError. */
  open(bytes: Uint8Array, expect: Expectation, receivedOn: string): Promise<Opened>;
  /** The roster entry of an active member (undefined when unknown, revoked, or insecure). */
  member(name: string): Member | undefined;
  /** Whether `name` may take part as `role`: an active roster member in that role; insecure: anyone. */
  admits(name: string, role: Role): boolean;
  /** Active members of a role (insecure: none known). */
  members(role: Role): Member[];
  /** The federation director's name: whom envoys and data scientists address, and whose tasks envoys obey. */
  director(): string;
  /** One line for the start-up log: what protects this participant's traffic. */
  describe(): string;
  /**
   * Signs a statement other members check without the bus in between (a secure-aggregation advertisement
   * relayed by the director, say); domain-separated from message signatures. Insecure: empty.
   */
  attest(statement: Uint8Array): Uint8Array;
  /** Whether `signature` is `name`'s attestation of `statement`, `name` an active member in `role`. Insecure: false. */
  verifyAttestation(name: string, role: Role, statement: Uint8Array, signature: Uint8Array): boolean;
}

/** What an attestation signs: never the bytes of a message envelope, whatever the statement. */
function attestationBytes(federation: string, statement: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`FL-SecFlow attestation v1\0${federation}\0`), statement]);
}

/** The director's name where there is no roster (insecure mode). */
export const INSECURE_DIRECTOR_NAME = 'director';

function headerOf(e: Envelope): EnvelopeHeader {
  return { federation: e.federation, from: e.from, to: e.to, subject: e.subject, kind: e.kind, nonce: e.nonce, ts: e.ts, re: e.re };
}

function sameBytes(a?: Uint8Array, b?: Uint8Array): boolean {
  return !!a && !!b && a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

/** Checks every receiver makes, secure or not: kind, subject, reply binding, expected sender. */
function checkAddressing(e: Envelope, expect: Expectation, receivedOn: string, claimed: string): void {
  if (!expect.kinds.includes(e.kind)) throw new TrustError('unexpected kind', claimed, `${e.kind.slice(0, 40)} where ${expect.kinds.join(' or ')} was expected`);
  if (expect.re) {
    if (!sameBytes(e.re, expect.re)) throw new TrustError('reply to another request', claimed);
  } else if (e.subject !== receivedOn) {
    throw new TrustError('moved to another subject', claimed, `signed for ${e.subject.slice(0, 120)}`);
  }
  if (expect.fromName && e.from !== expect.fromName) throw new TrustError('not from the expected sender', claimed, `expected ${expect.fromName}`);
}

class SecureTrust implements Trust {
  readonly secure = true;
  readonly rejections: Rejections;
  private roster: Roster;
  private rosterCheckedAt = 0;
  private rosterMtime: number;
  private readonly replay = new ReplayGuard();
  private readonly rate = new SenderRateLimit();
  private readonly sealing: SealingPrivateKey;

  constructor(private readonly kit: Kit, log: Logger) {
    this.roster = kit.roster;
    this.rosterMtime = statSync(kit.paths.roster).mtimeMs;
    this.sealing = new SealingPrivateKey(kit.sealingKey);
    this.rejections = new Rejections(log);
    this.log = log;
  }
  private readonly log: Logger;

  get self(): string { return this.kit.manifest.name; }
  get role(): Role { return this.kit.manifest.role; }
  get federation(): string { return this.kit.manifest.federation; }

  connectOptions(): Partial<ConnectionOptions> {
    const { paths, nkeySeed } = this.kit;
    return {
      tls: { caFile: paths.ca, certFile: paths.certificate, keyFile: paths.tlsKey },
      authenticator: nkeyAuthenticator(nkeySeed),
      // Replies come back on this participant's own inbox, which only it may subscribe to.
      inboxPrefix: `_INBOX.${this.self}`,
    };
  }

  describe(): string {
    return `TLS (mutual, federation CA), NATS nkey ${this.kit.self.nkey.slice(0, 8)}…, messages signed as ${this.self} (${this.role}) and sealed to their receivers; roster v${this.currentRoster().version}`;
  }

  async wrap(out: Outgoing, body: Uint8Array) {
    const header: EnvelopeHeader = { federation: this.federation, from: this.self, to: out.to, subject: out.subject, kind: out.kind, nonce: randomBytes(16), ts: Date.now(), re: out.re };
    const envelope: Omit<Envelope, 'v' | 'sig'> = { ...header };
    if (out.to && out.seal !== false) {
      const receiver = this.currentRoster().active(out.to);
      if (!receiver) throw new Error(`cannot seal a message to ${out.to}: not an active member of federation '${this.federation}'`);
      envelope.sealed = await receiver.sealingKey.seal(headerBytes(header), body);
    } else {
      envelope.body = body;
    }
    const sig = signBytes(this.kit.signingKey, signedBytes(envelope));
    return { bytes: encodeEnvelope({ v: ENVELOPE_VERSION, ...envelope, sig }), nonce: header.nonce };
  }

  async open(bytes: Uint8Array, expect: Expectation, receivedOn: string): Promise<Opened> {
    const { envelope: e, problem, claimed: named } = decodeEnvelope(bytes);
    if (!e) throw new TrustError('malformed envelope', named ? `${named} (unverified)` : '(unknown)', problem);
    const claimed = `${e.from} (unverified)`;
    if (e.federation !== this.federation) throw new TrustError('another federation', claimed, e.federation);
    const roster = this.currentRoster();
    const member = roster.active(e.from);
    if (!member) throw new TrustError(roster.isRevoked(e.from) ? 'revoked sender' : 'unknown sender', claimed);
    if (!e.sig || !verifyBytes(member.signingKey, signedBytes(e), e.sig)) throw new TrustError('forged signature', claimed);
    // From here on the sender is who it says.
    if (e.to !== this.self) throw new TrustError('addressed to someone else', e.from, e.to ? `for ${e.to}` : 'no receiver');
    checkAddressing(e, expect, receivedOn, e.from);
    if (expect.from && !expect.from.includes(member.role)) throw new TrustError('not allowed for its role', e.from, `a ${member.role} may not send ${e.kind}`);
    const replay = this.replay.check(e.from, e.nonce, e.ts);
    if (replay === 'stale') throw new TrustError('stale or future timestamp', e.from, `${Math.round((Date.now() - e.ts) / 1000)} s off`);
    if (replay) throw new TrustError(replay === 'replayed' ? 'replayed' : 'too many messages', e.from);
    if (!this.rate.allow(e.from)) throw new TrustError('too many messages', e.from, `more than ${this.rate.perSecond} a second`);
    let body: Uint8Array;
    if (e.sealed) {
      try {
        body = await this.sealing.open(headerBytes(headerOf(e)), e.sealed);
      } catch {
        throw new TrustError('cannot open the sealed payload', e.from);
      }
    } else {
      if (expect.sealed !== false && !expect.unsealedKinds?.includes(e.kind)) throw new TrustError('not sealed', e.from);
      body = e.body ?? new Uint8Array(0);
    }
    return { sender: { name: e.from, role: member.role, verified: true }, kind: e.kind, body, nonce: e.nonce };
  }

  member(name: string): Member | undefined { return this.currentRoster().active(name); }

  attest(statement: Uint8Array): Uint8Array {
    return signBytes(this.kit.signingKey, attestationBytes(this.federation, statement));
  }

  verifyAttestation(name: string, role: Role, statement: Uint8Array, signature: Uint8Array): boolean {
    const member = this.currentRoster().active(name);
    if (!member || member.role !== role) return false;
    return verifyBytes(member.signingKey, attestationBytes(this.federation, statement), signature);
  }

  admits(name: string, role: Role): boolean { return this.currentRoster().active(name)?.role === role; }

  members(role: Role): Member[] { return this.currentRoster().members(role); }

  director(): string {
    const directors = this.currentRoster().members('director');
    if (directors.length !== 1) throw new Error(`the roster of '${this.federation}' lists ${directors.length} directors, not one`);
    return directors[0].name;
  }

  /**
   * The roster in the kit, re-read when its file changes (`secflow provision add-envoy` / `revoke` rewrite
   * it): a newer, CA-signed version replaces the one in memory; an older or unsigned one is refused.
   */
  private currentRoster(): Roster {
    const now = Date.now();
    if (now - this.rosterCheckedAt < 2000) return this.roster;
    this.rosterCheckedAt = now;
    try {
      const mtime = statSync(this.kit.paths.roster).mtimeMs;
      if (mtime === this.rosterMtime) return this.roster;
      this.rosterMtime = mtime;
      const next = readRoster(this.kit.paths.roster, this.kit.caPem);
      if (next.version < this.roster.version) throw new Error(`version ${next.version} is older than the roster in use (${this.roster.version})`);
      if (next.version > this.roster.version) this.log.info(`roster updated to version ${next.version} (${next.members().length} active members)`);
      this.roster = next;
    } catch (error) {
      this.log.warn(`keeping roster version ${this.roster.version}: the roster file was changed but ${(error as Error).message}`);
    }
    return this.roster;
  }
}

class InsecureTrust implements Trust {
  readonly secure = false;
  readonly rejections: Rejections;

  constructor(readonly self: string, readonly federation: string, log: Logger) {
    this.rejections = new Rejections(log);
  }

  connectOptions(): Partial<ConnectionOptions> { return { inboxPrefix: `_INBOX.${this.self}` }; }

  describe(): string {
    return 'INSECURE: no TLS, no authentication, no signatures: anyone on the network can read updates and send tasks';
  }

  async wrap(out: Outgoing, body: Uint8Array) {
    const nonce = randomBytes(16);
    const envelope: Envelope = { v: ENVELOPE_VERSION, federation: this.federation, from: this.self, to: out.to, subject: out.subject, kind: out.kind, nonce, ts: Date.now(), re: out.re, body };
    return { bytes: encodeEnvelope(envelope), nonce };
  }

  async open(bytes: Uint8Array, expect: Expectation, receivedOn: string): Promise<Opened> {
    const { envelope: e, problem, claimed } = decodeEnvelope(bytes);
    if (!e) throw new TrustError('malformed envelope', claimed ?? '(unknown)', problem);
    if (e.federation !== this.federation) throw new TrustError('another federation', e.from, e.federation);
    checkAddressing(e, expect, receivedOn, e.from);
    if (e.sealed) throw new TrustError('sealed payload in an insecure federation', e.from);
    return { sender: { name: e.from, verified: false }, kind: e.kind, body: e.body ?? new Uint8Array(0), nonce: e.nonce };
  }

  member(): Member | undefined { return undefined; }
  attest(): Uint8Array { return new Uint8Array(0); }
  verifyAttestation(): boolean { return false; }
  admits(): boolean { return true; }
  members(): Member[] { return []; }
  director(): string { return INSECURE_DIRECTOR_NAME; }
}

export function secureTrust(kitDir: string, log: Logger): Trust {
  return new SecureTrust(loadKit(kitDir), log);
}

export function insecureTrust(self: string, federation: string, log: Logger): Trust {
  return new InsecureTrust(self, federation, log);
}

/** Printed every time a role starts without a kit: nobody should run patient data this way by accident. */
export const INSECURE_WARNING = [
  '!!! INSECURE MODE: TLS, authentication and message signatures are OFF.',
  '!!! Anyone who can reach the NATS server can read every update and send tasks to envoys.',
  '!!! Use it only for experiments without patient data; provision kits with `secflow provision` otherwise.',
].join('\n');
