import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED_DATA = resolve(REPO, '..', 'shared', 'data');
export const PNEUMONIAMNIST = join(SHARED_DATA, 'pneumoniamnist.npz');
export const XRAY_SAMPLES = join(SHARED_DATA, 'chest_xray_samples');
export const FIXTURES = join(REPO, 'test', 'fixtures');

if (!existsSync(PNEUMONIAMNIST)) {
  throw new Error(`test data missing: ${PNEUMONIAMNIST} (the tests read ../shared/data beside the clone)`);
}

export function tempDir(prefix = 'secflow-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
