import { chmod, mkdir, open, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findTool, run } from '../core/index.js';
import * as partition from '../partition/index.js';
import { waitForPartitions } from '../partition/apply.js';
import { median } from './stats.js';

export interface DeployApplyFigures {
  runs: number;
  bytes: number;
  /** Median seconds of the deploy's apply step (mounting included) and of wimlib-imagex apply alone. */
  deploySeconds: number;
  wimlibSeconds: number;
  /** wimlib time / deploy time: 1 means the agent applies as fast as wimlib-imagex. */
  throughputRatio: number;
  deployMiBps: number;
  samples: { deploy: number[]; wimlib: number[] };
}

export interface AgentMemoryFigures {
  runs: number;
  /** Median peak RSS of the agent's own Node.js process over the deploy that contains the apply. */
  agentPeakRssMiB: number;
  /** Median of the same peak as it stood when the apply started (start-up, partitioning, formatting). */
  agentPeakRssBeforeApplyMiB: number;
  /** Median peak RSS of the wimlib-imagex apply the agent ran; null when it could not be measured. */
  wimlibPeakRssMiB: number | null;
  /** Every sample, MiB; wimlib is empty when not measured. */
  samples: { agent: number[]; agentBeforeApply: number[]; wimlib: number[] };
}

export interface DeployApplyResult {
  apply: DeployApplyFigures;
  memory: AgentMemoryFigures;
  /** Fields of `memory` that could not be measured on this host, with the reason. */
  notMeasured: Record<string, string>;
}

/** What the bench's agent process (bench/agent-deploy.ts) reads: the plan, the disk, where to answer. */
export interface AgentDeploySpec {
  plan: unknown;
  disk: string;
  result: string;
}

export interface AgentDeployResult {
  /** Seconds from the apply step's start to its end, as the deploy announces them. */
  applySeconds: number;
  /** The apply's data bytes, from its last byte-counted progress event. */
  applyBytes: number;
  /** getrusage(RUSAGE_SELF).ru_maxrss at the end: the agent process's peak, KiB, children excluded. */
  maxRssKiB: number;
  /** The same when the apply step started: if it equals maxRssKiB, the peak came before the apply. */
  maxRssBeforeApplyKiB: number;
}

const LAYOUT = {
  table: 'gpt' as const,
  partitions: [
    { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat' as const, mount: '/boot/efi' },
    { name: 'bios-boot', size: '1MiB', type: 'bios-boot' },
    { name: 'root', size: 'rest', type: 'linux', format: 'ext4' as const, mount: '/' },
  ],
};

/**
 * The deploy agent's apply step against wimlib-imagex applying the same image to the same kind of
 * freshly made ext4 partition on a loop device, alternating so cache drift hits both alike. The
 * WIM must sit in a folder the deploy can use as a file:// share. The deploy runs in its own
 * Node.js process, `agent` (a bundled bench/agent-deploy.ts), so that process's peak RSS is the
 * agent's alone and the wimlib-imagex it starts can be measured on its own too.
 */
export async function benchDeployApply(shareDir: string, wimName: string, work: string, runs: number, agent: string, diskBytes = 4 * 1024 ** 3): Promise<DeployApplyResult> {
  await mkdir(work, { recursive: true });
  const blank = async (path: string) => {
    await rm(path, { force: true });
    const fh = await open(path, 'w');
    await fh.truncate(diskBytes);
    await fh.close();
  };
  const notMeasured: Record<string, string> = {};
  const meter = await wimlibRssMeter(join(work, 'shim'));
  if (typeof meter === 'string') notMeasured.wimlibPeakRssMiB = meter;
  const viaDeploy: number[] = [];
  const viaWimlib: number[] = [];
  const agentMiB: number[] = [];
  const agentBeforeMiB: number[] = [];
  const wimlibMiB: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const a = join(work, 'direct.img');
    await blank(a);
    viaWimlib.push(await wimlibApply(join(shareDir, wimName), a));
    await rm(a, { force: true });

    const b = join(work, 'deploy.img');
    await blank(b);
    const spec: AgentDeploySpec = {
      plan: { source: { url: `file://${shareDir}`, image: wimName }, target: { layout: LAYOUT }, apply: [{ partition: 'root' }], bootloader: { type: 'none' }, logs: false },
      disk: b,
      result: join(work, 'agent-result.json'),
    };
    const specFile = join(work, 'agent-spec.json');
    await writeFile(specFile, JSON.stringify(spec));
    await rm(spec.result, { force: true });
    if (typeof meter !== 'string') await writeFile(meter.output, '');
    await run(process.execPath, [agent, specFile], {
      what: 'deploying in the bench agent process',
      timeoutMs: 3_600_000,
      ...(typeof meter !== 'string' ? { env: { PATH: `${meter.dir}:${process.env.PATH ?? ''}` } } : {}),
    });
    const result = JSON.parse(await readFile(spec.result, 'utf8')) as AgentDeployResult;
    viaDeploy.push(result.applySeconds);
    bytes = result.applyBytes;
    agentMiB.push(result.maxRssKiB / 1024);
    agentBeforeMiB.push(result.maxRssBeforeApplyKiB / 1024);
    if (typeof meter !== 'string') wimlibMiB.push(parseTimeMaxRssKiB(await readFile(meter.output, 'utf8')) / 1024);
    await rm(b, { force: true });
  }
  const deploySeconds = median(viaDeploy);
  const wimlibSeconds = median(viaWimlib);
  return {
    apply: { runs, bytes, deploySeconds, wimlibSeconds, throughputRatio: wimlibSeconds / deploySeconds, deployMiBps: bytes / 1024 / 1024 / deploySeconds, samples: { deploy: viaDeploy, wimlib: viaWimlib } },
    memory: {
      runs,
      agentPeakRssMiB: median(agentMiB),
      agentPeakRssBeforeApplyMiB: median(agentBeforeMiB),
      wimlibPeakRssMiB: wimlibMiB.length ? median(wimlibMiB) : null,
      samples: { agent: agentMiB, agentBeforeApply: agentBeforeMiB, wimlib: wimlibMiB },
    },
    notMeasured,
  };
}

