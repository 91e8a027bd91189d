/**
 * Replay protection: a nonce is accepted once per sender, and only within a window around the receiver's
 * clock, so a receiver needs to remember nonces for that window only. A sender that floods fresh nonces
 * hits a per-sender cap instead of growing this process's memory without bound.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, Map<string, number>>();
  private lastPurge = 0;

  constructor(readonly windowMs = 5 * 60_000, private readonly maxPerSender = 200_000, private readonly now: () => number = Date.now) {}

  /** Null when fresh (and now remembered), else why not. */
  check(sender: string, nonce: Uint8Array, ts: number): 'stale' | 'replayed' | 'flooding' | null {
    const now = this.now();
    if (Math.abs(now - ts) > this.windowMs) return 'stale';
    this.purge(now);
    let nonces = this.seen.get(sender);
    if (!nonces) this.seen.set(sender, (nonces = new Map()));
    const key = Buffer.from(nonce).toString('base64');
    if (nonces.has(key)) return 'replayed';
    if (nonces.size >= this.maxPerSender) return 'flooding';
    nonces.set(key, ts);
    return null;
  }

  private purge(now: number): void {
    if (now - this.lastPurge < 10_000) return;
    this.lastPurge = now;
    for (const [sender, nonces] of this.seen) {
      for (const [key, ts] of nonces) if (Math.abs(now - ts) > this.windowMs) nonces.delete(key);
      if (!nonces.size) this.seen.delete(sender);
    }
  }
}
