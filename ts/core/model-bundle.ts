/**
 * A trained model on disk in TensorFlow.js's standard layers format: `model.json` (topology and weights
 * manifest) beside `weights.bin`, loadable by `tf.loadLayersModel('file://…/model.json')` in Node or from a
 * web server in a browser. Written and read through tf.io's memory handlers, so it works on every backend,
 * and the project's custom layers (PRECODE, group norm) are registered by importing model.ts.
 *
 * tfjs cannot write a TensorFlow SavedModel or ONNX; `tensorflowjs_converter --input_format=tfjs_layers_model
 * --output_format=keras_saved_model` (Python) turns this folder into one.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { tf } from './tf.ts';
import type { LayersModel } from './model.ts';
import './model.ts';

export const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

export class ModelBundleError extends Error {}

/** Writes `model` to `dir`/model.json and `dir`/weights.bin (each file replaced atomically). */
export async function saveModelBundle(dir: string, model: LayersModel): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weights = new Uint8Array(artifacts.weightData as ArrayBuffer);
    const json = {
      format: 'layers-model', generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`, convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs }],
    };
    replaceFile(join(dir, WEIGHTS_BIN), weights);
    replaceFile(join(dir, MODEL_JSON), JSON.stringify(json));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
  }));
}

/** The layers model in `dir`, with a clear error for a missing or damaged bundle. */
export async function loadModelBundle(dir: string): Promise<LayersModel> {
  const jsonPath = join(dir, MODEL_JSON);
  if (!existsSync(jsonPath)) throw new ModelBundleError(`${dir}: no ${MODEL_JSON} (not an exported model)`);
  let json: { modelTopology?: object; weightsManifest?: { paths: string[]; weights: TF.io.WeightsManifestEntry[] }[] };
  try {
    json = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (error) {
    throw new ModelBundleError(`${jsonPath}: not valid JSON (${(error as Error).message})`);
  }
  const manifest = json.weightsManifest?.[0];
  if (!json.modelTopology || !manifest) throw new ModelBundleError(`${jsonPath}: no modelTopology or weightsManifest`);
  const weightsPath = join(dir, manifest.paths[0] ?? WEIGHTS_BIN);
  if (!existsSync(weightsPath)) throw new ModelBundleError(`${dir}: ${manifest.paths[0]} is missing`);
  const bytes = readFileSync(weightsPath);
  const expected = manifest.weights.reduce((sum, w) => sum + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
  if (bytes.byteLength !== expected) {
    throw new ModelBundleError(`${weightsPath}: ${bytes.byteLength} bytes where the manifest needs ${expected} (truncated or from another model)`);
  }
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: manifest.weights, weightData: data }));
}

function replaceFile(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}
