import { formatDuration } from '../../core/index.js';
import type { Answers, Outcome, SessionEnv, ShareAnswer } from './env.js';
import { diskName, pickDisk } from './disk-prompt.js';
import type { DiskRow, PartitionRow, ShareImage } from './inventory.js';
import { logLines } from './log-place.js';
import { capturePlanFromAnswers, type CaptureAnswers } from './plans.js';
import { ask, choose, confirmDestructive, InvalidAnswer, say } from './prompts.js';
import { QUESTIONS } from './questions.js';
import { failedBeforeRun, runJob } from './run-job.js';
import { runSteps } from './steps.js';
import { groupByFile, partitionTable, wimFileTable, type WimFile } from './tables.js';
import type { Terminal } from './terminal.js';

/** What generalize removes or empties (imaging/generalize.ts), said before the technician agrees. */
export const GENERALIZE_LOSSES = [
  'the machine-id (emptied: systemd makes a new one) and the D-Bus machine id',
  'the SSH host keys (a deploy makes each machine its own)',
  'the random seed, the systemd credential secret and NetworkManager secret',
  'DHCP leases, persistent network and CD names, cloud-init instance state',
  'journals, rotated logs and shell histories; log files are emptied',
];

/** The day as the default file name has it: 20260102. */
function day(now: Date): string {
  return now.toISOString().slice(0, 10).replace(/-/g, '');
}

/** A name not yet in `taken`: the base, or the base with -2, -3, ... */
export function uniqueName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/** A new WIM file's path relative to the share: ".wim" is added when missing; ".." and absolute paths are refused. */
export function parseNewWimFile(answer: string, existing: ReadonlySet<string>): string {
  const file = /\.wim$/i.test(answer) ? answer : `${answer}.wim`;
  if (file.startsWith('/')) throw new InvalidAnswer('Give the path relative to the share, such as images/base.wim.');
  if (file.split('/').some((p) => p === '..' || p === '')) throw new InvalidAnswer('Give a path inside the share, without ".." or empty folder names.');
  if (/[\\\x00-\x1f]/.test(file)) throw new InvalidAnswer('Use "/" between folders, and no control characters.');
  if (existing.has(file)) throw new InvalidAnswer(`${file} exists: answer q and choose it by number to append to it.`);
  return file;
}

/** An image name for the WIM: unique in it, and not only digits, which would read as an index. */
export function parseImageName(answer: string, taken: ReadonlySet<string>, file: string): string {
  if (/^\d+$/.test(answer)) throw new InvalidAnswer('A name of digits only would be taken for an image index.');
  if (taken.has(answer)) throw new InvalidAnswer(`${file} already has an image named "${answer}".`);
  return answer;
}

async function pickPartition(term: Terminal, disk: DiskRow, previous: string | undefined): Promise<{ partition: CaptureAnswers['partition']; shown: string; asked: boolean; answer: string }> {
  const parts = disk.contents?.partitions ?? [];
  const root = { partition: 'root' as const, shown: 'the root filesystem', answer: 'r' };
  if (parts.length === 0) {
    say(term, `${disk.path} has no partitions: the capture looks for the root filesystem on it.`);
    return { ...root, asked: false };
  }
  const before = parts.findIndex((p) => p.path === previous);
  const choice = await choose<PartitionRow>(term, `Partitions of ${disk.path}:`, parts, {
    table: partitionTable(parts),
    prompt: QUESTIONS.partition,
    default: 'r',
    previous: before >= 0 ? String(before + 1) : previous,
    keys: { r: 'the root filesystem, found by the capture' },
    refuse: (p) => (p.number === undefined ? 'its partition number cannot be read' : !p.fsType ? 'it holds no filesystem' : undefined),
  });
  if (!('row' in choice)) return { ...root, asked: true };
  return { partition: { number: choice.row.number! }, shown: `partition ${choice.row.number} (${choice.row.path})`, asked: true, answer: choice.row.path };
}

async function pickDestination(term: Terminal, share: ShareAnswer, files: readonly WimFile[], previous: string | undefined): Promise<{ file: string | undefined; asked: boolean }> {
  if (files.length === 0) {
    say(term, `No WIM files on ${share.url} yet: the image goes into a new one.`);
    return { file: undefined, asked: false };
  }
  const before = files.findIndex((f) => f.file === previous);
  const choice = await choose<WimFile>(term, `WIM files on ${share.url}:`, files, {
    table: wimFileTable(files),
    prompt: QUESTIONS.destination,
    default: 'n',
    previous: before >= 0 ? String(before + 1) : previous,
    keys: { n: 'a new WIM file' },
  });
  return { file: 'row' in choice ? choice.row.file : undefined, asked: true };
}

/**
 * The capture questions once the share is mapped and its WIMs listed: the reference disk and
 * partition, generalize, where the image goes and what it is called, the confirmation, each a
 * step "q" goes back from; then the capture itself. Undefined when the technician did not
 * confirm: nothing ran.
 */
