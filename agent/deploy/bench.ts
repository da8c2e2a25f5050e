import { mkdir, open, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/index.js';
import * as partition from '../../partition/index.js';
import { waitForPartitions } from '../../partition/apply.js';
import { parsePlan } from '../plan/index.js';
import { deploy } from './deploy.js';

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
 * WIM must sit in a folder the deploy can use as a file:// share.
 */
export async function benchDeployApply(shareDir: string, wimName: string, work: string, runs: number, diskBytes = 4 * 1024 ** 3): Promise<DeployApplyFigures> {
  await mkdir(work, { recursive: true });
  const blank = async (path: string) => {
    await rm(path, { force: true });
    const fh = await open(path, 'w');
    await fh.truncate(diskBytes);
    await fh.close();
  };
  const viaDeploy: number[] = [];
  const viaWimlib: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const a = join(work, 'direct.img');
    await blank(a);
    viaWimlib.push(await wimlibApply(join(shareDir, wimName), a));
    await rm(a, { force: true });

    const b = join(work, 'deploy.img');
    await blank(b);
    let started = 0;
    let seconds = 0;
    await deploy(parsePlan({ source: { url: `file://${shareDir}`, image: wimName }, target: { layout: LAYOUT }, apply: [{ partition: 'root' }], bootloader: { type: 'none' }, logs: false }), {
      disk: b,
      yes: true,
      facts: {},
      events: (e) => {
        if (e.type === 'step' && e.step === 'apply' && e.status === 'started') started = performance.now();
        if (e.type === 'step' && e.step === 'apply' && e.status === 'done') seconds = (performance.now() - started) / 1000;
        if (e.type === 'progress' && e.step === 'apply' && e.total) bytes = e.total;
      },
    });
    viaDeploy.push(seconds);
    await rm(b, { force: true });
  }
  const deploySeconds = median(viaDeploy);
  const wimlibSeconds = median(viaWimlib);
  return { runs, bytes, deploySeconds, wimlibSeconds, throughputRatio: wimlibSeconds / deploySeconds, deployMiBps: bytes / 1024 / 1024 / deploySeconds, samples: { deploy: viaDeploy, wimlib: viaWimlib } };
}

async function wimlibApply(wim: string, image: string): Promise<number> {
  const planned = partition.plan(partition.parseLayout(LAYOUT), await partition.describeDisk(image));
  await partition.apply(planned);
  const loop = (await run('losetup', ['--find', '--show', '--partscan', image])).stdout.trim();
  const mnt = `${image}.mnt`;
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
    await run('losetup', ['--detach', loop]);
    await rmdir(mnt).catch(() => undefined);
  }
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
