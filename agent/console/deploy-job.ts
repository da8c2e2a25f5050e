import { formatDuration } from '../../core/index.js';
import { expandHostname, type MachineFacts } from '../plan/index.js';
import type { Outcome, SessionEnv, ShareAnswer } from './env.js';
import { diskName, pickDisk } from './disk-prompt.js';
import type { ShareImage } from './inventory.js';
import { deployPlanFromAnswers, STANDARD_LAYOUT_TEXT } from './plans.js';
import { ask, confirmDestructive, say } from './prompts.js';
import { QUESTIONS } from './questions.js';
import { failedBeforeRun, runJob } from './run-job.js';
import type { Terminal } from './terminal.js';

/** The default host name: pe- and the first Ethernet MAC, or random digits on a machine without one. */
export function defaultHostname(facts: MachineFacts): string {
  return expandHostname(facts.mac ? 'pe-{mac}' : 'pe-{random}', facts);
}

/**
 * The deploy questions once the image is chosen: the disk, the host name, the confirmation;
 * then the deploy itself. Undefined when the technician did not confirm: nothing ran.
 */
export async function deployJob(term: Terminal, env: SessionEnv, share: ShareAnswer, image: ShareImage): Promise<Outcome | undefined> {
  const what = `deploy of image ${image.index} "${image.name}" of ${image.file}`;
  say(term, image.layoutRecorded ? 'The image records its disk layout; the disk gets that layout.' : `The disk gets the standard layout: ${STANDARD_LAYOUT_TEXT}.`);
  const disk = await pickDisk(term, env, QUESTIONS.disk, (d) => (d.readOnly ? 'it is read-only' : undefined));
  say(term, '  Tokens: {mac} {serial} {uuid} {random}');
  const { typed, hostname } = await ask(term, QUESTIONS.hostname, {
    default: defaultHostname(env.facts),
    parse: (answer) => ({ typed: answer, hostname: expandHostname(answer, env.facts) }),
  });
  // Tokens are filled in and the name made a valid label: say what it became.
  if (hostname !== typed) say(term, `  The host name will be ${hostname}.`);
  const ok = await confirmDestructive(term, {
    action: `This ERASES ${diskName(disk)} and deploys image ${image.index} "${image.name}" of ${image.file} to it, as ${hostname}.`,
    lossTitle: `Everything on ${disk.path} will be lost:`,
    losses: disk.holds,
    nothingLost: `${disk.path} is blank: nothing on it will be lost.`,
  });
  if (!ok) return undefined;
  let plan;
  try {
    plan = deployPlanFromAnswers({ url: share.url, credentials: share.credentials, file: image.file, index: image.index, layoutRecorded: image.layoutRecorded, disk: disk.path, hostname });
  } catch (e) {
    return failedBeforeRun('deploy', what, e);
  }
  say(term, `\nDeploying to ${disk.path}; progress follows.`);
  return runJob(
    term,
    env,
    'deploy',
    `${what} to ${disk.path}`,
    (events) => env.deploy(plan, { yes: true, events, facts: env.facts, ...(env.bootMedium ? { bootMedium: env.bootMedium } : {}) }),
    (result, ms) => [
      `Deployed image ${image.index} "${image.name}" of ${image.file}`,
      `  from ${share.url}`,
      `  to ${diskName(disk)} as ${result.hostname ?? hostname},`,
      `  in ${formatDuration(ms / 1000)}.`,
      ...(result.logFile ? [`  Log on the share: ${result.logFile}`] : []),
    ],
  );
}
