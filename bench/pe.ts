import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { benchDeployApply, type DeployApplyFigures } from '../agent/deploy/bench.js';
import { buildPe, parseBuildConfig } from '../builder/index.js';
import { run } from '../core/index.js';
import { capture, generalize } from '../imaging/index.js';
import { startVm } from '../qemu-tests/index.js';
import { makeReferenceSystem, referencePlan } from '../qemu-tests/reference-system.js';
import { median, timed } from './stats.js';

export interface BuildFigures {
  coldSeconds: number;
  warmSeconds: number;
  isoBytes: number;
  initrdBytes: number;
  coreInitrdBytes: number;
}

export interface BootFigures {
  accel: string;
  biosCdToReadySeconds: number;
  uefiCdToReadySeconds: number;
  samples: { bios: number[]; uefi: number[] };
}

export interface DeployFigures {
  /** QEMU start of the PE to the deployed disk's own init printing its marker, UEFI. */
  endToEndSeconds: number;
  peToDeployedSeconds: number;
  deployedBootSeconds: number;
  apply: DeployApplyFigures;
}

const PLAN_URL = 'smb://10.0.2.4/qemu/plan.yaml';

/** Cold: an empty cache; warm: the same inputs again, which the cache answers. */
export async function benchBuild(work: string): Promise<{ figures: BuildFigures; iso: string }> {
  const config = parseBuildConfig({ kernelArgs: ['quiet', 'loglevel=3', 'panic=10', `imagepe.plan=${PLAN_URL}`] });
  const cacheDir = join(work, 'build-cache');
  let result = await buildPe({ config, outputDir: join(work, 'pe'), cacheDir });
  const coldSeconds = result.durationMs / 1000;
  const warmSeconds = await timed(async () => {
    result = await buildPe({ config, outputDir: join(work, 'pe'), cacheDir });
  });
  return {
    iso: result.iso,
    figures: { coldSeconds, warmSeconds, isoBytes: result.isoBytes, initrdBytes: result.initrdBytes, coreInitrdBytes: result.coreInitrdBytes },
  };
}

/** Wall seconds from QEMU's start to the agent's ready event, as a user waits for it. */
export async function benchBoot(iso: string, work: string, runs: number): Promise<BootFigures> {
  const samples = { bios: [] as number[], uefi: [] as number[] };
  let accel = '';
  for (let i = 0; i < runs; i++) {
    for (const uefi of [false, true]) {
      const vm = await startVm({ iso, uefi, disks: [{ path: join(work, `boot-${i}-${uefi}.qcow2`), size: '2GiB' }], workDir: join(work, `boot-${i}-${uefi}`), lifetimeMs: 180_000 });
      try {
        await vm.waitForEvent('ready', 150_000);
        (uefi ? samples.uefi : samples.bios).push(vm.elapsedSeconds());
        accel = vm.accel.accel;
      } finally {
        await vm.stop();
      }
    }
  }
  return { accel, biosCdToReadySeconds: median(samples.bios), uefiCdToReadySeconds: median(samples.uefi), samples };
}

/** The whole product once (UEFI): the PE deploys from the SMB share, then the disk boots alone. */
export async function benchDeploy(iso: string, work: string, runs: number, dataset: string): Promise<DeployFigures> {
  const share = join(work, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  const ref = await makeReferenceSystem(join(work, 'reference'));
  await generalize(ref.root);
  await capture(ref.root, join(share, 'images/reference.wim'), { name: 'reference', compression: 'xpress' });
  await writeFile(join(share, 'plan.yaml'), referencePlan({ hostname: 'bench-{mac}' }));
  const disk = join(work, 'deploy.qcow2');
  const pe = await startVm({ iso, uefi: true, disks: [{ path: disk, size: '2GiB' }], share, workDir: join(work, 'deploy-pe'), lifetimeMs: 600_000 });
  let peToDeployedSeconds: number;
  try {
    await pe.waitForEvent('deployed', 480_000);
    await pe.waitForExit(60_000);
    peToDeployedSeconds = pe.elapsedSeconds();
  } finally {
    await pe.stop();
  }
  const booted = await startVm({ uefi: true, disks: [{ path: disk }], workDir: join(work, 'deploy-boot'), lifetimeMs: 300_000 });
  let deployedBootSeconds: number;
  try {
    await booted.waitForLine(/DEPLOYED hostname=/, 240_000);
    deployedBootSeconds = booted.elapsedSeconds();
  } finally {
    await booted.stop();
  }
  // Throughput is measured on a WIM worth timing: the generated OS-shaped tree of the WIM figures.
  const big = join(share, 'images/dataset.wim');
  await rm(big, { force: true });
  await run('wimlib-imagex', ['capture', dataset, big, 'dataset', '--compress=XPRESS', '--unix-data'], { timeoutMs: 1_800_000 });
  const apply = await benchDeployApply(share, 'images/dataset.wim', join(work, 'deploy-apply'), runs);
  return { endToEndSeconds: peToDeployedSeconds + deployedBootSeconds, peToDeployedSeconds, deployedBootSeconds, apply };
}