export async function captureJob(term: Terminal, env: SessionEnv, answers: Answers, share: ShareAnswer, images: readonly ShareImage[], now: Date = new Date()): Promise<Outcome | undefined> {
  const files = groupByFile(images);
  const existing = new Set(files.map((f) => f.file));
  let disk: DiskRow | undefined;
  let partition: CaptureAnswers['partition'] = 'root';
  let shown = '';
  let generalize = false;
  let file = '';
  let append = false;
  let taken = new Set<string>();
  let name = '';
  let description = '';
  let compression: 'lzx' | 'xpress' = 'lzx';
  let confirmed = false;
  await runSteps([
    async () => {
      disk = await pickDisk(term, env, QUESTIONS.referenceDisk, answers.referenceDisk, (d) => (d.contents && d.holds.length === 0 ? 'it is blank' : undefined));
      answers.referenceDisk = disk.path;
    },
    async () => {
      const picked = await pickPartition(term, disk!, answers.partition);
      ({ partition, shown } = picked);
      if (picked.asked) answers.partition = picked.answer;
      return picked.asked;
    },
    async () => {
      generalize = false;
      if (disk!.readOnly) {
        say(term, `${disk!.path} is read-only: the reference system is captured as it is, not generalized.`);
        return false;
      }
      generalize = await ask(term, QUESTIONS.generalize, { default: 'y', previous: answers.generalize, parse: parseYesNo });
      answers.generalize = generalize ? 'y' : 'n';
    },
    async () => {
      const picked = await pickDestination(term, share, files, answers.destination);
      const wim = files.find((f) => f.file === picked.file);
      append = wim !== undefined;
      file = wim?.file ?? '';
      taken = new Set(wim?.images.map((i) => i.name) ?? []);
      if (picked.asked) answers.destination = wim?.file ?? 'n';
      return picked.asked;
    },
    async () => {
      if (append) return false;
      file = await ask(term, QUESTIONS.wimFile, {
        default: uniqueName(`images/capture-${day(now)}`, new Set([...existing].map((f) => f.replace(/\.wim$/i, '')))) + '.wim',
        previous: answers.wimFile,
        parse: (a) => parseNewWimFile(a, existing),
      });
      answers.wimFile = file;
    },
    async () => {
      const stem = (file.split('/').pop() ?? file).replace(/\.wim$/i, '');
      name = await ask(term, QUESTIONS.imageName, { default: uniqueName(append ? `${stem}-${day(now)}` : stem, taken), previous: answers.imageName, parse: (a) => parseImageName(a, taken, file) });
      answers.imageName = name;
    },
    async () => {
      description = await ask(term, QUESTIONS.description, { default: '', previous: answers.description });
      answers.description = description;
    },
    async () => {
      // The schema wants a value either way; an appended image ignores it.
      compression = 'lzx';
      if (append) {
        say(term, `The image takes the compression ${file} already has.`);
        return false;
      }
      compression = await ask(term, QUESTIONS.compression, { default: 'lzx', previous: answers.compression, parse: parseCompression });
      answers.compression = compression;
    },
    async () => {
      confirmed = await confirmDestructive(term, {
        action: `This captures ${shown} of ${diskName(disk!)} as image "${name}" ${append ? `appended to ${file}` : `in the new file ${file}`} on ${share.url}.`,
        lossTitle: `Generalize changes the reference system on ${disk!.path} for good; it removes:`,
        losses: generalize ? GENERALIZE_LOSSES : [],
        nothingLost: `Nothing on ${disk!.path} is changed: the reference system is not generalized.`,
      });
    },
  ]);
  if (!confirmed || !disk) return undefined;
  const reference = disk;
  const what = `capture of ${shown} of ${reference.path} into ${file}`;
  let plan;
  try {
    plan = capturePlanFromAnswers({ url: share.url, credentials: share.credentials, disk: reference.path, partition, generalize, file, append, name, description, compression });
  } catch (e) {
    return failedBeforeRun('capture', what, e);
  }
  say(term, `\nCapturing ${reference.path}; progress follows.`);
  return runJob(
    term,
    env,
    'capture',
    what,
    share.url,
    (events) => env.capture(plan, { events, ...(env.bootMedium ? { bootMedium: env.bootMedium } : {}) }),
    (result, ms) => [
      `Captured ${shown} of ${reference.path}`,
      `  as image ${result.index} "${result.name}" of ${result.wim}`,
      `  on ${share.url},`,
      `  in ${formatDuration(ms / 1000)}${generalize ? '; the reference system was generalized' : ''}.`,
      ...logLines(share.url, result.logFile),
    ],
  );
}

function parseYesNo(a: string): boolean {
  if (/^y(es)?$/i.test(a)) return true;
  if (/^no?$/i.test(a)) return false;
  throw new InvalidAnswer('Answer y or n.');
}

function parseCompression(a: string): 'lzx' | 'xpress' {
  const c = a.toLowerCase();
  if (c === 'lzx' || c === 'xpress') return c;
  throw new InvalidAnswer('Answer lzx (smaller) or xpress (faster).');
}
