import { capture } from '../capture/index.js';
import { deploy } from '../deploy/index.js';
import { readMachineFacts } from '../plan/index.js';
import { mapShare } from '../share/index.js';
import { claimConsole, type ClaimOptions } from './claim.js';
import type { SessionEnv } from './env.js';
import { runTechnicianSession, type AfterAction } from './flow.js';
import { machineLines, readMachineSummary, type MachineSummary } from './machine.js';

export { claimConsole, CLAIM_PROMPT } from './claim.js';
export { runTechnicianSession, type AfterAction, type SessionResult } from './flow.js';
export { QUESTIONS } from './questions.js';
export { openTerminal, streamTerminal, ConsoleClosedError, type Terminal } from './terminal.js';
export type { SessionEnv, Outcome } from './env.js';
export { machineLines, readMachineSummary, type MachineSummary } from './machine.js';

/** The session's environment as the agent gives it: the runners and facts default to the real ones. */
export type ConsoleEnv = Omit<SessionEnv, 'facts' | 'mapShare' | 'deploy' | 'capture'> &
  Partial<Pick<SessionEnv, 'facts' | 'mapShare' | 'deploy' | 'capture'>> & {
    /** Told which console the technician took (to keep event output off it), and undefined when the session ends. */
    claimed?: (path: string | undefined) => void;
    /** What the first screen says about the machine (default: read from sysfs). */
    machine?: MachineSummary;
  };

/**
 * The technician mode of the PE: says on every console what the machine is, offers the
 * conversation there, holds it on the one where Enter is pressed, and returns what the machine
 * should do next.
 */
export async function runTechnicianConsole(consolePaths: readonly string[], env: ConsoleEnv, options: Pick<ClaimOptions, 'signal' | 'open'> = {}): Promise<AfterAction> {
  const machine = env.machine ?? (await readMachineSummary(env.disks, env.bootMedium));
  const term = await claimConsole(consolePaths, { ...options, banner: machineLines(machine) });
  env.claimed?.(term.name);
  try {
    const { claimed: _, machine: __, ...rest } = env;
    const session: SessionEnv = {
      ...rest,
      facts: env.facts ?? (await readMachineFacts()),
      mapShare: env.mapShare ?? mapShare,
      deploy: env.deploy ?? deploy,
      capture: env.capture ?? capture,
    };
    return (await runTechnicianSession(term, session)).after;
  } finally {
    env.claimed?.(undefined);
    term.close();
  }
}
