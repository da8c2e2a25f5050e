import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImagepeError, run } from '../core/index.js';
import { sha256File } from '../agent/deploy/index.js';
import type { BuildResult } from '../builder/index.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { startServer } from '../serve/index.js';
import { gnuTime, parseTimeMaxRssKiB, parseTimeVerboseMaxRssKiB, wimlibRssMeter } from './deploy-apply.js';
import { CLI, startUserNetServer, userNetBoot } from './netboot.js';
import { watchLargestFile } from './scratch.js';
import { median } from './stats.js';

const exec = promisify(execFile);
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** The PE's memory: less than the image, so only a streamed deploy can succeed. */
export const STREAM_VM_MEMORY_MIB = 1024;
/** How long the VM may take to deploy before the bench gives up on it and keeps the host figures. */
const VM_DEPLOY_TIMEOUT_MS = 600_000;

export interface StreamMemoryFigures {
  /** The pipable WIM: random files (incompressible), captured --compress none. */
  imageBytes: number;
  compression: 'none';
  /** The VM: this much memory, less than imageBytes, and a sparse qcow2 of vmDiskBytes. */
  vmMemoryMiB: number;
  vmDiskBytes: number;
  /** QEMU start (network boot over HTTP) to `deployed`; null when the VM did not get there (notMeasured says why). */
  seconds: number | null;
  /** The VM reached `deployed`; false when the agent failed or the PE died; null when not run to the end. */
  deployed: boolean | null;
  /** The same deploy on the host, the CLI from a local imagepe serve over HTTP: median wall seconds. */
  hostSeconds: number;
  /** Median peaks, MiB, of that host deploy (see docs/bench.md for what each one covers). */
  hostPeakRssMiB: { agent: number; wimlibImagex: number | null };
  /** The largest regular file seen in the host deploy's TMPDIR while it ran (the mounted target left out); 0 when the image was streamed. */
  scratchLargestFileBytes: number;
  samples: { hostSeconds: number[]; agentPeakRssMiB: number[]; wimlibImagexPeakRssMiB: number[]; scratchLargestFileBytes: number[] };
}

export interface StreamMemoryResult {
  figures: StreamMemoryFigures;
  /** Fields of `figures` that are null, with the reason. */
  notMeasured: Record<string, string>;
}

const LAYOUT = `  layout:
    table: gpt
    partitions:
      - { name: root, size: rest, type: linux, format: ext4, label: root, mount: / }`;

function plan(url: string, sha256: string, extra: string): string {
  return `source: { url: "${url}", image: stream.wim, sha256: "${sha256}" }
target:
  disk: { pick: smallest, minSize: 1GiB }
${LAYOUT}
apply:
  - { partition: root }
bootloader: { type: none }
${extra}`;
}

/**
 * A big pipable image (2 GiB of random data, 1 GiB with --quick) deployed over HTTP: into a VM
 * with less memory than the image (one run: it is the proof, and it is slow under TCG), and on
 * the host by the CLI under GNU time (`runs` runs), with the deploy's TMPDIR watched for a copy
 * of the image. Everything is made in `work` and removed with it.
 */
