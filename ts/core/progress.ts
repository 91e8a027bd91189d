/**
 * Progress for long work: a live bar on a terminal, a few plain lines when output goes to a file or pipe
 * (so logs of a federation run stay readable).
 */
import cliProgress from 'cli-progress';
import type { Logger } from './log.ts';

export interface Progress { update(done: number, extra?: string): void; stop(): void }

export function progress(label: string, total: number, log: Logger): Progress {
  if (process.stderr.isTTY && !process.env.CI) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {value}/{total} {extra}`, stream: process.stderr, hideCursor: true, clearOnComplete: true,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { extra: '' });
    return { update: (done, extra = '') => bar.update(done, { extra }), stop: () => bar.stop() };
  }
  let lastQuarter = -1;
  return {
    update(done, extra = '') {
      const quarter = Math.floor((4 * done) / Math.max(1, total));
      if (quarter > lastQuarter) {
        lastQuarter = quarter;
        log.info(`${label} ${done}/${total} ${extra}`.trim());
      }
    },
    stop() {},
  };
}
