/**
 * Sub-cohorts: a secure round's envoys dealt into disjoint groups of at least `secagg.sub_cohort_size`, each
 * summed securely on its own (secure.ts). The director then learns one sum per group instead of one for the
 * whole round: a smaller crowd per sum (never below the size, and each hospital's policy checks its own
 * group), in exchange for robustness under secure aggregation:
 *  - a group whose sum is out of bounds is refused alone, and the round goes on with the others;
 *  - robust strategies (median, trimmed mean) work on the groups' means;
 *  - across rounds the groups are dealt afresh, suspects apart, so an envoy that spoils its group every
 *    round is found by elimination (group testing) and excluded, named in the log.
 */
import { randomInt } from 'node:crypto';

/**
 * ⌊n / size⌋ groups (at least one), sizes differing by at most one. Envoys under suspicion (their group
 * was refused in the last rounds) are dealt first, one per group, so an honest one lands with fresh
 * partners and clears itself; the rest are dealt in a random order, so nobody keeps the same partners.
 */
export function dealSubCohorts(envoys: string[], size: number, suspicion: (envoy: string) => number = () => 0): string[][] {
  const groups = Math.max(1, size > 0 ? Math.floor(envoys.length / size) : 1);
  const suspects = envoys.filter((e) => suspicion(e) > 0).sort((a, b) => suspicion(b) - suspicion(a) || (a < b ? -1 : 1));
  const rest = shuffled(envoys.filter((e) => suspicion(e) === 0));
  const dealt: string[][] = Array.from({ length: groups }, () => []);
  [...suspects, ...rest].forEach((envoy, i) => dealt[i % groups].push(envoy));
  return dealt.map((g) => g.sort());
}

function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** One group of a round as the experiment runner sees it afterwards: who was in it, and why it was refused. */
export interface SubCohortOutcome { members: string[]; refused?: string }

/**
 * The director's memory of refused groups over one experiment's rounds: each envoy's streak of rounds in
 * a refused group (reset by a round in an accepted one). At `excludeAfter` in a row the envoy is excluded
 * from the experiment's later rounds. Honest envoys are never in a refused group unless a hostile one is
 * with them, and suspects are dealt apart, so an honest streak ends at the next round.
 */
export class SubCohortWatch {
  private readonly streaks = new Map<string, number>();
  private readonly excludedEnvoys = new Map<string, string>();

  constructor(private readonly excludeAfter: number) {}

  suspicion(envoy: string): number { return this.streaks.get(envoy) ?? 0; }
  isExcluded(envoy: string): boolean { return this.excludedEnvoys.has(envoy); }
  get excluded(): ReadonlyMap<string, string> { return this.excludedEnvoys; }

  /** Takes one round's groups; returns the envoys excluded by it, each with the reason. */
  record(outcomes: SubCohortOutcome[]): { envoy: string; reason: string }[] {
    // A round of one group tells nothing about who spoiled it: only several groups can narrow it down.
    if (outcomes.length < 2) return [];
    const newly: { envoy: string; reason: string }[] = [];
    for (const { members, refused } of outcomes) {
      for (const envoy of members) {
        if (!refused) { this.streaks.delete(envoy); continue; }
        const streak = this.suspicion(envoy) + 1;
        this.streaks.set(envoy, streak);
        if (streak >= this.excludeAfter && !this.excludedEnvoys.has(envoy)) {
          const reason = `its sub-cohort's secure sum was refused in ${streak} rounds in a row, each time with other partners (last: ${refused})`;
          this.excludedEnvoys.set(envoy, reason);
          newly.push({ envoy, reason });
        }
      }
    }
    return newly;
  }
}