export async function benchStreamMemory(build: BuildResult, work: string, o: { runs: number; quick: boolean; say: (text: string) => void }): Promise<StreamMemoryResult> {
  const notMeasured: Record<string, string> = {};
  const dataBytes = (o.quick ? 1 : 2) * GiB;
  const served = join(work, 'served');
  await mkdir(join(served, 'images'), { recursive: true });
  await mkdir(join(served, 'plans'), { recursive: true });
  o.say(`network: a pipable WIM of ${dataBytes / GiB} GiB of random data (--compress none)...`);
  const wim = join(served, 'images/stream.wim');
  await makeRandomWim(join(work, 'tree'), wim, dataBytes);
  const imageBytes = (await stat(wim)).size;
  const sha256 = await sha256File(wim);
  const diskBytes = (Math.ceil(imageBytes / GiB) + 1) * GiB;

  o.say(`network: the same deploy on the host, CLI under GNU time, from a local server, ${o.runs} run(s)...`);
  const host = await hostDeploys(build, served, work, { runs: o.runs, imageBytes, sha256, diskBytes });
  if (host.notMeasured) notMeasured['hostPeakRssMiB.wimlibImagex'] = host.notMeasured;

  o.say(`network: the image streamed into a ${STREAM_VM_MEMORY_MIB} MiB VM booted over HTTP (one run, up to ${VM_DEPLOY_TIMEOUT_MS / 60_000} min)...`);
  await writeFile(join(served, 'plans/default.yaml'), plan('server:/images', sha256, 'after: poweroff\n'));
  const vm = await vmDeploy(build, served, work, diskBytes, imageBytes);
  if (vm.why) notMeasured[vm.deployed === null ? 'deployed' : 'seconds'] = vm.why;
  if (vm.deployed === null) notMeasured.seconds = 'the VM did not finish: see deployed';

  return {
    figures: {
      imageBytes,
      compression: 'none',
      vmMemoryMiB: STREAM_VM_MEMORY_MIB,
      vmDiskBytes: diskBytes,
      seconds: vm.seconds,
      deployed: vm.deployed,
      hostSeconds: median(host.samples.hostSeconds),
      hostPeakRssMiB: { agent: median(host.samples.agentPeakRssMiB), wimlibImagex: host.samples.wimlibImagexPeakRssMiB.length ? median(host.samples.wimlibImagexPeakRssMiB) : null },
      scratchLargestFileBytes: Math.max(...host.samples.scratchLargestFileBytes),
      samples: host.samples,
    },
    notMeasured,
  };
}

