import { ImagepeError } from '../../core/index.js';
import { captureJob } from './capture-job.js';
import { deployJob } from './deploy-job.js';
import type { Answers, Outcome, SessionEnv, ShareAnswer } from './env.js';
import { listShareImages, SEARCH_DEPTH, type ShareInventory } from './inventory.js';
import { ask, GoBack, InvalidAnswer, say } from './prompts.js';
import { QUESTIONS } from './questions.js';
import { failedBeforeRun } from './run-job.js';
import { connectShare, showError } from './share-prompt.js';
import { runSteps } from './steps.js';
import { ConsoleClosedError, type Terminal } from './terminal.js';

export type AfterAction = 'reboot' | 'poweroff' | 'shell';

export interface SessionResult {
  after: AfterAction;
  outcomes: Outcome[];
}

const NEXT: Record<string, AfterAction | 'again'> = { r: 'reboot', p: 'poweroff', s: 'shell', a: 'again' };

/**
 * The technician's conversation: deploy or capture, the share, the choices, a confirmation that
 * names the disk, the run with its progress, a summary, and what comes next. "q" goes back one
 * question; every answer is kept as the default of its question, also after a refused
 * confirmation (which starts again at the first question) and for the next job. A failure is
 * shown and the technician chooses again; nothing is run without a "yes". Ends only when the
 * technician chooses reboot, power off or shell.
 */
export async function runTechnicianSession(term: Terminal, env: SessionEnv): Promise<SessionResult> {
  const outcomes: Outcome[] = [];
  const answers: Answers = {};
  say(term, '\nimagepe technician console. Answer q to go back one question; Enter takes the answer in [brackets].');
  for (;;) {
    let outcome: Outcome | undefined;
    try {
      outcome = await oneJob(term, env, answers);
    } catch (e) {
      if (!(e instanceof GoBack)) throw e;
      say(term, 'This is the first question.');
      continue;
    }
    if (!outcome) {
      say(term, '\nBack to the first question. Your answers are kept: Enter takes each again.');
      continue;
    }
    outcomes.push(outcome);
    showSummary(term, outcome);
    // The job is done: there is no question to go back to, so q is just a wrong answer here.
    const next = await ask(term, QUESTIONS.next, { back: false, parse: (a) => NEXT[a.toLowerCase()] ?? refuseNext() });
    if (next !== 'again') return { after: next, outcomes };
  }
}

function refuseNext(): never {
  throw new InvalidAnswer('Answer r to reboot, p to power off, s for a shell, or a to deploy or capture again.');
}

function parseMode(answer: string): 'deploy' | 'capture' {
  const k = answer.toLowerCase();
  if (k === 'd' || k === 'deploy') return 'deploy';
  if (k === 'c' || k === 'capture') return 'capture';
  throw new InvalidAnswer('Answer d to deploy an image, or c to capture this machine.');
}

class NoDisk extends ImagepeError {
  constructor() {
    super('NOT_FOUND', 'No disk was found (the boot medium, RAM disks and empty drives are left out).');
  }
}

/**
 * One deploy or capture: its questions as steps ("q" in the first question of the deploy or
 * capture part goes back to the share), then the run. Undefined when the technician did not
 * confirm: nothing ran. A GoBack out of here is a "q" at the first question.
 */
async function oneJob(term: Terminal, env: SessionEnv, answers: Answers): Promise<Outcome | undefined> {
  term.write('\n');
  let action: 'deploy' | 'capture' = 'deploy';
  let found: { share: ShareAnswer; inventory: ShareInventory } | undefined;
  let outcome: Outcome | undefined;
  try {
    await runSteps([
      async () => {
        action = await ask(term, QUESTIONS.mode, { previous: answers.mode, parse: parseMode });
        answers.mode = action === 'deploy' ? 'd' : 'c';
        if (env.disks.length === 0) throw new NoDisk();
      },
      async () => {
        found = await shareWithImages(term, env, answers, action);
      },
      async () => {
        const { share, inventory } = found!;
        outcome = action === 'capture' ? await captureJob(term, env, answers, share, inventory.images) : await deployJob(term, env, answers, share, inventory.images);
      },
    ]);
  } catch (e) {
    if (e instanceof NoDisk) return failedBeforeRun(action, `${action}: no disk to work on`, e);
    // Going back and a console that went away end the job; anything else is a failure the
    // technician sees, and the session goes on.
    if (e instanceof GoBack || e instanceof ConsoleClosedError) throw e;
    return failedBeforeRun(action, `the ${action} could not be prepared`, e);
  }
  return outcome;
}

/**
 * Maps the share, lists its images and releases it again (the run maps it itself). For a
 * deploy a share without images is no use: the share is asked again.
 */
async function shareWithImages(term: Terminal, env: SessionEnv, answers: Answers, action: 'deploy' | 'capture'): Promise<{ share: ShareAnswer; inventory: ShareInventory }> {
  for (;;) {
    const { share, mapped } = await connectShare(term, env, answers.share);
    answers.share = share;
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
  }
}

function showSummary(term: Terminal, outcome: Outcome): void {
  say(term, '\n=== Summary ===');
  for (const line of outcome.lines) say(term, line, '    ');
  term.write('\n');
}
