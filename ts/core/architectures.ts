/**
 * The model registry: every architecture an experiment may name, as a layout of conv blocks. The layers model
 * (model.ts) and the leakage lab's functional twin (leakage/functional-model.ts) are both built from this one
 * description, so the lab always attacks the network the envoys train.
 *
 * Each conv block is conv3x3 (no bias) -> normalization -> ReLU, named conv<i> / bn<i> (gn<i> with group norm) / relu<i>.
 */
export const ARCHITECTURE_NAMES = ['convnet_bn', 'convnet_gap'] as const;
export type ArchitectureName = (typeof ARCHITECTURE_NAMES)[number];

export interface ConvLayout {
  /** Each block's filters as a multiple of the spec's `width`. */
  widthMultipliers: number[];
  /** Blocks followed by a 2x2 max-pool (stride 2). */
  poolAfter: number[];
  /** How the last feature map becomes the classifier's input. */
  head: 'max_pool_3_flatten' | 'global_average';
}

export const ARCHITECTURES: Record<ArchitectureName, ConvLayout> = {
  // The original system's ConvNetBN, the leakage lab's reference model: w, 2w, 2w; max-pool 3; flatten; dense.
  convnet_bn: { widthMultipliers: [1, 2, 2], poolAfter: [], head: 'max_pool_3_flatten' },
  // Measured on PneumoniaMNIST with augmentation (bench/RESULTS.md, "Clinical utility"): test ROC-AUC 0.97-0.98
  // centralized where convnet_bn reaches 0.96-0.97; global average pooling generalizes across the official test
  // split's shift, and gives the classifier (and PRECODE) 4w features instead of thousands.
  // w, 2w; max-pool 2; 2w, 4w; max-pool 2; 4w; global average pool; dense.
  convnet_gap: { widthMultipliers: [1, 2, 2, 4, 4], poolAfter: [1, 3], head: 'global_average' },
};

/** The layout whose block count is `blocks` (the lab reads a model from its weights alone). */
export function layoutWithBlocks(blocks: number): ConvLayout {
  const name = ARCHITECTURE_NAMES.find((n) => ARCHITECTURES[n].widthMultipliers.length === blocks);
  if (!name) throw new Error(`no registered architecture has ${blocks} conv blocks (${ARCHITECTURE_NAMES.join(', ')})`);
  return ARCHITECTURES[name];
}
