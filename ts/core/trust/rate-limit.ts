/**
 * A token bucket per verified sender: one participant that floods a receiver with validly signed messages
 * is refused beyond its budget, before the receiver spends time opening sealed payloads, so it cannot
 * starve the others. Unverified messages never reach it (they are refused earlier, and cheaply).
 */
export class SenderRateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(readonly perSecond = 100, readonly burst = 400, private readonly now: () => number = Date.now) {}

  allow(sender: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(sender) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    this.buckets.set(sender, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
