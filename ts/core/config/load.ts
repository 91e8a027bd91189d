/** YAML config loading with schema validation: an unknown or mistyped key is an error naming file and key. */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import type { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfigFile<S extends z.ZodTypeAny>(path: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new ConfigError(`${path} is not valid YAML: ${(error as Error).message}`);
  }
  return validateConfig(raw, schema, path);
}

export function validateConfig<S extends z.ZodTypeAny>(raw: unknown, schema: S, where: string): z.output<S> {
  const result = schema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const at = issue.path.length ? issue.path.join('.') : '(top level)';
      // zod's own message already names unrecognized keys ("Unrecognized key(s) in object: 'foo'").
      return `  ${at}: ${issue.message}`;
    });
    throw new ConfigError(`${where} is invalid:\n${problems.join('\n')}`);
  }
  return result.data;
}

/** Paths inside a config file are relative to the file, so a config works from any working directory. */
export function resolveFrom(configPath: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(configPath), p);
}
