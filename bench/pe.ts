import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildPe, parseBuildConfig } from '../builder/index.js';
import { capture, generalize } from '../imaging/index.js';
import { startVm } from '../qemu-tests/index.js';
import { makeReferenceSystem, referencePlan } from '../test-support/reference-system.js';
import { median, timed } from './stats.js';

export interface BuildFigures {
  runs: number;
  coldSeconds: number;
  warmSeconds: number;
  isoBytes: number;
  initrdBytes: number;
  coreInitrdBytes: number;
  samples: { cold: number[]; warm: number[] };
}

/**
 * Where a boot's time goes, seconds, from the serial console's milestones: QEMU start to GRUB
 * starting the entry (`imagepe: loading the kernel`: firmware, GRUB, the menu); then to /init's
 * first line (GRUB reading kernel and initramfs, the kernel decompressing and starting); to the
 * payload mounted (storage drivers, the medium found, the squashfs copied to RAM); to the agent
 * being started (the remaining drivers, the network started); to `ready` (Node.js start-up and
 * the agent's first look at the disks).
 */
export interface BootPhases {
  firmwareAndMenu: number;
  kernelStart: number;
  payload: number;
  drivers: number;
  agentStart: number;
}

export const BOOT_MILESTONES: readonly [keyof BootPhases, RegExp][] = [
  ['firmwareAndMenu', /imagepe: loading the kernel/],
  ['kernelStart', /imagepe: starting the preinstallation environment/],
  ['payload', /imagepe: payload mounted/],
  ['drivers', /imagepe: mode: /],
];

/** The phases of one boot from (seconds since start, line) pairs and the ready time; null when a milestone is missing. */
export function bootPhases(lines: readonly { at: number; line: string }[], readyAt: number): BootPhases | null {
  const times: number[] = [];
  for (const [, re] of BOOT_MILESTONES) {
    const hit = lines.find((l) => re.test(l.line));
    if (!hit) return null;
    times.push(hit.at);
  }
  const [a, b, c, d] = times as [number, number, number, number];
  return { firmwareAndMenu: a, kernelStart: b - a, payload: c - b, drivers: d - c, agentStart: readyAt - d };
}

export type BootKind = 'bios' | 'uefi' | 'secureBoot';

export interface BootFigures {
  runs: number;
  accel: string;
  biosCdToReadySeconds: number;
  uefiCdToReadySeconds: number;
  /** UEFI with Secure Boot enforced (OVMF with Microsoft's keys on a q35 with SMM), through shim and the signed GRUB. */
  secureBootCdToReadySeconds: number;
  /** Medians of each phase for each kind of boot (each phase its own median). */
  phases: Record<BootKind, BootPhases | null>;
  samples: { bios: number[]; uefi: number[]; secureBoot: number[] };
}

export interface EndToEndFigures {
  runs: number;
  /** QEMU start of the PE to the deployed disk's own init printing its marker, UEFI. */
  seconds: number;
  peToDeployedSeconds: number;
  deployedBootSeconds: number;
  /** Per run; each median above is taken on its own list, so they need not add up. */
  samples: { endToEnd: number[]; peToDeployed: number[]; deployedBoot: number[] };
}

const PLAN_URL = 'smb://10.0.2.4/qemu/plan.yaml';

/** Cold: an empty cache (a new one each run); warm: the same inputs again, which the cache answers. */
export async function benchBuild(work: string, runs: number): Promise<{ figures: BuildFigures; iso: string }> {
  const config = parseBuildConfig({ kernelArgs: ['quiet', 'loglevel=3', 'panic=10', `imagepe.plan=${PLAN_URL}`] });
  const cold: number[] = [];
  const warm: number[] = [];
  let result: Awaited<ReturnType<typeof buildPe>> | undefined;
  for (let i = 0; i < runs; i++) {
    const cacheDir = join(work, `build-cache-${i}`);
    const first = await buildPe({ config, outputDir: join(work, 'pe'), cacheDir });
    cold.push(first.durationMs / 1000);
    warm.push(
      await timed(async () => {
        result = await buildPe({ config, outputDir: join(work, 'pe'), cacheDir });
      }),
    );
    // The ISO is copied out to outputDir, so the cache (the size of two ISOs) can go.
    await rm(cacheDir, { recursive: true, force: true });
  }
  if (!result) throw new Error('benchBuild needs at least one run');
  return {
    iso: result.iso,
    figures: { runs, coldSeconds: median(cold), warmSeconds: median(warm), isoBytes: result.isoBytes, initrdBytes: result.initrdBytes, coreInitrdBytes: result.coreInitrdBytes, samples: { cold, warm } },
  };
}

