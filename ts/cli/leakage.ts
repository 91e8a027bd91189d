/**
 * `secflow leakage attack`: run a gradient-inversion attack and score it against the true images.
 *   secflow leakage attack --attack ig --iterations 2000 --indices 0,1,2,3 --out out/
 *   secflow leakage attack --config attack.yaml --sent sent.msgpack --received received.msgpack --attack multistep
 *   secflow leakage attack --record runs/f/exp/audit/round-0001-probe --envoy hospital-a --truth a.truth --attack ig
 */
import type { Command } from 'commander';
import { loadConfigFile, resolveFrom, validateConfig } from '../core/config/load.ts';
import { AuditSweepSchema } from '../leakage/audit/config.ts';
import { ATTACK_NAMES, LeakageConfigSchema, type LeakageConfig } from '../leakage/config.ts';

const int = (v: string) => Number.parseInt(v, 10);
const list = (v: string) => v.split(',').map((s) => int(s.trim()));

export function registerLeakageCommands(program: Command): void {
  const leakage = program.command('leakage').description('the leakage lab: gradient-inversion attacks on what the director sees');
  leakage.command('attack').description('reconstruct victim images from their gradient or update; PNG grid + JSON summary')
    .option('-c, --config <file>', 'YAML with the keys below (snake_case); flags override it')
    .option('--attack <name>', ATTACK_NAMES.join(' | '))
    .option('--width <n>', 'ConvNetBN width', int)
    .option('--model-seed <n>', 'seed of the initial weights', int)
    .option('--init <kind>', "he | torch: the untrained weights' initialization (model.init)")
    .option('--bn-mode <mode>', "train | eval: batch norm as the victim ran it")
    .option('--data <file>', 'PneumoniaMNIST .npz')
    .option('--split <split>', 'train | val | test')
    .option('--indices <list>', 'victim image indices, e.g. 0,1,2,3', list)
    .option('--batch <n>', 'images per observed gradient/update', int)
    .option('--iterations <n>', 'attack iterations', int)
    .option('--restarts <n>', 'random restarts (IG, multistep)', int)
    .option('--lr <x>', 'attack learning rate', Number)
    .option('--tv <x>', 'total-variation weight', Number)
    .option('--seed <n>', 'attack seed', int)
    .option('--local-steps <n>', "multistep: the envoy's local steps", int)
    .option('--local-lr <x>', "multistep: the envoy's learning rate", Number)
    .option('--sent <file>', 'saved weights the director sent')
    .option('--received <file>', 'saved weights the envoy returned')
    .option('--record <dir>', 'audit round folder written by the director (<run>/audit/round-0001[-probe])')
    .option('--envoy <name>', 'with --record: whose update to attack')
    .option('--truth <files>', "with --record: the envoys' audit truth files, comma-separated (scoring only)", (v: string) => v.split(','))
    .option('--out <dir>', 'output directory')
    .action(async (opts) => {
      const config = mergeFlags(opts);
      const { runFromConfig } = await import('../leakage/cli-run.ts');
      const result = await runFromConfig(config, (line) => console.log(line));
      console.log(`${config.attack}: PSNR mean ${result.psnr_mean.toFixed(2)} dB (best ${result.psnr_best.toFixed(2)}), ` +
        `SSIM mean ${result.ssim_mean.toFixed(4)}; floor ${result.floor_psnr_mean.toFixed(2)} dB; ` +
        `gap ${result.psnr_gap_mean.toFixed(2)} dB; labels ${(100 * result.label_accuracy).toFixed(0)}%; outputs in ${config.out}`);
    });
  leakage.command('audit').description('privacy-utility audit: audited federations per defense, attacks, table + scatter + HTML report')
    .option('-c, --config <file>', 'audit.yaml (see examples/audit.yaml); without it, the default sweep')
    .option('--rounds <n>', 'override the rounds of every configuration', int)
    .option('--only <names>', 'run only these configurations (comma-separated)', (v: string) => v.split(','))
    .option('--out <dir>', 'output folder')
    .option('--keep', "keep the rows of the output folder's audit.json that this run does not measure (re-run some rows of a long sweep)")
    .action(async (opts) => {
      const sweep = opts.config ? loadConfigFile(opts.config, AuditSweepSchema) : AuditSweepSchema.parse({});
      if (opts.rounds) sweep.rounds = opts.rounds;
      if (opts.out) sweep.out = opts.out;
      if (opts.only) {
        const unknown = (opts.only as string[]).filter((n) => !sweep.configurations.some((c) => c.name === n));
        if (unknown.length) throw new Error(`no configuration named ${unknown.join(', ')} (have: ${sweep.configurations.map((c) => c.name).join(', ')})`);
        sweep.configurations = sweep.configurations.filter((c) => (opts.only as string[]).includes(c.name));
      }
      const { runAudit } = await import('../leakage/audit/cli-run.ts');
      const out = await runAudit(sweep, opts.config, (line) => console.log(line), { keep: !!opts.keep });
      console.log(`\naudit table: ${out.csv} (${out.json})\nscatter: ${out.png}\nreport: ${out.html}`);
    });
}

/** Paths in a config file are relative to the file, as in every other config (flags: to the working directory). */
function fileRelative(path: string, c: LeakageConfig): LeakageConfig {
  const from = (p: string) => resolveFrom(path, p);
  return {
    ...c, data: from(c.data), out: from(c.out), truth: c.truth.map(from),
    sent: c.sent && from(c.sent), received: c.received && from(c.received), record: c.record && from(c.record),
  };
}

function mergeFlags(opts: Record<string, unknown>): LeakageConfig {
  const base = opts.config ? fileRelative(opts.config as string, loadConfigFile(opts.config as string, LeakageConfigSchema)) : LeakageConfigSchema.parse({});
  const model = { ...base.model };
  if (opts.width !== undefined) model.width = opts.width as number;
  if (opts.modelSeed !== undefined) model.seed = opts.modelSeed as number;
  if (opts.init !== undefined) model.init = opts.init as typeof model.init;
  const flags: Record<string, unknown> = {
    attack: opts.attack, bn_mode: opts.bnMode, data: opts.data, split: opts.split, indices: opts.indices, batch: opts.batch,
    iterations: opts.iterations, restarts: opts.restarts, learning_rate: opts.lr, tv_weight: opts.tv, seed: opts.seed,
    local_steps: opts.localSteps, local_learning_rate: opts.localLr, sent: opts.sent, received: opts.received, record: opts.record, envoy: opts.envoy, truth: opts.truth, out: opts.out,
  };
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return validateConfig({ ...base, ...defined, model }, LeakageConfigSchema, 'leakage attack flags');
}
