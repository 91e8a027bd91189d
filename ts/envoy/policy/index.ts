/**
 * The hospital's last word on every task, behind one interface: `admit` says whether this envoy will train a
 * task at all (its privacy rules, its ε budget), `charge` writes the update into the ledger before training,
 * `settle` says whether it left. The envoy asks before it touches its data.
 */
import type { PrivacyPolicy } from '../../core/config/privacy.ts';
import type { TrainTask } from '../../core/messages.ts';
import { PrivacyLedger, type Charge } from './ledger.ts';
import { brokenRule, factsOf, type PolicyRefusal, type TaskFacts } from './rules.ts';

export type { PolicyRefusal } from './rules.ts';
export { PrivacyLedger } from './ledger.ts';

export class PrivacyGuard {
  readonly ledger: PrivacyLedger;

  constructor(readonly policy: PrivacyPolicy, ledgerPath: string) {
    this.ledger = new PrivacyLedger(ledgerPath);
  }

  /** Undefined when the task may run; else the rule it breaks. */
  admit(task: TrainTask, shardSize: number): PolicyRefusal | undefined {
    const facts = factsOf(task, shardSize);
    const broken = brokenRule(this.policy, facts);
    if (broken) return broken;
    if (facts.dp && Number.isFinite(this.policy.dp.epsilonBudget)) {
      const after = this.ledger.epsilon(this.policy.dp.delta, { extra: { noiseMultiplier: facts.dp.noiseMultiplier, sampleRate: facts.dp.sampleRate, steps: facts.dp.steps } });
      if (after > this.policy.dp.epsilonBudget) {
        return { rule: 'dp.epsilon_budget', reason: `this update would take the hospital's ε to ${after.toFixed(3)}, over its budget ${this.policy.dp.epsilonBudget} (δ ${this.policy.dp.delta}; ${this.spent().toFixed(3)} spent so far)` };
      }
    }
    return undefined;
  }

  /** Written before training: from here on the update counts, even if this process dies. */
  charge(task: TrainTask, shardSize: number): Charge {
    const f: TaskFacts = factsOf(task, shardSize);
    return this.ledger.charge({
      task_id: task.task_id, experiment: task.experiment, run_id: task.run_id, round: task.round, kind: f.kind,
      examples: f.examples, batch: f.batch, steps: f.steps, secure: f.secure, defenses: [...f.defenses],
      dp: f.dp ? { noise_multiplier: f.dp.noiseMultiplier, sample_rate: f.dp.sampleRate, steps: f.dp.steps } : null,
    });
  }

  settle(task: TrainTask, released: boolean, reason?: string): void {
    this.ledger.settle(task.task_id, released, reason);
  }

  /** ε of this hospital's counted DP releases, over every experiment. */
  spent(): number {
    return this.ledger.epsilon(this.policy.dp.delta);
  }

  /** ε of one experiment's counted DP releases (what a result reports). */
  spentIn(experiment: string): number {
    return this.ledger.epsilon(this.policy.dp.delta, { experiment });
  }
}
