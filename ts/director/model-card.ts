/**
 * What a finished experiment hands to the people who will use its model: `<run>/model/` with the final global
 * model in TensorFlow.js's layers format (core/model-bundle.ts) and a model card (Mitchell et al. 2019) in two
 * forms, model-card.md for people and model-card.json for tools (`secflow predict` reads its input size,
 * classes and decision threshold from it). The card says what the model was trained on (how many images per
 * hospital, never which), how well it does on the director's test set at 0.5 and at the threshold chosen on the
 * federation's validation data, which protections were on, and the privacy budget each hospital spent.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExperimentConfig } from '../core/config/experiment.ts';
import type { ClassificationMetrics } from '../core/metrics.ts';
import { countParameters, type LayersModel } from '../core/model.ts';
import { saveModelBundle } from '../core/model-bundle.ts';
import type { ChosenThreshold } from '../core/operating-points.ts';
import { readMetricsLog, type RunFolder } from './run-folder.ts';

export const MODEL_DIR = 'model';
export const MODEL_CARD_JSON = 'model-card.json';

export interface ModelCard {
  experiment: string;
  federation: string;
  created_at: string;
  intended_use: string;
  model: {
    architecture: string; width: number; normalization: string; precode: boolean; parameters: number;
    input: { height: number; width: number; channels: number; scale: string };
    classes: string[]; positive_class: string;
  };
  training: { rounds: number; failed_rounds: number[]; strategy: string; optimizer: string; local_epochs: number; batch_size: number };
  data: { envoy: string; examples: number }[];
  decision_threshold: { value: number; source: string; validation?: ChosenThreshold };
  test: { set: string | null; at_0_5: ClassificationMetrics | null; at_threshold: ClassificationMetrics | null };
  protections: {
    secure_aggregation: boolean; precode: boolean; batch_norm_statistics: string; pruning: number | null;
    dp: { noise_multiplier: number; clip_norm: number; delta: number; epsilon_by_envoy: Record<string, number> } | null;
  };
}

export interface FinishedRun {
  federation: string;
  config: ExperimentConfig;
  model: LayersModel;
  folder: RunFolder;
  failedRounds: number[];
  test?: ClassificationMetrics;
  testSet?: { origin: string; classNames: string[] };
  threshold?: { chosen: ChosenThreshold; test?: ClassificationMetrics };
}

/** Writes `<run>/model/` (the model in layers format, model-card.json and model-card.md); returns the card. */
export async function exportFinalModel(run: FinishedRun): Promise<ModelCard> {
  const dir = join(run.folder.dir, MODEL_DIR);
  await saveModelBundle(dir, run.model);
  const card = modelCardOf(run);
  writeFileSync(join(dir, MODEL_CARD_JSON), JSON.stringify(card, null, 2) + '\n');
  writeFileSync(join(dir, 'model-card.md'), modelCardMarkdown(card));
  return card;
}

export function modelCardOf(run: FinishedRun): ModelCard {
  const { config } = run;
  const log = readMetricsLog(run.folder.dir);
  // The last round each envoy trained in: its example count and the epsilon it had spent by then.
  const examples: Record<string, number> = {};
  const epsilon: Record<string, number> = {};
  for (const r of log) {
    if (r.scope !== 'envoy' || !r.envoy) continue;
    if (r.split === 'train' && r.metrics.examples !== undefined) examples[r.envoy] = r.metrics.examples;
    if (r.split === 'privacy' && r.metrics.epsilon !== undefined) epsilon[r.envoy] = r.metrics.epsilon;
  }
  const classes = run.testSet?.classNames ?? ['normal', 'pneumonia'];
  const [height, width] = config.model.input_size;
  return {
    experiment: config.name, federation: run.federation, created_at: new Date().toISOString(),
    intended_use: 'Research on federated, privacy-preserving pneumonia detection from chest X-rays. Not a medical device: ' +
      'not validated for diagnosis, and only as good as the hospitals\' data and labels it was trained on.',
    model: {
      architecture: config.model.architecture, width: config.model.width, normalization: config.model.normalization,
      precode: config.model.precode.enabled, parameters: countParameters(run.model),
      input: { height, width, channels: config.model.channels, scale: 'pixel / 255, resized bilinearly to the input size' },
      classes, positive_class: classes[1] ?? classes[0],
    },
    training: {
      rounds: config.rounds, failed_rounds: run.failedRounds.map((r) => r + 1), strategy: config.aggregation.strategy,
      optimizer: config.training.optimizer, local_epochs: config.training.local_epochs, batch_size: config.training.batch_size,
    },
    data: Object.entries(examples).sort(([a], [b]) => a.localeCompare(b)).map(([envoy, n]) => ({ envoy, examples: n })),
    decision_threshold: run.threshold
      ? { value: run.threshold.chosen.threshold, source: "the federation's validation data (Youden J, one-standard-error rule)", validation: run.threshold.chosen }
      : { value: 0.5, source: 'default (no federated validation threshold was chosen)' },
    test: { set: run.testSet?.origin ?? null, at_0_5: run.test ?? null, at_threshold: run.threshold?.test ?? null },
    protections: protectionsOf(config, epsilon),
  };
}