/**
 * A directory holding a `wimlib-imagex` that runs the real one under GNU time for `apply` (and
 * plainly for everything else), appending the apply's peak RSS in KiB to `output`. The agent
 * process gets the directory first on its PATH; run() looks tools up on that PATH.
 *
 * Why GNU time rather than polling /proc/PID/status VmHWM: time takes ru_maxrss from wait4(),
 * which the kernel keeps exactly over the child's whole life, while polling gives a lower bound:
 * a peak between the last sample and exit is missed (a zombie's status has no Vm lines), and the
 * pid has to be found among the agent's children first. Node.js itself cannot give it:
 * process.resourceUsage() is RUSAGE_SELF only, and RUSAGE_CHILDREN of the agent would mix
 * wimlib-imagex with mkfs, sfdisk and the other tools the deploy runs.
 *
 * A string when it cannot be done here: the reason, for notMeasured.
 */
export async function wimlibRssMeter(dir: string): Promise<{ dir: string; output: string } | string> {
  const wimlib = findTool('wimlib-imagex');
  if (!wimlib) return 'wimlib-imagex is not installed';
  const gnu = await gnuTime();
  if (typeof gnu === 'string') return gnu;
  const time = gnu.path;
  await mkdir(dir, { recursive: true });
  const output = join(dir, 'wimlib-maxrss');
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const shim = join(dir, 'wimlib-imagex');
  await writeFile(shim, ['#!/bin/sh', `if [ "$1" = apply ]; then exec ${q(time)} -a -o ${q(output)} -f %M ${q(wimlib)} "$@"; fi`, `exec ${q(wimlib)} "$@"`, ''].join('\n'));
  await chmod(shim, 0o755);
  return { dir, output };
}

/** GNU time, or why it cannot be used here (for notMeasured). */
export async function gnuTime(): Promise<{ path: string } | string> {
  const time = findTool('time');
  // busybox's time has no -f/-o; the Debian package `time` is GNU time.
  const gnu = time ? await run(time, ['--version'], { okExitCodes: [0, 1, 2] }).then((r) => /GNU/.test(r.stdout + r.stderr), () => false) : false;
  return time && gnu ? { path: time } : 'GNU time is not installed (Debian package time; scripts/setup installs it)';
}

/** "Maximum resident set size (kbytes): N" of `time -v`, KiB. */
export function parseTimeVerboseMaxRssKiB(text: string): number {
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  if (!m) throw new Error(`GNU time -v reported no maximum resident set size (its output: ${JSON.stringify(text.slice(0, 200))})`);
  return Number(m[1]);
}

/**
 * The largest %M (KiB) GNU time appended; it writes "Command exited with non-zero status N" before
 * the figure when the command failed, so only lines that are a number count.
 */
export function parseTimeMaxRssKiB(text: string): number {
  const values = text.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
  if (!values.length) throw new Error(`GNU time recorded no wimlib-imagex apply (its output: ${JSON.stringify(text.slice(0, 200))})`);
  return Math.max(...values);
}

async function wimlibApply(wim: string, image: string): Promise<number> {
  const planned = partition.resolveLayout(partition.parseLayout(LAYOUT), await partition.describeDisk(image));
  await partition.apply(planned);
  const mnt = `${image}.mnt`;
  return partition.withAttachedImage(image, async (loop) => {
  try {
    const nodes = await waitForPartitions(loop, [3], 15_000, (what) => ({ what }));
    await mkdir(mnt, { recursive: true });
    await run('mount', [nodes.get(3)!, mnt]);
    try {
      const t = performance.now();
      await run('wimlib-imagex', ['apply', wim, '1', mnt, '--unix-data'], { timeoutMs: 3_600_000 });
      return (performance.now() - t) / 1000;
    } finally {
      await run('umount', [mnt]);
    }
  } finally {
    await rmdir(mnt).catch(() => undefined);
  }
  });
}
