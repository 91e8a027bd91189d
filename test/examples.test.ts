/**
 * The sample configs in examples/ stay valid: each file is loaded through loadConfigFile against its schema
 * (a schema change that breaks an example fails here), the leakage example's commented alternatives are
 * checked too, and the files agree with each other (federation, experiment and the audit paths they imply).
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { z } from 'zod';
import { auditRoundDir, truthPath } from '../ts/core/audit.ts';
import { DirectorSchema } from '../ts/core/config/director.ts';
import { EnvoySchema } from '../ts/core/config/envoy.ts';
import { ExperimentSchema } from '../ts/core/config/experiment.ts';
import { loadConfigFile, resolveFrom, validateConfig } from '../ts/core/config/load.ts';
import { AuditSweepSchema } from '../ts/leakage/audit/config.ts';
import { LeakageConfigSchema } from '../ts/leakage/config.ts';
import { FederationSchema } from '../ts/provision/federation-config.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLES = join(REPO, 'examples');

/** Which schema a file in examples/ is written against, by its name. */
const SCHEMAS: [RegExp, z.ZodTypeAny][] = [
  [/^director.*\.yaml$/, DirectorSchema],
  [/^envoy.*\.yaml$/, EnvoySchema],
  [/^experiment.*\.yaml$/, ExperimentSchema],
  [/^leakage.*\.yaml$/, LeakageConfigSchema],
  [/^audit.*\.yaml$/, AuditSweepSchema],
  [/^federation.*\.yaml$/, FederationSchema],
];

const files = readdirSync(EXAMPLES).sort();

test('examples/ holds the sample configs', (t) => {
  for (const name of ['federation.yaml', 'director.yaml', 'envoy.yaml', 'experiment.yaml', 'experiment-audit.yaml', 'leakage-attack.yaml', 'audit.yaml']) {
    t.true(files.includes(name), `examples/${name} is missing`);
  }
});

for (const name of files) {
  test(`examples/${name} is valid against its schema`, (t) => {
    const schema = SCHEMAS.find(([pattern]) => pattern.test(name))?.[1];
    if (!schema) return t.fail(`no schema known for examples/${name}: name it federation*, director*, envoy*, experiment*, leakage* or audit*.yaml`);
    t.notThrows(() => loadConfigFile(join(EXAMPLES, name), schema));
  });
}

/** Blocks of the form `# --- alternative: ...` followed by commented YAML lines, uncommented. */
function alternatives(text: string): { title: string; yaml: string }[] {
  const blocks: { title: string; lines: string[] }[] = [];
  for (const line of text.split('\n')) {
    const start = /^# --- alternative: (.*)$/.exec(line);
    if (start) blocks.push({ title: start[1], lines: [] });
    else if (blocks.length && /^# [a-z_]+:/.test(line)) blocks.at(-1)!.lines.push(line.slice(2));
  }
  return blocks.map((b) => ({ title: b.title, yaml: b.lines.join('\n') }));
}

test('the leakage example\'s commented alternatives are valid in place of its record', (t) => {
  const path = join(EXAMPLES, 'leakage-attack.yaml');
  const found = alternatives(readFileSync(path, 'utf8'));
  t.true(found.length >= 3, `found ${found.length} alternatives`);
  const { record: _record, envoy: _envoy, truth: _truth, ...base } = parse(readFileSync(path, 'utf8'));
  for (const alternative of found) {
    const keys = parse(alternative.yaml);
    t.truthy(keys, alternative.title);
    const config = validateConfig({ ...base, ...keys }, LeakageConfigSchema, `${path} (${alternative.title})`);
    // What cli-run.ts checks before running: whole batches, and both files of a saved pair.
    t.is(config.indices.length % config.batch, 0, alternative.title);
    t.is(config.sent === undefined, config.received === undefined, alternative.title);
  }
});

test('the examples agree: one federation, and the leakage example attacks what experiment-audit.yaml records', (t) => {
  const directorPath = join(EXAMPLES, 'director.yaml');
  const envoyPath = join(EXAMPLES, 'envoy.yaml');
  const director = loadConfigFile(directorPath, DirectorSchema);
  const envoy = loadConfigFile(envoyPath, EnvoySchema);
  const audited = loadConfigFile(join(EXAMPLES, 'experiment-audit.yaml'), ExperimentSchema);
  const attackPath = join(EXAMPLES, 'leakage-attack.yaml');
  const attack = loadConfigFile(attackPath, LeakageConfigSchema);
  t.is(envoy.federation, director.federation);
  const federation = loadConfigFile(join(EXAMPLES, 'federation.yaml'), FederationSchema);
  t.is(federation.federation, director.federation);
  t.true(federation.envoys.some((e) => e.name === envoy.name), 'the envoy example is one of the provisioned envoys');
  t.is(resolveFrom(directorPath, director.kit!), join(REPO, 'kits', federation.director.name), 'the kits the examples point at are where provision writes them');
  t.is(resolveFrom(envoyPath, envoy.kit!), join(REPO, 'kits', envoy.name));
  t.is(director.nats.url, federation.nats.url);
  t.true(audited.audit.enabled);
  t.truthy(audited.audit.probe, 'the audited example asks for a probe');
  // Every file's paths are relative to the file: the record and truth paths must be where director and
  // envoy will write them.
  const runDir = join(resolveFrom(directorPath, director.workspace), director.federation, audited.name);
  t.is(resolveFrom(attackPath, attack.record!), auditRoundDir(runDir, 1, 'probe'));
  t.is(attack.envoy, envoy.name);
  t.deepEqual(attack.truth.map((p) => resolveFrom(attackPath, p)),
    [truthPath(resolveFrom(envoyPath, envoy.audit_dir), envoy.federation, audited.name, envoy.name, 1, 'probe')]);
  t.is(resolveFrom(attackPath, attack.data), resolveFrom(directorPath, (director.test_data as { path: string }).path));
});