/** Which gradient-leakage protections an experiment ran with (the card and the dashboard show the same). */
export function protectionsOf(config: ExperimentConfig, epsilonByEnvoy: Record<string, number> = {}): ModelCard['protections'] {
  const dp = config.training.dp;
  return {
    secure_aggregation: config.secagg.enabled, precode: config.model.precode.enabled,
    batch_norm_statistics: config.training.batch_norm_statistics,
    pruning: config.training.pruning.enabled ? config.training.pruning.keep_fraction : null,
    dp: dp.enabled ? { noise_multiplier: dp.noise_multiplier, clip_norm: dp.clip_norm, delta: dp.delta, epsilon_by_envoy: epsilonByEnvoy } : null,
  };
}

export function modelCardMarkdown(card: ModelCard): string {
  const pct = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(3));
  const metricsRow = (label: string, m: ClassificationMetrics | null) => m
    ? `| ${label} | ${pct(m.roc_auc ?? undefined)} | ${pct(m.accuracy)} | ${pct(m.sensitivity)} | ${pct(m.specificity)} |` : `| ${label} | not measured | | | |`;
  const p = card.protections;
  const lines = [
    `# Model card: ${card.experiment}`, '',
    `Federation \`${card.federation}\`, exported ${card.created_at}.`, '',
    '## Intended use', '', card.intended_use, '',
    '## Model', '',
    `${card.model.architecture} (width ${card.model.width}, ${card.model.normalization} norm${card.model.precode ? ', PRECODE bottleneck' : ''}), ` +
      `${card.model.parameters} parameters. Input ${card.model.input.height}x${card.model.input.width}x${card.model.input.channels} (${card.model.input.scale}). ` +
      `Classes: ${card.model.classes.join(', ')}; the probability reported is that of \`${card.model.positive_class}\`.`, '',
    `Files: \`model.json\` + \`weights.bin\` (TensorFlow.js layers format: \`tf.loadLayersModel('file://…/model.json')\`).`, '',
    '## Training data', '',
    `${card.training.rounds} rounds of ${card.training.strategy} (${card.training.optimizer}, ${card.training.local_epochs} local epoch(s), batch ${card.training.batch_size})` +
      (card.training.failed_rounds.length ? `; rounds ${card.training.failed_rounds.join(', ')} failed and were skipped.` : '.'), '',
    '| hospital | training images (last round) |', '|---|---|',
    ...card.data.map((d) => `| ${d.envoy} | ${d.examples} |`), '',
    '## Performance', '',
    `Decision threshold **${card.decision_threshold.value}**, from ${card.decision_threshold.source}.`, '',
    `Test set: ${card.test.set ?? 'none (the director had no test set)'}.`, '',
    '| at | ROC-AUC | accuracy | sensitivity | specificity |', '|---|---|---|---|---|',
    metricsRow('0.5', card.test.at_0_5), metricsRow(String(card.decision_threshold.value), card.test.at_threshold), '',
    '## Protections', '',
    `- Secure aggregation: ${p.secure_aggregation ? 'on (the director saw only the sum of the updates)' : '**off**'}`,
    `- PRECODE bottleneck: ${p.precode ? 'on' : 'off'}; batch-norm statistics: ${p.batch_norm_statistics}`,
    `- Pruning: ${p.pruning === null ? 'off' : `keeps ${p.pruning} of each update`}`,
    `- Differential privacy: ${p.dp ? `DP-SGD, noise multiplier ${p.dp.noise_multiplier}, clip ${p.dp.clip_norm}, delta ${p.dp.delta}; epsilon spent: ` +
      (Object.entries(p.dp.epsilon_by_envoy).map(([e, v]) => `${e} ${v.toFixed(2)}`).join(', ') || 'not reported') : 'off (no formal guarantee)'}`,
    '',
  ];
  return lines.join('\n');
}
