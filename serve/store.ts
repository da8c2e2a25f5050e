import { appendFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { temporarySibling } from '../core/index.js';
import { macFileName } from './mac.js';
import { MACHINE_STATES, type Machine } from './machines.js';

/**
 * The server's records in the served folder's logs/: one NDJSON file of events per machine
 * (logs/52-54-00-12-34-56.ndjson, every event as the PE posted it, one per line), the state
 * table (logs/machines.json, rewritten as it changes), and logs/server.json while the server
 * runs (its URL, for `imagepe serve status`).
 */
export class ServerRecords {
  /** Writes run one after another, so lines of two requests never interleave. */
  private queue: Promise<void> = Promise.resolve();
  private tableWanted: Machine[] | undefined;
  private tableWriting: Promise<void> | undefined;

  constructor(readonly logsDir: string) {}

  async open(): Promise<void> {
    await mkdir(this.logsDir, { recursive: true });
  }

  /** Appends lines (without newlines) to the machine's event log. */
  appendEvents(mac: string, lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    const file = join(this.logsDir, `${macFileName(mac)}.ndjson`);
    const text = lines.map((l) => `${l}\n`).join('');
    const write = this.queue.then(() => appendFile(file, text));
    this.queue = write.catch(() => undefined);
    return write;
  }

  /** Appends one multicast session's result to logs/multicast.ndjson. */
  appendMulticast(result: Record<string, unknown>): Promise<void> {
    const write = this.queue.then(() => appendFile(join(this.logsDir, 'multicast.ndjson'), `${JSON.stringify({ time: new Date().toISOString(), ...result })}\n`));
    this.queue = write.catch(() => undefined);
    return write;
  }

  /**
   * Replaces logs/machines.json with this table. Calls while a write is under way coalesce into
   * one more write of the newest table; each write goes through a rename, so a reader never sees
   * half a file.
   */
  writeTable(machines: Machine[]): Promise<void> {
    this.tableWanted = machines;
    this.tableWriting ??= (async () => {
      try {
        while (this.tableWanted) {
          const table = this.tableWanted;
          this.tableWanted = undefined;
          const path = join(this.logsDir, 'machines.json');
          const tmp = temporarySibling(path);
          await writeFile(tmp, `${JSON.stringify({ machines: table }, null, 2)}\n`);
          await rename(tmp, path);
        }
      } finally {
        this.tableWriting = undefined;
      }
    })();
    return this.tableWriting;
  }

  /** The table a previous run left, so a restarted server remembers its machines; [] when there is none or it cannot be read. */
  async readTable(): Promise<Machine[]> {
    try {
      const parsed = JSON.parse(await readFile(join(this.logsDir, 'machines.json'), 'utf8')) as { machines?: unknown };
      if (!Array.isArray(parsed.machines)) return [];
      return parsed.machines.filter(
        (m): m is Machine =>
          typeof m === 'object' && m !== null && typeof (m as Machine).mac === 'string' && (MACHINE_STATES as readonly string[]).includes((m as Machine).state) && Array.isArray((m as Machine).fetched),
      );
    } catch {
      return [];
    }
  }

  async writeServerInfo(info: { url: string; pid: number; started: string }): Promise<void> {
    await writeFile(join(this.logsDir, 'server.json'), `${JSON.stringify(info)}\n`);
  }

  async removeServerInfo(): Promise<void> {
    await rm(join(this.logsDir, 'server.json'), { force: true });
  }

  /** Waits for the writes under way. */
  async flush(): Promise<void> {
    await this.queue;
    await this.tableWriting;
  }
}
