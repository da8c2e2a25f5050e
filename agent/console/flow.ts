import { ImagepeError } from '../../core/index.js';
import { captureJob } from './capture-job.js';
import { deployJob } from './deploy-job.js';
import type { Outcome, SessionEnv, ShareAnswer } from './env.js';
import { listShareImages, SEARCH_DEPTH, type ShareInventory } from './inventory.js';
import { ask, BackToStart, chooseRow, InvalidAnswer, say } from './prompts.js';
import { QUESTIONS } from './questions.js';
import { failedBeforeRun } from './run-job.js';
import { connectShare, showError } from './share-prompt.js';
import { imageTable } from './tables.js';
import { ConsoleClosedError, type Terminal } from './terminal.js';

export type AfterAction = 'reboot' | 'poweroff' | 'shell';

export interface SessionResult {
  after: AfterAction;
  outcomes: Outcome[];
}

const NEXT: Record<string, AfterAction | 'again'> = { r: 'reboot', p: 'poweroff', s: 'shell', a: 'again' };

/**
 * The technician's conversation: deploy or capture, the share, the choices, a confirmation that
 * names the disk, the run with its progress, a summary, and what comes next. A failure is
 * shown and the technician chooses again; "q" anywhere starts over; nothing is run without a
 * "yes". Ends only when the technician chooses reboot, power off or shell.
 */
export async function runTechnicianSession(term: Terminal, env: SessionEnv): Promise<SessionResult> {
  const outcomes: Outcome[] = [];
  let lastShare: ShareAnswer | undefined;
  say(term, '\nimagepe technician console. Answer q to any question to start over.');
  for (;;) {
    try {
      const job = await oneJob(term, env, lastShare);
      if (job.share) lastShare = job.share;
      if (!job.outcome) continue;
      outcomes.push(job.outcome);
      showSummary(term, job.outcome);
      const next = await ask(term, QUESTIONS.next, { parse: (a) => NEXT[a.toLowerCase()] ?? refuseNext() });
      if (next !== 'again') return { after: next, outcomes };
    } catch (e) {
      if (!(e instanceof BackToStart)) throw e;
      say(term, 'Starting over.');
    }
  }
}

function refuseNext(): never {
  throw new InvalidAnswer('Answer r to reboot, p to power off, s for a shell, or a to deploy or capture again.');
}

async function oneJob(term: Terminal, env: SessionEnv, lastShare: ShareAnswer | undefined): Promise<{ outcome: Outcome | undefined; share?: ShareAnswer }> {
  term.write('\n');
  const action = await ask(term, QUESTIONS.mode, {
    parse: (a) => {
      const k = a.toLowerCase();
      if (k === 'd' || k === 'deploy') return 'deploy' as const;
      if (k === 'c' || k === 'capture') return 'capture' as const;
      throw new InvalidAnswer('Answer d to deploy an image, or c to capture this machine.');
    },
  });
  if (env.disks.length === 0) {
    return { outcome: failedBeforeRun(action, `${action}: no disk to work on`, new ImagepeError('NOT_FOUND', 'No disk was found (the boot medium, RAM disks and empty drives are left out).')) };
  }
  let share: ShareAnswer | undefined;
  try {
    const found = await shareWithImages(term, env, lastShare, action);
    share = found.share;
    if (action === 'capture') return { outcome: await captureJob(term, env, share, found.inventory.images), share };
    const image = await chooseRow(term, `Images on ${share.url}:`, found.inventory.images, {
      table: imageTable(found.inventory.images),
      prompt: QUESTIONS.image,
      ...(found.inventory.images.length === 1 ? { default: '1' } : {}),
    });
    return { outcome: await deployJob(term, env, share, image), share };
  } catch (e) {
    // Going back and a console that went away end the job; anything else is a failure the
    // technician sees, and the session goes on.
    if (e instanceof BackToStart || e instanceof ConsoleClosedError) throw e;
    return { outcome: failedBeforeRun(action, `the ${action} could not be prepared`, e), ...(share ? { share } : {}) };
  }
}

/**
 * Maps the share, lists its images and releases it again (the run maps it itself). For a
 * deploy a share without images is no use: the URL is asked again.
 */
async function shareWithImages(term: Terminal, env: SessionEnv, lastShare: ShareAnswer | undefined, action: 'deploy' | 'capture'): Promise<{ share: ShareAnswer; inventory: ShareInventory }> {
  for (;;) {
    const { share, mapped } = await connectShare(term, env, lastShare);
    let inventory: ShareInventory;
    try {
      say(term, 'Looking for images ...');
      inventory = await listShareImages(mapped.root ?? '');
    } catch (e) {
      showError(term, `The images on ${share.url} could not be listed`, e);
      continue;
    } finally {
      await mapped.release().catch(() => undefined);
    }
    for (const u of inventory.unreadable) say(term, `${u.file} cannot be read: ${u.reason}`);
    if (action === 'capture' || inventory.images.length > 0) return { share, inventory };
    say(term, `No images (*.wim) on ${share.url}, ${SEARCH_DEPTH} folder levels deep (logs/ left out).`);
    lastShare = share;
  }
}

function showSummary(term: Terminal, outcome: Outcome): void {
  say(term, '\n=== Summary ===');
  for (const line of outcome.lines) say(term, line, '    ');
  term.write('\n');
}
