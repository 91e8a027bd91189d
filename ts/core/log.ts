/**
 * Plain, prefixed log lines on stderr. Never pass model weights, updates, keys or shares here:
 * logs leave the hospital, updates must not.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class Logger {
  constructor(private readonly role: string, private readonly level: Level = (process.env.SECFLOW_LOG as Level) ?? 'info') {}

  child(role: string): Logger {
    return new Logger(`${this.role}/${role}`, this.level);
  }

  debug(msg: string): void { this.write('debug', msg); }
  info(msg: string): void { this.write('info', msg); }
  warn(msg: string): void { this.write('warn', msg); }
  error(msg: string): void { this.write('error', msg); }

  private write(level: Level, msg: string): void {
    if (order[level] < order[this.level]) return;
    const time = new Date().toISOString().slice(11, 19);
    process.stderr.write(`${time} ${level.toUpperCase().padEnd(5)} [${this.role}] ${msg}\n`);
  }
}