/** Random files of 64 MiB (a little text beside them in /etc), captured pipable and uncompressed; the tree is removed afterwards. */
async function makeRandomWim(tree: string, wim: string, dataBytes: number): Promise<void> {
  await mkdir(join(tree, 'etc'), { recursive: true });
  await mkdir(join(tree, 'data'), { recursive: true });
  await writeFile(join(tree, 'etc/hostname'), 'stream\n');
  const chunk = 64 * MiB;
  for (let i = 0, left = dataBytes; left > 0; i++, left -= chunk) {
    await writeFile(join(tree, 'data', `random-${String(i).padStart(3, '0')}.bin`), randomBytes(Math.min(chunk, left)));
  }
  try {
    await exec(process.execPath, [CLI, 'capture', tree, wim, 'stream', '--compress', 'none', '--pipable'], { timeout: 1_800_000 });
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}

async function hostDeploys(
  build: BuildResult,
  served: string,
  work: string,
  o: { runs: number; imageBytes: number; sha256: string; diskBytes: number },
): Promise<{ samples: StreamMemoryFigures['samples']; notMeasured?: string }> {
  const time = await gnuTime();
  if (typeof time === 'string') throw new ImagepeError('NOT_FOUND', `network.streamMemory needs GNU time: ${time}`);
  const meter = await wimlibRssMeter(join(work, 'shim'));
  const samples: StreamMemoryFigures['samples'] = { hostSeconds: [], agentPeakRssMiB: [], wimlibImagexPeakRssMiB: [], scratchLargestFileBytes: [] };
  const server = await startServer({ dir: served, pxeDir: build.pxe.dir, dhcp: { mode: 'off' }, listen: '127.0.0.1', port: 0 });
  try {
    const planFile = join(work, 'host-plan.yaml');
    await writeFile(planFile, plan(`http://127.0.0.1:${server.http.port}/images`, o.sha256, 'logs: false\n'));
    for (let i = 0; i < o.runs; i++) {
      const disk = join(work, 'host-disk.img');
      await rm(disk, { force: true });
      const fh = await open(disk, 'w');
      await fh.truncate(o.diskBytes);
      await fh.close();
      const scratch = join(work, 'scratch');
      await rm(scratch, { recursive: true, force: true });
      await mkdir(scratch, { recursive: true });
      const timeFile = join(work, 'deploy-time.txt');
      if (typeof meter !== 'string') await writeFile(meter.output, '');
      let check = '';
      const watch = watchLargestFile(scratch);
      const t = performance.now();
      try {
        await run(time.path, ['-v', '-o', timeFile, process.execPath, CLI, 'deploy', '--plan', planFile, '--disk', disk, '--yes', '--json'], {
          what: 'deploying the streamed image on the host under GNU time',
          timeoutMs: 3_600_000,
          env: { TMPDIR: scratch, ...(typeof meter !== 'string' ? { PATH: `${meter.dir}:${process.env.PATH ?? ''}` } : {}) },
          onStdoutLine: (line) => {
            if (!line.includes('"check"') || !line.includes('"done"')) return;
            try {
              const e = JSON.parse(line) as { type?: string; step?: string; status?: string; detail?: string };
              if (e.type === 'step' && e.step === 'check' && e.status === 'done') check = e.detail ?? '';
            } catch {
              // Not an event line.
            }
          },
        });
      } finally {
        const seen = await watch.stop();
        samples.scratchLargestFileBytes.push(seen.bytes);
        // A copy of the image, or a good part of one, means it was downloaded instead of streamed.
        if (seen.bytes >= o.imageBytes / 2) throw new ImagepeError('VERIFY_FAILED', `the host deploy wrote ${seen.path} (${seen.bytes} bytes) to its scratch dir: the ${o.imageBytes}-byte image was not streamed`);
      }
      samples.hostSeconds.push((performance.now() - t) / 1000);
      if (!check.startsWith('streamed into apply')) throw new ImagepeError('VERIFY_FAILED', `the host deploy did not stream the image into apply (check: ${JSON.stringify(check)})`);
      samples.agentPeakRssMiB.push(parseTimeVerboseMaxRssKiB(await readFile(timeFile, 'utf8')) / 1024);
      if (typeof meter !== 'string') samples.wimlibImagexPeakRssMiB.push(parseTimeMaxRssKiB(await readFile(meter.output, 'utf8')) / 1024);
      await rm(disk, { force: true });
      await rm(scratch, { recursive: true, force: true });
    }
  } finally {
    await server.stop();
  }
  return { samples, ...(typeof meter === 'string' ? { notMeasured: meter } : {}) };
}

/** One network boot into a VM with STREAM_VM_MEMORY_MIB of memory, the plan streaming the image; a timeout is not a failure of the product, so it is reported, not thrown. */
async function vmDeploy(build: BuildResult, served: string, work: string, diskBytes: number, imageBytes: number): Promise<{ seconds: number | null; deployed: boolean | null; why?: string }> {
  const server = await startUserNetServer(served, build);
  const disk = join(work, 'vm-disk.qcow2');
  let streamed = 0;
  try {
    return await withVm(
      'streamed deploy',
      startVm({
        ...userNetBoot(server),
        mac: '52:54:00:00:b2:01',
        memoryMiB: STREAM_VM_MEMORY_MIB,
        disks: [{ path: disk, size: diskBytes }],
        workDir: join(work, 'vm'),
        lifetimeMs: VM_DEPLOY_TIMEOUT_MS + 180_000,
        onEvent: (e) => {
          if (e.type === 'progress' && e.step === 'apply' && e.unit === 'bytes') streamed = e.done;
        },
      }),
      async (vm) => {
        try {
          await vm.waitForLine(/"type":"(deployed|failed|error)"/, VM_DEPLOY_TIMEOUT_MS);
        } catch (e) {
          const { code, message } = e as ImagepeError;
          const at = `${(streamed / MiB).toFixed(0)} of ${(imageBytes / MiB).toFixed(0)} MiB applied`;
          if (code === 'COMMAND_TIMEOUT') return { seconds: null, deployed: null, why: `the VM did not reach deployed within ${VM_DEPLOY_TIMEOUT_MS / 1000} s under ${vm.accel.accel} (${at}); the host figures stand` };
          // The PE died (a kernel panic, out of memory) or QEMU exited: that is the answer, not a bench failure.
          return { seconds: null, deployed: false, why: `${message.split('\n')[0]} (${at})` };
        }
        const seconds = vm.elapsedSeconds();
        const end = vm.events.find((e) => e.type === 'deployed' || e.type === 'failed' || e.type === 'error')!;
        if (end.type !== 'deployed') return { seconds: null, deployed: false, why: `the agent ended with ${JSON.stringify(end).slice(0, 400)}` };
        const check = vm.events.find((e) => e.type === 'step' && e.step === 'check' && e.status === 'done');
        const detail = check?.type === 'step' ? (check.detail ?? '') : '';
        if (!detail.startsWith('streamed into apply')) throw new ImagepeError('VERIFY_FAILED', `the VM deployed without streaming the image (check: ${JSON.stringify(detail)})`);
        await vm.waitForExit(120_000).catch(() => undefined);
        return { seconds, deployed: true };
      },
    );
  } finally {
    await server.stop();
    await rm(disk, { force: true });
  }
}