/** Wall seconds from QEMU's start to the agent's ready event, as a user waits for it. */
export async function benchBoot(iso: string, work: string, runs: number): Promise<BootFigures> {
  const kinds: BootKind[] = ['bios', 'uefi', 'secureBoot'];
  const samples: BootFigures['samples'] = { bios: [], uefi: [], secureBoot: [] };
  const phaseSamples: Record<BootKind, BootPhases[]> = { bios: [], uefi: [], secureBoot: [] };
  let accel = '';
  for (let i = 0; i < runs; i++) {
    for (const kind of kinds) {
      const lines: { at: number; line: string }[] = [];
      let started = Date.now();
      const vm = await startVm({
        iso,
        uefi: kind !== 'bios',
        secureBoot: kind === 'secureBoot',
        disks: [{ path: join(work, `boot-${i}-${kind}.qcow2`), size: '2GiB' }],
        workDir: join(work, `boot-${i}-${kind}`),
        lifetimeMs: 180_000,
        onSerialLine: (line) => lines.push({ at: (Date.now() - started) / 1000, line }),
      });
      started = vm.startedAt;
      try {
        await vm.waitForEvent('ready', 150_000);
        const at = vm.elapsedSeconds();
        samples[kind].push(at);
        const phases = bootPhases(lines, at);
        if (phases) phaseSamples[kind].push(phases);
        accel = vm.accel.accel;
      } finally {
        await vm.stop();
      }
    }
  }
  const medianPhases = (list: BootPhases[]): BootPhases | null =>
    list.length === 0 ? null : (Object.fromEntries(BOOT_MILESTONES.map(([k]) => k).concat('agentStart').map((k) => [k, median(list.map((p) => p[k as keyof BootPhases]))])) as unknown as BootPhases);
  return {
    runs,
    accel,
    biosCdToReadySeconds: median(samples.bios),
    uefiCdToReadySeconds: median(samples.uefi),
    secureBootCdToReadySeconds: median(samples.secureBoot),
    phases: { bios: medianPhases(phaseSamples.bios), uefi: medianPhases(phaseSamples.uefi), secureBoot: medianPhases(phaseSamples.secureBoot) },
    samples,
  };
}

/** The whole product (UEFI), `runs` times on a new disk: the PE deploys from the SMB share, then the disk boots alone. */
export async function benchEndToEnd(iso: string, work: string, runs: number): Promise<EndToEndFigures> {
  const share = join(work, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  const ref = await makeReferenceSystem(join(work, 'reference'));
  await generalize(ref.root);
  await capture(ref.root, join(share, 'images/reference.wim'), { name: 'reference', compression: 'xpress' });
  await writeFile(join(share, 'plan.yaml'), referencePlan({ hostname: 'bench-{mac}' }));
  const samples = { endToEnd: [] as number[], peToDeployed: [] as number[], deployedBoot: [] as number[] };
  for (let i = 0; i < runs; i++) {
    // startVm creates a disk only where none exists: a new path per run keeps every deploy on a blank disk.
    const disk = join(work, `deploy-${i}.qcow2`);
    const pe = await startVm({ iso, uefi: true, disks: [{ path: disk, size: '2GiB' }], share, workDir: join(work, `deploy-pe-${i}`), lifetimeMs: 600_000 });
    let peToDeployed: number;
    try {
      await pe.waitForEvent('deployed', 480_000);
      await pe.waitForExit(60_000);
      peToDeployed = pe.elapsedSeconds();
    } finally {
      await pe.stop();
    }
    const booted = await startVm({ uefi: true, disks: [{ path: disk }], workDir: join(work, `deploy-boot-${i}`), lifetimeMs: 300_000 });
    let deployedBoot: number;
    try {
      await booted.waitForLine(/DEPLOYED hostname=/, 240_000);
      deployedBoot = booted.elapsedSeconds();
    } finally {
      await booted.stop();
    }
    samples.peToDeployed.push(peToDeployed);
    samples.deployedBoot.push(deployedBoot);
    samples.endToEnd.push(peToDeployed + deployedBoot);
    await rm(disk, { force: true });
  }
  return { runs, seconds: median(samples.endToEnd), peToDeployedSeconds: median(samples.peToDeployed), deployedBootSeconds: median(samples.deployedBoot), samples };
}
