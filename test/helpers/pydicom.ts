/**
 * DICOM files written by pydicom (test/fixtures/write_dicoms.py), an implementation independent of ours,
 * from one of the shared chest X-ray JPEGs. `npm run setup -- --for-tests` installs pydicom into the cache.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readXrayImage } from '../../ts/core/data/xray-image.ts';
import { FIXTURES, tempDir, XRAY_SAMPLES } from './paths.ts';

export const PATIENT_NAME = 'DOE^JANE';
export const PATIENT_ID = 'PID-20261204-XR';
export const SOURCE_JPEG = join(XRAY_SAMPLES, 'PNEUMONIA', 'person1946_bacteria_4874.jpeg');

const PYTHONPATH = join(process.env.SECFLOW_CACHE ?? join(homedir(), '.cache', 'fl-secflow'), 'python');

export interface TestDicoms { dir: string; pixels: Float32Array; rows: number; columns: number }

/** Writes the fixture set into a new temporary folder; throws with the fix if pydicom is missing. */
export function writeTestDicoms(): TestDicoms {
  if (!existsSync(join(PYTHONPATH, 'pydicom'))) {
    throw new Error(`pydicom is not installed in ${PYTHONPATH}: run bash scripts/setup.sh --for-tests`);
  }
  const dir = tempDir('secflow-dicom-');
  const decoded = readXrayImage(SOURCE_JPEG, 1);
  const [rows, columns] = decoded.shape;
  const pixels = decoded.dataSync() as Float32Array;
  decoded.dispose();
  const raw = join(dir, 'pixels.raw');
  writeFileSync(raw, Uint8Array.from(pixels));
  const run = spawnSync('python3', [join(FIXTURES, 'write_dicoms.py'), join(dir, 'dicom'), SOURCE_JPEG, raw, String(rows), String(columns)],
    { env: { ...process.env, PYTHONPATH }, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`write_dicoms.py failed (${run.status}): ${run.stderr}`);
  return { dir: join(dir, 'dicom'), pixels, rows, columns };
}
