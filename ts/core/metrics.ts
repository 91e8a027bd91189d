/** Binary classification metrics for pneumonia detection (positive class = label 1 = pneumonia). */
export interface ClassificationMetrics {
  loss: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** null where it is undefined: a set with one class only (a small hospital's validation split can be). */
  roc_auc: number | null;
  /** = recall: pneumonia cases found. */
  sensitivity: number;
  /** normal cases correctly cleared. */
  specificity: number;
  examples: number;
}

/** ROC-AUC by the Mann-Whitney U statistic, ties counted as half (as scikit-learn's roc_auc_score). */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = averageRank;
    i = j + 1;
  }
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) if (labels[i] === 1) { positives++; rankSum += ranks[i]; }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** NaN (undefined) becomes null, which message schemas, JSON and CSV all carry as "no value". */
function definedOrNull(v: number): number | null {
  return Number.isNaN(v) ? null : v;
}

/** Mean cross-entropy of P(class 1) against 0/1 labels (scikit-learn's log_loss, with the same 1e-7 floor). */
export function binaryCrossEntropy(probPositive: ArrayLike<number>, labels: ArrayLike<number>): number {
  let loss = 0;
  for (let i = 0; i < labels.length; i++) {
    const q = labels[i] === 1 ? probPositive[i] : 1 - probPositive[i];
    loss -= Math.log(Math.max(q, 1e-7));
  }
  return loss / Math.max(1, labels.length);
}

/** Metrics, the loss included, from P(pneumonia) per example (what evaluating a model on a split gives). */
export function metricsOfScores(probPositive: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): ClassificationMetrics {
  return classificationMetrics(probPositive, labels, binaryCrossEntropy(probPositive, labels), threshold);
}

/** Metrics from P(pneumonia) per example, thresholded at `threshold` (0.5 unless chosen) for the confusion-matrix measures. */
export function classificationMetrics(probPositive: ArrayLike<number>, labels: ArrayLike<number>, loss: number, threshold = 0.5): ClassificationMetrics {
  let tp = 0, tn = 0, fp = 0, fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const predicted = probPositive[i] >= threshold ? 1 : 0;
    if (predicted === 1) labels[i] === 1 ? tp++ : fp++;
    else labels[i] === 1 ? fn++ : tn++;
  }
  const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return {
    loss,
    accuracy: ratio(tp + tn, labels.length),
    precision,
    recall,
    f1: ratio(2 * precision * recall, precision + recall),
    roc_auc: definedOrNull(rocAuc(probPositive, labels)),
    sensitivity: recall,
    specificity: ratio(tn, tn + fp),
    examples: labels.length,
  };
}
