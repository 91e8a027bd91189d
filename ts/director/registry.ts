/** Who is in the federation and who is alive, from registrations and heartbeats. */
import type { ShardDescriptor } from '../core/messages.ts';

export interface EnvoyRecord {
  descriptor: ShardDescriptor;
  lastSeen: number;
  busy: boolean;
  left: boolean;
  /** Tasks the envoy's privacy policy refused, and the last refusal. */
  refusals: number;
  lastRefusal?: string;
}

export class EnvoyRegistry {
  private readonly envoys = new Map<string, EnvoyRecord>();
  private readonly listeners = new Set<(name: string) => void>();

  constructor(private readonly timeoutMs: number, private readonly now: () => number = Date.now) {}

  register(descriptor: ShardDescriptor): void {
    const before = this.envoys.get(descriptor.envoy);
    this.envoys.set(descriptor.envoy, { descriptor, lastSeen: this.now(), busy: false, left: false, refusals: before?.refusals ?? 0, lastRefusal: before?.lastRefusal });
  }

  /** Returns false for an envoy the registry does not know (it should register again). */
  heartbeat(name: string, busy: boolean): boolean {
    const record = this.envoys.get(name);
    if (!record || record.left) return false;
    record.lastSeen = this.now();
    record.busy = busy;
    return true;
  }

  /** A task refused by the envoy's privacy policy (shown in `secflow status`). */
  refused(name: string, rule: string, reason: string): void {
    const record = this.envoys.get(name);
    if (!record) return;
    record.refusals++;
    record.lastRefusal = `${rule}: ${reason}`.slice(0, 300);
  }

  leave(name: string): void {
    const record = this.envoys.get(name);
    if (record) record.left = true;
    this.notifyGone(name);
  }

  isAlive(name: string): boolean {
    const record = this.envoys.get(name);
    return !!record && !record.left && this.now() - record.lastSeen <= this.timeoutMs;
  }

  alive(): ShardDescriptor[] {
    return [...this.envoys.values()].filter((r) => this.isAlive(r.descriptor.envoy)).map((r) => r.descriptor);
  }

  /** The envoy's record (alive or not), if it ever registered. */
  record(name: string): EnvoyRecord | undefined {
    return this.envoys.get(name);
  }

  all(): [string, EnvoyRecord][] {
    return [...this.envoys.entries()];
  }

  /** Called by a periodic sweep: tells listeners (e.g. a running round) about envoys that went silent. */
  sweep(): string[] {
    const gone = [...this.envoys.keys()].filter((name) => !this.isAlive(name));
    gone.forEach((name) => this.notifyGone(name));
    return gone;
  }

  onGone(listener: (name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notifyGone(name: string): void {
    this.listeners.forEach((l) => l(name));
  }
}
