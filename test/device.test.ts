/** Where an envoy trains (device: auto | cpu | gpu), and the fallback to the CPU where there is no GPU. */
import test from 'ava';
import { planDevice, probeGpu } from '../ts/core/device.ts';
import { startTestFederation } from './helpers/federation.ts';

const both = { gpuVisible: true, gpuBindingInstalled: true };

test('the device plan: gpu and auto take the GPU binding only when it is installed and a GPU is visible', (t) => {
  t.deepEqual(planDevice('gpu', both), { candidates: ['tfjs-node-gpu', 'tfjs-node', 'tfjs-cpu'] });
  t.deepEqual(planDevice('auto', both), { candidates: ['tfjs-node-gpu', 'tfjs-node', 'tfjs-cpu'] });
  t.deepEqual(planDevice('cpu', both), { candidates: ['tfjs-node', 'tfjs-cpu'] }, 'cpu never loads the GPU binding');
  t.deepEqual(planDevice('auto', { gpuVisible: false, gpuBindingInstalled: true }), { candidates: ['tfjs-node', 'tfjs-cpu'] }, 'auto falls back quietly');
  t.regex(planDevice('gpu', { gpuVisible: true, gpuBindingInstalled: false }).fallback!, /tfjs-node-gpu is not installed \(bash scripts\/setup\.sh --gpu\); training on the CPU/);
  t.regex(planDevice('gpu', { gpuVisible: false, gpuBindingInstalled: true }).fallback!, /no NVIDIA GPU is visible .*; training on the CPU/);
});

const noGpuHere = !(probeGpu().gpuVisible && probeGpu().gpuBindingInstalled);
(noGpuHere ? test.serial : test.serial.skip)('an envoy with device: gpu on a machine without one trains on the CPU and says so', async (t) => {
  const fed = await startTestFederation({
    envoys: ['alpha', 'beta'], device: 'gpu',
    experiment: { name: 'gpu-fallback', rounds: 1, min_envoys_to_start: 2, model: { width: 4, seed: 1 }, training: { batch_size: 32 } },
  });
  t.teardown(() => fed.stop());
  const { final } = await fed.run();
  t.is(final.type, 'finished');
  for (const envoy of ['alpha', 'beta']) {
    const log = fed.log(envoy);
    t.regex(log, /WARN .*device: gpu asked, but .*; training on the CPU/);
    t.regex(log, /on tfjs-node \(tensorflow\), CPU/);
    t.regex(log, /round 1 training/);
  }
});
