/**
 * Who the data scientist's commands (`experiment run`, `status`) act as: a startup kit (`--kit`, or
 * $SECFLOW_KIT), or, as an explicit opt-out, an insecure federation named by `--director director.yaml`
 * (one with `insecure: true`) or by `--insecure --nats URL --federation NAME`.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DirectorSchema } from '../core/config/director.ts';
import { loadConfigFile } from '../core/config/load.ts';
import { KIT_FILES, KitManifestSchema } from '../core/trust/kit.ts';
import type { Participant } from '../core/transport/connection.ts';

export interface TargetOptions { kit?: string; director?: string; nats?: string; federation?: string; insecure?: boolean }

export const withTarget = (cmd: Command) => cmd
  .option('-k, --kit <dir>', "your data scientist's startup kit (or $SECFLOW_KIT)")
  .option('-d, --director <file>', 'an insecure federation: its director.yaml (gives NATS URL and name)')
  .option('--nats <url>', 'NATS server URL (default: the kit\'s)')
  .option('--federation <name>', 'federation name, with --insecure')
  .option('--insecure', 'no kit: unauthenticated, unsigned (never with patient data)');

export function resolveParticipant(opts: TargetOptions): Participant {
  const kit = opts.kit ?? process.env.SECFLOW_KIT;
  if (kit) {
    const manifest = KitManifestSchema.parse(parse(readFileSync(join(kit, KIT_FILES.manifest), 'utf8')));
    if (manifest.role !== 'scientist') throw new Error(`${kit} is ${manifest.name}'s kit (a ${manifest.role}); experiments are submitted with a data scientist's kit`);
    return { url: opts.nats ?? manifest.nats_url, kit };
  }
  if (opts.director) {
    const d = loadConfigFile(opts.director, DirectorSchema);
    if (!d.insecure) throw new Error(`${opts.director} runs with a startup kit: act as a data scientist with --kit <that scientist's kit folder>`);
    return { url: opts.nats ?? d.nats.url, insecure: true, name: 'scientist', federation: opts.federation ?? d.federation };
  }
  const url = opts.nats ?? process.env.SECFLOW_NATS;
  const federation = opts.federation ?? process.env.SECFLOW_FEDERATION;
  if (opts.insecure && url && federation) return { url, insecure: true, name: 'scientist', federation };
  throw new Error('say who you are: --kit <your data scientist kit> (made by `secflow provision`), ' +
    'or for an insecure federation --director director.yaml, or --insecure --nats URL --federation NAME');
}
