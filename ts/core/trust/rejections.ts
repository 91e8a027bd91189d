/**
 * Every refused message is counted per sender and reason, and logged at most once a minute per sender and
 * reason (with how many since), so a flood of bad messages cannot flood the log or the disk. The counts are
 * what `secflow status` shows.
 */
import type { Logger } from '../log.ts';

export interface RejectionCount { sender: string; reason: string; count: number; last_subject: string }

export class Rejections {
  private readonly counts = new Map<string, RejectionCount & { unlogged: number; loggedAt: number }>();

  constructor(private readonly log: Logger, private readonly intervalMs = 60_000, private readonly now: () => number = Date.now) {}

  /** `sender` is the verified name, or the claimed one marked "(unverified)". */
  record(sender: string, reason: string, subject: string, detail?: string): void {
    const key = `${sender}\u0000${reason}`;
    let entry = this.counts.get(key);
    if (!entry) {
      if (this.counts.size >= 10_000) return; // a sender cycling through made-up names stops being counted, not the process
      entry = { sender, reason, count: 0, last_subject: subject, unlogged: 0, loggedAt: -Infinity };
      this.counts.set(key, entry);
    }
    entry.count++;
    entry.unlogged++;
    entry.last_subject = subject;
    const now = this.now();
    if (now - entry.loggedAt >= this.intervalMs) {
      const more = entry.unlogged > 1 ? ` (${entry.unlogged} such messages since the last report)` : '';
      this.log.warn(`refused a message from ${sender} on ${subject}: ${reason}${detail ? `: ${detail}` : ''}${more}`);
      entry.unlogged = 0;
      entry.loggedAt = now;
    }
  }

  all(): RejectionCount[] {
    return [...this.counts.values()].map(({ sender, reason, count, last_subject }) => ({ sender, reason, count, last_subject }));
  }

  total(): number {
    let n = 0;
    for (const e of this.counts.values()) n += e.count;
    return n;
  }
}
