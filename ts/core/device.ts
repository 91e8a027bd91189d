/**
 * Where an envoy trains: `device: auto | cpu | gpu` (envoy.yaml), decided before TensorFlow loads (tf.ts reads
 * it from SECFLOW_DEVICE, which `secflow envoy start` sets from the config). A GPU needs two things, the
 * `@tensorflow/tfjs-node-gpu` binding (`bash scripts/setup.sh --gpu`) and an NVIDIA device the driver shows;
 * without either, `gpu` falls back to the CPU with a line that says which one was missing, and `auto` quietly
 * takes the CPU. Imports nothing of TensorFlow.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';

export const DEVICES = ['auto', 'cpu', 'gpu'] as const;
export type Device = (typeof DEVICES)[number];
export type BackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'tfjs-cpu';

export interface DevicePlan {
  /** Backends to try, in order. */
  candidates: BackendName[];
  /** Said once at start-up when the device asked for cannot be had (the fallback line). */
  fallback?: string;
}

export function deviceFromEnv(env: NodeJS.ProcessEnv = process.env): Device {
  const value = env.SECFLOW_DEVICE ?? 'auto';
  if (!(DEVICES as readonly string[]).includes(value)) throw new Error(`SECFLOW_DEVICE='${value}': expected one of ${DEVICES.join(', ')}`);
  return value as Device;
}

export function planDevice(device: Device, probe: { gpuVisible: boolean; gpuBindingInstalled: boolean } = probeGpu()): DevicePlan {
  const cpu: BackendName[] = ['tfjs-node', 'tfjs-cpu'];
  if (device === 'cpu') return { candidates: cpu };
  const missing = !probe.gpuBindingInstalled ? '@tensorflow/tfjs-node-gpu is not installed (bash scripts/setup.sh --gpu)'
    : !probe.gpuVisible ? 'no NVIDIA GPU is visible (/dev/nvidia0, /proc/driver/nvidia/gpus)' : undefined;
  if (!missing) return { candidates: ['tfjs-node-gpu', ...cpu] };
  return { candidates: cpu, ...(device === 'gpu' ? { fallback: `device: gpu asked, but ${missing}; training on the CPU` } : {}) };
}

export function probeGpu(): { gpuVisible: boolean; gpuBindingInstalled: boolean } {
  return { gpuVisible: gpuVisible(), gpuBindingInstalled: packageResolves('@tensorflow/tfjs-node-gpu') };
}

function gpuVisible(): boolean {
  if (process.env.CUDA_VISIBLE_DEVICES === '-1' || process.env.CUDA_VISIBLE_DEVICES === '') return false;
  try {
    return existsSync('/dev/nvidia0') || readdirSync('/proc/driver/nvidia/gpus').length > 0;
  } catch {
    return false;
  }
}

function packageResolves(name: string): boolean {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
}
