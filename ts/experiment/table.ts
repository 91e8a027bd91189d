/** The per-round table printed while an experiment runs. */
import type { ExperimentEvent } from '../core/messages.ts';

const COLUMNS = ['round', 'envoys', 'dropped', 'train_loss', 'val_auc', 'test_loss', 'test_auc', 'test_acc', 'sens', 'spec', 'seconds'];
const WIDTH = 10;

export function tableHeader(): string {
  const line = COLUMNS.map((c) => c.padStart(WIDTH)).join(' ');
  return `${line}\n${'-'.repeat(line.length)}`;
}

export function tableRow(event: ExperimentEvent): string {
  const envoys = event.envoys ?? [];
  const mean = (xs: (number | null | undefined)[]) => {
    const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
  };
  const fmt = (x: number | null | undefined, digits = 4) => (x === undefined || x === null ? '-' : x.toFixed(digits));
  const cells = [
    `${(event.round ?? 0) + 1}/${event.rounds ?? '?'}`,
    String(envoys.length),
    event.type === 'round_failed' ? 'FAILED' : String(event.dropped?.length ?? 0),
    fmt(mean(envoys.map((e) => e.train_loss))),
    fmt(mean(envoys.map((e) => e.val_local?.roc_auc))),
    fmt(event.test?.loss),
    fmt(event.test?.roc_auc),
    fmt(event.test?.accuracy),
    fmt(event.test?.sensitivity, 3),
    fmt(event.test?.specificity, 3),
    fmt(event.seconds, 1),
  ];
  const row = cells.map((c) => c.padStart(WIDTH)).join(' ');
  // A hospital's privacy policy said no: say who and by which rule, under the row.
  const refusals = (event.refusals ?? []).map((r) => `\n  ${r.envoy} refused ${r.rule.startsWith('honest_director.') ? 'its director' : 'by its privacy policy'} (${r.rule}): ${r.reason.replace(/^it declined the task: privacy policy [^:]+: /, '')}`);
  return row + refusals.join('');
}

/**
 * The line an experiment ends with: ROC-AUC, and accuracy, sensitivity and specificity at the threshold chosen
 * from the federation's validation data (named on the line), with accuracy at 0.5 beside it.
 */
export function finalLine(event: ExperimentEvent): string {
  const auc = event.test?.roc_auc?.toFixed(4) ?? 'n/a';
  const at = event.test_at_threshold;
  if (!at || !event.threshold) return `final test_auc=${auc} test_acc=${event.test?.accuracy.toFixed(4) ?? 'n/a'} (threshold 0.5) run=${event.run_dir}`;
  return `final test_auc=${auc} test_acc=${at.accuracy.toFixed(4)} sens=${at.sensitivity.toFixed(3)} spec=${at.specificity.toFixed(3)} ` +
    `(threshold ${event.threshold.threshold} chosen on the federation's validation data; at 0.5 test_acc=${event.test?.accuracy.toFixed(4) ?? 'n/a'}) run=${event.run_dir}`;
}
