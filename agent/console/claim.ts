import { CancelledError, ImagepeError } from '../../core/index.js';
import { openTerminal, type Terminal } from './terminal.js';

export const CLAIM_PROMPT = 'Press Enter to start imagepe on this console';

export interface ClaimOptions {
  signal?: AbortSignal;
  /** How a console path becomes a Terminal (default: openTerminal). */
  open?: (path: string) => Terminal | Promise<Terminal>;
  /** Lines shown on every console above the prompt: what the machine is (machineLines). */
  banner?: readonly string[];
}

/**
 * Offers the conversation on every console and keeps the one where a line arrives first: the
 * technician may be at the screen or on the serial port, and only they know which. The others
 * are told where the conversation is and closed. With a single console the question is asked
 * all the same, so a harness on the serial port knows when the agent listens.
 */
export async function claimConsole(paths: readonly string[], options: ClaimOptions = {}): Promise<Terminal> {
  const open = options.open ?? ((p: string) => openTerminal(p));
  const terminals: Terminal[] = [];
  const problems: string[] = [];
  for (const path of paths) {
    try {
      terminals.push(await open(path));
    } catch (e) {
      problems.push(`${path}: ${(e as Error).message}`);
    }
  }
  if (terminals.length === 0) {
    throw new ImagepeError('NOT_FOUND', `no console to talk to the technician on${problems.length ? `:\n${problems.map((p) => `  - ${p}`).join('\n')}` : ' (none given)'}`, {
      hint: 'Boot with console=tty1 or console=ttyS0,115200, or give the agent a plan.',
    });
  }
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const banner = options.banner?.length ? `\n${options.banner.join('\n')}\n` : '';
  for (const t of terminals) t.write(`${banner}\n${CLAIM_PROMPT} (${t.name})\n`);
  let chosen: Terminal;
  try {
    chosen = await Promise.any(terminals.map((t) => t.readLine({ signal: stop.signal }).then(() => t)));
  } catch {
    for (const t of terminals) t.close();
    if (options.signal?.aborted) throw new CancelledError('waiting for a technician');
    throw new ImagepeError('NOT_FOUND', `every console closed before Enter was pressed (${terminals.map((t) => t.name).join(', ')})`);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  stop.abort();
  for (const t of terminals) {
    if (t === chosen) continue;
    t.write(`The technician is on ${chosen.name}; this console is released.\n`);
    t.close();
  }
  return chosen;
}
