/**
 * A decision threshold chosen from the federation's validation data. Each envoy counts, on its validation
 * split, the positives and negatives scoring at or above each threshold of one fixed grid (its ROC curve at
 * 39 points; the metrics it reports each round are one point of that curve and its area). The director adds
 * the counts over envoys, never sees a score or an image, and chooses by Youden's J (sensitivity + specificity
 * - 1) over the federation's validation images (chooseThreshold).
 */
import { z } from 'zod';

/** 0.025, 0.05, ..., 0.975: fine enough to choose by, coarse enough to say little about any one image. */
export const OPERATING_THRESHOLDS: readonly number[] = Array.from({ length: 39 }, (_, i) => Math.round((i + 1) * 25) / 1000);

const Count = z.number().int().nonnegative();
export const OperatingPointsSchema = z.object({
  positives: Count,
  negatives: Count,
  /** At OPERATING_THRESHOLDS[i]: positives with P(pneumonia) >= it (true positives) and negatives (false positives). */
  true_positives: z.array(Count).length(OPERATING_THRESHOLDS.length),
  false_positives: z.array(Count).length(OPERATING_THRESHOLDS.length),
}).strict().refine((p) => p.true_positives.every((c) => c <= p.positives) && p.false_positives.every((c) => c <= p.negatives),
  'counts above a threshold cannot exceed the class counts');
export type OperatingPoints = z.infer<typeof OperatingPointsSchema>;

export interface ChosenThreshold {
  threshold: number;
  /** On the federation's validation images, at `threshold`. */
  sensitivity: number;
  specificity: number;
  /** Validation images the choice rests on, and how many envoys they came from. */
  examples: number;
  envoys: number;
}

export function operatingPoints(probPositive: ArrayLike<number>, labels: ArrayLike<number>): OperatingPoints {
  const points: OperatingPoints = {
    positives: 0, negatives: 0,
    true_positives: OPERATING_THRESHOLDS.map(() => 0), false_positives: OPERATING_THRESHOLDS.map(() => 0),
  };
  for (let i = 0; i < labels.length; i++) {
    const above = labels[i] === 1 ? points.true_positives : points.false_positives;
    labels[i] === 1 ? points.positives++ : points.negatives++;
    OPERATING_THRESHOLDS.forEach((t, k) => { if (probPositive[i] >= t) above[k]++; });
  }
  return points;
}

export function sumOperatingPoints(all: OperatingPoints[]): OperatingPoints {
  const add = (pick: (p: OperatingPoints) => number[]) => OPERATING_THRESHOLDS.map((_, k) => all.reduce((s, p) => s + pick(p)[k], 0));
  return {
    positives: all.reduce((s, p) => s + p.positives, 0), negatives: all.reduce((s, p) => s + p.negatives, 0),
    true_positives: add((p) => p.true_positives), false_positives: add((p) => p.false_positives),
  };
}

/**
 * Youden's J at its largest, by the one-standard-error rule (Breiman et al.'s, for choosing among near-equal
 * fits): of the thresholds whose J is within one standard error of the best, the one nearest 0.5. A few hundred
 * validation images pin J down to about +-0.02, and on a plateau that wide the data do not justify moving the
 * threshold further from where a class-weighted model puts it; the official test split is shifted from
 * train/validation, which punishes a threshold fitted to the validation images' exact scores (bench/RESULTS.md).
 * Undefined when a class is missing.
 */
export function chooseThreshold(reports: OperatingPoints[]): ChosenThreshold | undefined {
  const total = sumOperatingPoints(reports);
  if (total.positives === 0 || total.negatives === 0) return undefined;
  const points = OPERATING_THRESHOLDS.map((threshold, k) => {
    const sensitivity = total.true_positives[k] / total.positives;
    const specificity = 1 - total.false_positives[k] / total.negatives;
    return { threshold, sensitivity, specificity, j: sensitivity + specificity - 1 };
  });
  const best = points.reduce((a, b) => (b.j > a.j ? b : a));
  const standardError = Math.sqrt(best.sensitivity * (1 - best.sensitivity) / total.positives + best.specificity * (1 - best.specificity) / total.negatives);
  const near = points.filter((p) => p.j >= best.j - standardError);
  const chosen = near.reduce((a, b) => (Math.abs(b.threshold - 0.5) < Math.abs(a.threshold - 0.5) ? b : a));
  return {
    threshold: chosen.threshold, sensitivity: chosen.sensitivity, specificity: chosen.specificity,
    examples: total.positives + total.negatives, envoys: reports.length,
  };
}
