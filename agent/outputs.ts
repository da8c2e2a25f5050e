import { openSync, writeSync } from 'node:fs';
import { ProgressGate } from '../core/progress.js';
import { formatEventLine } from './events/line.js';
import type { AgentEvent } from './events/index.js';
import { screenLine } from './screen.js';

interface Channel {
  path: string;
  fd: number;
  kind: 'serial' | 'screen';
}

// A serial line carries about 11 KB/s; progress goes out at most once a second per phase there,
// and a text console is redrawn at most four times a second.
const SERIAL_PROGRESS_MS = 1_000;
const SCREEN_PROGRESS_MS = 250;

/**
 * Where the agent's events go in the PE: every event as a JSON line to stdout (the boot log)
 * and to the serial consoles, in words to the text consoles. A console a technician is
 * answering questions on is set aside while the conversation lasts: it shows only what the
 * conversation writes, not the JSON lines or the event words.
 */
export class AgentOutputs {
  private readonly channels: Channel[];
  private readonly reserved = new Set<string>();
  private readonly serialGate = new ProgressGate({ everyMs: SERIAL_PROGRESS_MS });
  private readonly screenGate = new ProgressGate({ everyMs: SCREEN_PROGRESS_MS });

  constructor(serials: readonly string[], screens: readonly string[], private readonly logFd = 1) {
    this.channels = [...serials.map((path) => ({ path, kind: 'serial' as const })), ...screens.map((path) => ({ path, kind: 'screen' as const }))].flatMap((c) => {
      try {
        return [{ ...c, fd: openSync(c.path, 'w') }];
      } catch {
        // A console named on the command line but absent (no serial port) is simply not used.
        return [];
      }
    });
  }

  /** From /init's environment: IMAGEPE_SERIALS and IMAGEPE_SCREENS, space-separated device paths. */
  static fromEnvironment(env: NodeJS.ProcessEnv = process.env): AgentOutputs {
    const list = (v: string | undefined) => (v ?? '').split(/\s+/).filter(Boolean);
    return new AgentOutputs(list(env.IMAGEPE_SERIALS), list(env.IMAGEPE_SCREENS));
  }

  /** Every console, serial ones first: where a technician might be sitting. */
  consoles(): string[] {
    return this.channels.map((c) => c.path);
  }

  /** Sets a console aside for a conversation (undefined: give all back). */
  reserve(path: string | undefined): void {
    this.reserved.clear();
    if (path) this.reserved.add(path);
  }

  event(event: AgentEvent): void {
    const due = (gate: ProgressGate) => event.type !== 'progress' || gate.pass(event.phase, event);
    const json = due(this.serialGate) ? `${formatEventLine(event)}\n` : undefined;
    // Synchronous, so an event is out before anything that follows can fail.
    if (json) writeQuietly(this.logFd, json);
    // While a technician is answering on one console, what comes after the run is that person's
    // choice (the console asks), so no other console announces the plan's `after`.
    const words = due(this.screenGate) ? screenLine(event, { next: this.reserved.size === 0 })?.replace(/\n/g, '\r\n') : undefined;
    for (const c of this.channels) {
      if (this.reserved.has(c.path)) continue;
      if (c.kind === 'serial' && json) writeQuietly(c.fd, json);
      if (c.kind === 'screen' && words) writeQuietly(c.fd, words);
    }
  }
}

function writeQuietly(fd: number, text: string): void {
  try {
    writeSync(fd, text);
  } catch {
    // A console that went away must not stop the deploy.
  }
}
