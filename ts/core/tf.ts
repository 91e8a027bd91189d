/**
 * The one place that chooses the TensorFlow.js backend. Every other module imports `tf` from here, so the
 * whole process trains on the same engine: tfjs-node-gpu where the device plan allows it (device.ts: the
 * binding installed, a GPU visible, `device` not `cpu`), else tfjs-node (native TensorFlow), else pure
 * JavaScript with a loud warning (measured ~185x slower on this project's machines).
 */
import type * as TF from '@tensorflow/tfjs';
import { deviceFromEnv, planDevice, probeGpu, type BackendName } from './device.ts';

export type { BackendName };

// TensorFlow's C++ logging is noise for users (oneDNN banners); keep warnings and errors only.
process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';

async function loadBackend(): Promise<{ tf: typeof TF; backend: BackendName; fallback?: string }> {
  const forced = process.env.SECFLOW_TF_BACKEND as BackendName | undefined;
  const plan = forced ? { candidates: [forced] } : planDevice(deviceFromEnv());
  const failures: string[] = [];
  for (const backend of plan.candidates) {
    try {
      const mod = await import(packageOf(backend));
      const tf = (mod.default ?? mod) as typeof TF;
      if (backend === 'tfjs-cpu') warnPureJs();
      const fallback = plan.fallback ?? (failures.length && backend !== plan.candidates[0] ? `${failures[0]}; using ${backend}` : undefined);
      return { tf, backend, fallback };
    } catch (error) {
      failures.push(`${backend}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`No TensorFlow.js backend could be loaded:\n  ${failures.join('\n  ')}`);
}

function packageOf(backend: BackendName): string {
  return { 'tfjs-node-gpu': '@tensorflow/tfjs-node-gpu', 'tfjs-node': '@tensorflow/tfjs-node', 'tfjs-cpu': '@tensorflow/tfjs' }[backend];
}

function warnPureJs(): void {
  process.stderr.write(
    '\n' + '!'.repeat(78) + '\n' +
    '!! WARNING: tfjs-node is not available; training on the pure-JavaScript CPU backend, about 185x slower.\n' +
    '!! Run `npm run setup` (builds tfjs-node offline from the tensorflow-cpu wheel) to fix this.\n' +
    '!'.repeat(78) + '\n\n');
}

const loaded = await loadBackend();
export const tf = loaded.tf;
export const backendName: BackendName = loaded.backend;
/** Why this process does not train on the device it asked for, if so (device.ts). */
export const deviceFallback: string | undefined = loaded.fallback;

/** One line for start-up banners: which engine and device train here. */
export function describeBackend(): string {
  // The GPU binding runs on the CPU where CUDA finds no device, so say GPU only when one is visible.
  const device = backendName === 'tfjs-node-gpu' && probeGpu().gpuVisible ? 'GPU (CUDA)' : 'CPU';
  return `TensorFlow.js ${tf.version.tfjs} on ${backendName} (${tf.getBackend()}), ${device}`;
}
