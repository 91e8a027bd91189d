/**
 * `secflow predict`: the federation's model used on chest X-rays. For each image: the probability of
 * pneumonia, the decision at the threshold the federation chose on its validation data (from the model card),
 * and a Grad-CAM heat map PNG showing where the model looked. An image that cannot be read is reported by
 * name and the others go on.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../core/tf.ts';
import { loadModelBundle, MODEL_JSON } from '../core/model-bundle.ts';
import type { LayersModel } from '../core/model.ts';
import { centerCrop, modelPixels, readXrayImage } from '../core/data/xray-image.ts';
import { gradCam } from './grad-cam.ts';
import { heatMapPng } from './heat-map.ts';

/** What predict needs of a model card (director/model-card.ts writes the whole card). */
interface CardEssentials {
  model?: { input?: { height: number; width: number; channels: number }; classes?: string[] };
  decision_threshold?: { value: number; source: string };
}

export interface Predictor {
  model: LayersModel;
  dir: string;
  input: { height: number; width: number; channels: 1 | 3 };
  classes: string[];
  threshold: number;
  thresholdSource: string;
}

export interface Prediction {
  image: string;
  probability: number;
  threshold: number;
  /** The positive class's name at or above the threshold, the negative's below it. */
  decision: string;
  heat_map: string;
}

export interface PredictionFailure { image: string; error: string }

/** The exported model of a run folder (`<run>/model/`), or of a model folder given directly. */
export async function loadPredictor(path: string): Promise<Predictor> {
  const dir = existsSync(join(path, 'model', MODEL_JSON)) ? join(path, 'model') : path;
  if (!existsSync(join(dir, MODEL_JSON))) {
    throw new Error(`${path}: no exported model (model/${MODEL_JSON}); a run folder has one once its experiment finished`);
  }
  const model = await loadModelBundle(dir);
  const card = readCard(dir);
  const shape = model.inputs[0].shape; // [null, H, W, C]
  const input = card.model?.input ?? { height: shape[1]!, width: shape[2]!, channels: shape[3]! };
  if (input.channels !== 1 && input.channels !== 3) throw new Error(`${dir}: the model takes ${input.channels} channels; predict reads grey or RGB X-rays only`);
  return {
    model, dir, input: { ...input, channels: input.channels },
    classes: card.model?.classes ?? ['normal', 'pneumonia'],
    threshold: card.decision_threshold?.value ?? 0.5,
    thresholdSource: card.decision_threshold?.source ?? 'default (the model folder has no model card)',
  };
}

/** Predicts every image, writing `<out>/<name>.gradcam.png` for each; failures are returned, not thrown. */
export async function predictImages(predictor: Predictor, images: string[], out: string, onEach?: (r: Prediction | PredictionFailure) => void):
  Promise<{ predictions: Prediction[]; failures: PredictionFailure[] }> {
  mkdirSync(out, { recursive: true });
  const predictions: Prediction[] = [];
  const failures: PredictionFailure[] = [];
  const used = new Set<string>();
  for (const image of images) {
    let result: Prediction | PredictionFailure;
    try {
      result = await predictOne(predictor, image, join(out, heatMapName(image, used)));
      predictions.push(result);
    } catch (error) {
      result = { image, error: (error as Error).message };
      failures.push(result);
    }
    onEach?.(result);
  }
  return { predictions, failures };
}

export async function predictOne(predictor: Predictor, image: string, heatMapPath: string): Promise<Prediction> {
  const { input } = predictor;
  const decoded = readXrayImage(image, input.channels);
  let cam: TF.Tensor2D | undefined;
  try {
    const pixels = modelPixels(decoded, [input.height, input.width]);
    const x = tf.tensor4d(pixels, [1, input.height, input.width, input.channels]);
    let probability: number;
    try {
      ({ probability, cam } = gradCam(predictor.model, x));
    } finally {
      x.dispose();
    }
    const seen = centerCrop(decoded, [input.height, input.width]); // the map covers what the model saw
    try {
      writeFileSync(heatMapPath, await heatMapPng(seen, cam));
    } finally {
      seen.dispose();
    }
    const positive = probability >= predictor.threshold;
    return {
      image, probability, threshold: predictor.threshold, heat_map: heatMapPath,
      decision: positive ? predictor.classes[1] ?? 'positive' : predictor.classes[0] ?? 'negative',
    };
  } finally {
    decoded.dispose();
    cam?.dispose();
  }
}

function readCard(dir: string): CardEssentials {
  const path = join(dir, 'model-card.json');
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as CardEssentials;
  } catch (error) {
    throw new Error(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

/** `<name>.gradcam.png`, with `-2`, `-3`... when two inputs share a name. */
function heatMapName(image: string, used: Set<string>): string {
  const stem = basename(image, extname(image));
  let name = `${stem}.gradcam.png`;
  for (let k = 2; used.has(name); k++) name = `${stem}-${k}.gradcam.png`;
  used.add(name);
  return name;
}
