import { formatDuration } from '../../core/index.js';
import { expandHostname, isFirmwarePlaceholder, type MachineFacts } from '../plan/index.js';
import type { Answers, Outcome, SessionEnv, ShareAnswer } from './env.js';
import { diskName, pickDisk } from './disk-prompt.js';
import type { DiskRow, ShareImage } from './inventory.js';
import { logLines } from './log-place.js';
import { deployPlanFromAnswers, STANDARD_LAYOUT_TEXT } from './plans.js';
import { ask, chooseRow, confirmDestructive, say } from './prompts.js';
import { QUESTIONS } from './questions.js';
import { failedBeforeRun, runJob } from './run-job.js';
import { runSteps } from './steps.js';
import { imageTable } from './tables.js';
import type { Terminal } from './terminal.js';

/** The default host name: pe- and the first Ethernet MAC, or random digits on a machine without one. */
export function defaultHostname(facts: MachineFacts): string {
  return expandHostname(defaultTemplate(facts), facts);
}

function defaultTemplate(facts: MachineFacts): string {
  return facts.mac ? 'pe-{mac}' : 'pe-{random}';
}

/**
 * What each host name token becomes on this machine, in words, from the facts the firmware
 * gave; a token this machine has no value for says why, so the technician does not use it.
 */
export function hostnameHelp(facts: MachineFacts): string[] {
  const value = (token: string, what: string, raw: string | undefined): string => {
    if (!raw?.trim()) return `none: the firmware gives no ${what}`;
    if (isFirmwarePlaceholder(raw)) return `none: the firmware's ${what} is "${raw.trim()}", a placeholder`;
    const becomes = expandHostname(`{${token}}`, facts);
    return becomes === raw.trim() ? `${becomes} (the ${what})` : `${becomes} (the ${what}, ${raw.trim()})`;
  };
  const def = defaultTemplate(facts);
  return [
    'The host name may hold these, filled in from this machine:',
    `  {mac}     ${facts.mac ? value('mac', 'first network card\'s MAC', facts.mac) : 'none: this machine has no network card'}`,
    `  {serial}  ${value('serial', 'serial number', facts.serial)}`,
    `  {uuid}    ${value('uuid', 'system UUID', facts.uuid)}`,
    '  {random}  6 random hex digits, new each time',
    'Letters, digits and - are kept; anything else becomes -.',
    `The default is ${def}, here ${expandHostname(def, facts)}.`,
  ];
}

/** The row number of the image the technician chose before, if the table still has it. */
function imageRow(images: readonly ShareImage[], previous: string | undefined): string | undefined {
  const i = images.findIndex((img) => imageKey(img) === previous);
  return i < 0 ? undefined : String(i + 1);
}

const imageKey = (img: ShareImage) => `${img.file}#${img.index}`;

/**
 * The deploy questions once the share is listed: the image, the disk, the host name, the
 * confirmation, each a step "q" goes back from; then the deploy itself. Undefined when the
 * technician did not confirm: nothing ran.
 */
export async function deployJob(term: Terminal, env: SessionEnv, answers: Answers, share: ShareAnswer, images: readonly ShareImage[]): Promise<Outcome | undefined> {
  let image: ShareImage | undefined;
  let disk: DiskRow | undefined;
  let hostname = '';
  let confirmed = false;
  await runSteps([
    async () => {
      image = await chooseRow(term, `Images on ${share.url}:`, images, {
        table: imageTable(images),
        prompt: QUESTIONS.image,
        previous: imageRow(images, answers.image),
        ...(images.length === 1 ? { default: '1' } : {}),
      });
      answers.image = imageKey(image);
    },
    async () => {
      say(term, image!.layoutRecorded ? 'The image records its disk layout; the disk gets that layout.' : `The disk gets the standard layout: ${STANDARD_LAYOUT_TEXT}.`);
      disk = await pickDisk(term, env, QUESTIONS.disk, answers.disk, (d) => (d.readOnly ? 'it is read-only' : undefined));
      answers.disk = disk.path;
    },
    async () => {
      say(term, '');
      for (const l of hostnameHelp(env.facts)) say(term, l, '    ');
      const answer = await ask(term, QUESTIONS.hostname, {
        default: defaultHostname(env.facts),
        previous: answers.hostname,
        parse: (typed) => ({ typed, hostname: expandHostname(typed, env.facts) }),
      });
      answers.hostname = answer.typed;
      hostname = answer.hostname;
      // Tokens are filled in and the name made a valid label: say what it became.
      if (hostname !== answer.typed) say(term, `  The host name will be ${hostname}.`);
    },
    async () => {
      confirmed = await confirmDestructive(term, {
        action: `This ERASES ${diskName(disk!)} and deploys image ${image!.index} "${image!.name}" of ${image!.file} to it, as ${hostname}.`,
        lossTitle: `Everything on ${disk!.path} will be lost:`,
        losses: disk!.holds,
        nothingLost: `${disk!.path} is blank: nothing on it will be lost.`,
      });
    },
  ]);
  if (!confirmed || !image || !disk) return undefined;
  return runDeploy(term, env, share, image, disk, hostname);
}

async function runDeploy(term: Terminal, env: SessionEnv, share: ShareAnswer, image: ShareImage, disk: DiskRow, hostname: string): Promise<Outcome> {
  const what = `deploy of image ${image.index} "${image.name}" of ${image.file}`;
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
    share.url,
    (events) => env.deploy(plan, { yes: true, events, facts: env.facts, ...(env.bootMedium ? { bootMedium: env.bootMedium } : {}) }),
    (result, ms) => [
      `Deployed image ${image.index} "${image.name}" of ${image.file}`,
      `  from ${share.url}`,
      `  to ${diskName(disk)} as ${result.hostname ?? hostname},`,
      `  in ${formatDuration(ms / 1000)}.`,
      ...logLines(share.url, result.logFile),
    ],
  );
}
