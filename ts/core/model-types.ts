/** The model's types, apart from the factory: defenses that plug into the model import these, not model.ts. */
import type * as TF from '@tensorflow/tfjs';

export type LayersModel = TF.LayersModel;

export interface ModelPlugins {
  /** Layers inserted between the flattened features and the classifier (PRECODE goes here). */
  beforeClassifier?: (seed: number) => TF.layers.Layer[];
}
