/** `secflow envoy ledger`: the hospital's privacy ledger, as a table and a total. */
import type { EnvoyConfig } from '../../core/config/envoy.ts';
import { resolvePolicy } from '../../core/config/privacy.ts';
import { PrivacyLedger } from './ledger.ts';

export function printLedger(config: EnvoyConfig): void {
  const policy = resolvePolicy(config.privacy);
  const ledger = new PrivacyLedger(policy.ledger);
  const settled = new Map(ledger.all().filter((e) => e.event !== 'charge').map((e) => [e.task_id, e.event]));
  console.log(`privacy ledger of ${config.name}: ${policy.ledger}`);
  console.log(['time'.padEnd(24), 'experiment'.padEnd(20), 'round', 'kind ', 'images', 'batch', 'steps', 'secure', 'DP sigma', 'status'].join(' '));
  for (const c of ledger.all()) {
    if (c.event !== 'charge') continue;
    const status = settled.get(c.task_id) ?? 'counted (not settled: the envoy stopped before the round ended)';
    console.log([c.time.padEnd(24), c.experiment.slice(0, 20).padEnd(20), String(c.round + 1).padStart(5), c.kind.padEnd(5), String(c.examples).padStart(6),
      String(c.batch).padStart(5), String(c.steps).padStart(5), (c.secure ? 'yes' : 'no').padEnd(6), (c.dp ? String(c.dp.noise_multiplier) : '-').padStart(8), status].join(' '));
  }
  const budget = Number.isFinite(policy.dp.epsilonBudget) ? ` of a budget of ${policy.dp.epsilonBudget}` : '';
  console.log(`epsilon spent over every experiment: ${ledger.epsilon(policy.dp.delta).toFixed(4)}${budget} (delta ${policy.dp.delta}); ` +
    `${ledger.counted().length} update(s) counted`);
  if (ledger.damaged.length) console.log(`unreadable (cut short by a crash): ${ledger.damaged.join(', ')}`);
}
