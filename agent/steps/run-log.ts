import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Everything a run said, one JSON event a line, kept in memory so it can be written to the share
 * at the end: the PE's own disk is RAM and gone after the reboot.
 */
export class RunLog {
  private readonly lines: string[] = [];

  add(event: { imagepe: number; type: string }): void {
    this.lines.push(JSON.stringify(event));
  }

  /** Free text for what is not an event: an error's full message and hint. */
  note(text: string): void {
    this.lines.push(`# ${text.replace(/\n/g, '\n# ')}`);
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }

  /** Writes logs/<name>-<time>.log under `dir`; returns its path. Never overwrites a file. */
  async writeTo(dir: string, name: string, when: Date = new Date()): Promise<string> {
    const logs = join(dir, 'logs');
    await mkdir(logs, { recursive: true });
    const file = join(logs, `${logName(name)}-${when.toISOString().replace(/[:.]/g, '-')}.log`);
    await writeFile(file, this.text(), { flag: 'wx' });
    return file;
  }
}

/** A file name from a hostname or disk path: no slashes, nothing a share could trip on. */
export function logName(name: string): string {
  return name.replace(/^\/+/, '').replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64) || 'deploy';
}
