import { formatDuration } from '../../core/index.js';
import type { Outcome, SessionEnv, ShareAnswer } from './env.js';
import { diskName, pickDisk } from './disk-prompt.js';
import type { DiskRow, PartitionRow, ShareImage } from './inventory.js';
import { capturePlanFromAnswers, type CaptureAnswers } from './plans.js';
import { ask, choose, confirmDestructive, InvalidAnswer, say } from './prompts.js';
import { QUESTIONS } from './questions.js';
import { failedBeforeRun, runJob } from './run-job.js';
import { groupByFile, partitionTable, wimFileTable, type WimFile } from './tables.js';
import type { Terminal } from './terminal.js';

/** What generalize removes or empties (imaging/generalize.ts), said before the technician agrees. */
export const GENERALIZE_LOSSES = [
  'the machine-id (emptied: systemd makes a new one) and the D-Bus machine id',
  'the SSH host keys (a deploy makes each machine its own)',
  'the random seed, the systemd credential secret and NetworkManager secret',
  'DHCP leases, persistent network and CD names, cloud-init instance state',
  'journals, rotated logs and shell histories; log files are emptied',
]

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

async function pickPartition(term: Terminal, disk: DiskRow): Promise<{ partition: CaptureAnswers['partition']; shown: string }> {
  const parts = disk.contents?.partitions ?? [];
  const root = { partition: 'root' as const, shown: 'the root filesystem' };
  if (parts.length === 0) {
    say(term, `${disk.path} has no partitions: the capture looks for the root filesystem on it.`);
    return root;
  }
  const choice = await choose<PartitionRow>(term, `Partitions of ${disk.path}:`, parts, {
    table: partitionTable(parts),
    prompt: QUESTIONS.partition,
    default: 'r',
    keys: { r: 'the root filesystem, found by the capture' },
    refuse: (p) => (p.number === undefined ? 'its partition number cannot be read' : !p.fsType ? 'it holds no filesystem' : undefined),
  });
  if (!('row' in choice)) return root;
  return { partition: { number: choice.row.number! }, shown: `partition ${choice.row.number} (${choice.row.path})` };
}

async function pickDestination(term: Terminal, share: ShareAnswer, images: readonly ShareImage[], now: Date): Promise<{ file: string; append: boolean; taken: Set<string> }> {
  const files = groupByFile(images);
  if (files.length > 0) {
    const choice = await choose<WimFile>(term, `WIM files on ${share.url}:`, files, {
      table: wimFileTable(files),
      prompt: QUESTIONS.destination,
      default: 'n',
      keys: { n: 'a new WIM file' },
    });
    if ('row' in choice) return { file: choice.row.file, append: true, taken: new Set(choice.row.images.map((i) => i.name)) };
  } else {
    say(term, `No WIM files on ${share.url} yet: the image goes into a new one.`);
  }
  const existing = new Set(files.map((f) => f.file));
  const file = await ask(term, QUESTIONS.wimFile, {
    default: uniqueName(`images/capture-${day(now)}`, new Set([...existing].map((f) => f.replace(/\.wim$/i, '')))) + '.wim',
    parse: (a) => parseNewWimFile(a, existing),
  });
  return { file, append: false, taken: new Set() };
}

/**
 * The capture questions once the share is mapped and its WIMs listed: the reference disk and
 * partition, generalize, where the image goes and what it is called, the confirmation; then
 * the capture itself. Undefined when the technician did not confirm: nothing ran.
 */
export async function captureJob(term: Terminal, env: SessionEnv, share: ShareAnswer, images: readonly ShareImage[], now: Date = new Date()): Promise<Outcome | undefined> {
  const disk = await pickDisk(term, env, QUESTIONS.referenceDisk, (d) => (d.contents && d.holds.length === 0 ? 'it is blank' : undefined));
  const { partition, shown } = await pickPartition(term, disk);
  let generalize = false;
  if (disk.readOnly) say(term, `${disk.path} is read-only: the reference system is captured as it is, not generalized.`);
  else {
    generalize = await ask(term, QUESTIONS.generalize, {
      default: 'y',
      hideDefault: true,
      parse: (a) => {
        if (/^y(es)?$/i.test(a)) return true;
        if (/^no?$/i.test(a)) return false;
        throw new InvalidAnswer('Answer y or n.');
      },
    });
  }
  const { file, append, taken } = await pickDestination(term, share, images, now);
  const stem = (file.split('/').pop() ?? file).replace(/\.wim$/i, '');
  const name = await ask(term, QUESTIONS.imageName, { default: uniqueName(append ? `${stem}-${day(now)}` : stem, taken), parse: (a) => parseImageName(a, taken, file) });
  const description = await ask(term, QUESTIONS.description, { default: '' });
  if (append) say(term, `The image takes the compression ${file} already has.`);
  // The schema wants a value either way; an appended image ignores it.
  const compression = append
    ? 'lzx'
    : await ask(term, QUESTIONS.compression, {
        default: 'lzx',
        parse: (a) => {
          const c = a.toLowerCase();
          if (c === 'lzx' || c === 'xpress') return c;
          throw new InvalidAnswer('Answer lzx (smaller) or xpress (faster).');
        },
      });
  const ok = await confirmDestructive(term, {
    action: `This captures ${shown} of ${diskName(disk)} as image "${name}" ${append ? `appended to ${file}` : `in the new file ${file}`} on ${share.url}.`,
    lossTitle: `Generalize changes the reference system on ${disk.path} for good; it removes:`,
    losses: generalize ? GENERALIZE_LOSSES : [],
    nothingLost: `Nothing on ${disk.path} is changed: the reference system is not generalized.`,
  });
  if (!ok) return undefined;
  const what = `capture of ${shown} of ${disk.path} into ${file}`;
  let plan;
  try {
    plan = capturePlanFromAnswers({ url: share.url, credentials: share.credentials, disk: disk.path, partition, generalize, file, append, name, description, compression });
  } catch (e) {
    return failedBeforeRun('capture', what, e);
  }
  say(term, `\nCapturing ${disk.path}; progress follows.`);
  return runJob(
    term,
    env,
    'capture',
    what,
    (events) => env.capture(plan, { events, ...(env.bootMedium ? { bootMedium: env.bootMedium } : {}) }),
    (result, ms) => [
      `Captured ${shown} of ${disk.path}`,
      `  as image ${result.index} "${result.name}" of ${result.wim}`,
      `  on ${share.url},`,
      `  in ${formatDuration(ms / 1000)}${generalize ? '; the reference system was generalized' : ''}.`,
      ...(result.logFile ? [`  Log on the share: ${result.logFile}`] : []),
    ],
  );
}
