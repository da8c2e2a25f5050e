import { lstat, open, readdir, readFile, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { fileSignatureBytes, ImagepeError, pathKind, run, SHIM_SECOND_STAGE, SIGNED_GRUB_PREFIX } from '../../../core/index.js';
import * as imaging from '../../../imaging/index.js';
import * as partition from '../../../partition/index.js';
import { fatFileExists } from '../../bootloader/index.js';
import type { DeployPlan } from '../../plan/index.js';
import { bootProblems, type BootFacts } from '../../system/boot-check.js';
import { systemHas } from '../../system/chroot.js';
import { bootEntries } from '../../system/grub.js';
import { initramfsResume as readInitramfsResume } from '../../system/initramfs.js';
import { defineStep, need, type StepIO } from '../../steps/index.js';
import { bootPartition, deployedVolumes, espOf, partitionNamed, systemChroot, treeMountAt, type DeployContext } from '../context.js';
import { DEPLOYED_MARKER, IN_PROGRESS_MARKER, writeMarker } from '../markers.js';
import { hostKeys, linuxApplied } from './specialize.js';

const FILE_SAMPLE = 400;

/**
 * Everything read back before `deployed`: the table and filesystems against the layout, a sample
 * of each image's files on the disk, the bootloader's files and boot code. The deployed marker
 * is written last, and the run lets go of the disk (unmounted, detached) before this step is
 * done, so a disk that cannot be released cleanly is not reported deployed.
 */
export const verifyStep = defineStep({
  name: 'verify',
  title: 'Verified',
  writesDisk: true,
  releasesResources: true,
  async run(ctx: DeployContext, io) {
    const { plan, grub } = ctx;
    const device = need(ctx.device, 'the disk device');
    const layout = need(ctx.layout, 'the layout');
    const applied = need(ctx.applied, 'the partitions');
    const images = need(ctx.images, 'the images');
    const targetRoot = need(ctx.targetRoot, 'the target tree');
    const { runOpts } = io;
    const checks: string[] = [];
    const table = (JSON.parse((await run('sfdisk', ['--json', device], runOpts(`reading the partition table of ${device}`))).stdout) as partition.SfdiskJson).partitiontable;
    const filesystems = new Map<number, Record<string, string>>();
    // The table's partitions; logical volumes were read back at format and are judged by boot readiness.
    const tablePartitions = applied.filter((p) => !p.volumeGroup);
    for (const p of tablePartitions) filesystems.set(p.number, await partition.probeFilesystem(p.node, runOpts));
    const diffs = partition.compareWithLayout(layout, table, filesystems, new Map(tablePartitions.map((p) => [p.number, p.node]))).differences;
    if (diffs.length) throw new ImagepeError('VERIFY_FAILED', `${ctx.diskShown} no longer matches the layout:\n${diffs.map((d) => `  - ${d}`).join('\n')}`);
    checks.push('table');
    for (const [i, entry] of plan.apply.entries()) {
      const part = partitionNamed(ctx, entry.partition);
      if (part.fsType === 'ntfs') {
        const r = await run('ntfsls', ['--force', part.node], runOpts(`listing ${part.node}`));
        if (!r.stdout.trim()) throw new ImagepeError('VERIFY_FAILED', `${part.name} holds no files after apply`);
        continue;
      }
      if (!ctx.wimPath) {
        // Streamed: no local WIM to list. wimlib checked each file's SHA-1 as it arrived; what is
        // left to catch is a tree that is not all there (an apply into the wrong mount).
        const { counted, listed } = await countAgainstImage(images[i]!, join(targetRoot, part.mount!), part.mount!, layout);
        if (counted < listed * STREAMED_MIN_SHARE) throw new ImagepeError('VERIFY_FAILED', `${part.name} holds ${counted} files and folders, but image ${images[i]!.index} lists ${listed}`);
        checks.push(`${counted} of ${listed} entries on ${part.name}`);
        continue;
      }
      const missing = await missingFiles(need(ctx.wimPath, 'the image'), images[i]!.index, join(targetRoot, part.mount!), part.mount!, plan, layout, ctx.changedPaths, io.signal);
      if (missing.checked === 0) throw new ImagepeError('VERIFY_FAILED', `image ${images[i]!.index} lists no files to check on ${part.name}`);
      if (missing.paths.length) {
        throw new ImagepeError('VERIFY_FAILED', `${missing.paths.length} of ${missing.checked} sampled files of image ${images[i]!.index} are missing on ${part.name}: ${missing.paths.slice(0, 5).join(', ')}`);
      }
      checks.push(`${missing.checked} files on ${part.name}`);
    }
    if (grub) {
      const bootPart = bootPartition(ctx);
      const cfg = await readFile(join(targetRoot, bootPart.mount!, grub.grubCfg), 'utf8').catch(() => '');
      // update-grub puts --hint options between --set=root and the UUID.
      const findsBoot = cfg.split('\n').some((l) => /^\s*search\b.*--set=root\b/.test(l) && l.includes(bootPart.uuid!));
      if (!cfg.includes(`root=${grub.root} `) || !findsBoot) throw new ImagepeError('VERIFY_FAILED', `grub.cfg is missing or does not name root=${grub.root}`);
      const esp = espOf(ctx);
      if (grub.efiBinary && !(await fatFileExists(partitionNamed(ctx, esp!.name).node, grub.efiBinary, io.signal))) throw new ImagepeError('VERIFY_FAILED', `${grub.efiBinary} is not on the ESP`);
      // shim starts only what sits beside it, and the signed GRUB reads only its prefix's config.
      if (grub.signedChain) {
        for (const f of [`/EFI/BOOT/${SHIM_SECOND_STAGE}`, `${SIGNED_GRUB_PREFIX.grubDisk}/grub.cfg`]) {
          if (!(await fatFileExists(partitionNamed(ctx, esp!.name).node, f, io.signal))) throw new ImagepeError('VERIFY_FAILED', `${f} is not on the ESP: shim's BOOTX64.EFI would have nothing to start`);
        }
        // Not an error: with Secure Boot off the chain starts any kernel.
        const signature = grub.kernel ? await fileSignatureBytes(join(targetRoot, bootPart.mount!, grub.kernel)).catch(() => undefined) : undefined;
        if (signature === 0) io.warn(`the kernel ${grub.kernel} carries no signature: with Secure Boot on, the signed GRUB will refuse to start it`);
      }
      if (grub.bios) {
        const mbr = await readBytes(device, 0, 440);
        if (mbr.every((b) => b === 0)) throw new ImagepeError('VERIFY_FAILED', `the MBR of ${ctx.diskShown} holds no boot code`);
        const biosBoot = layout.partitions.find((p) => p.type === 'bios-boot');
        if (biosBoot && (await readBytes(device, biosBoot.start * layout.sectorSize, 512)).every((b) => b === 0)) {
          throw new ImagepeError('VERIFY_FAILED', 'the bios-boot partition holds no GRUB core image');
        }
      }
      checks.push('bootloader');
    }
    if (linuxApplied(ctx)) {
      const problems = bootProblems(await bootFacts(ctx, io));
      if (problems.length) throw new ImagepeError('VERIFY_FAILED', `the deployed system would not boot cleanly:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { hint: 'Fix the image (or the plan\'s layout) so each of these names something on the deployed disk, or mark mounts that may be missing nofail.' });
      checks.push('boot readiness');
      // Written last: a disk with this file went through every step.
      await rm(join(targetRoot, IN_PROGRESS_MARKER), { force: true });
      await writeMarker(targetRoot, DEPLOYED_MARKER, { source: plan.source.url, image: plan.source.image, images: images.map((i) => ({ index: i.index, name: i.name })), sha256: plan.source.sha256 ?? null, hostname: ctx.hostname ?? null, machineId: ctx.machineId ?? null, deployedAt: new Date().toISOString() });
      checks.push(DEPLOYED_MARKER);
    }
    return checks.join(', ');
  },
});

// Specialize and the bootloader remove and replace some files (host keys, /boot/grub); a tree
// missing more than this share of the image's entries was not applied whole.
const STREAMED_MIN_SHARE = 0.95;

/**
 * Counts files, folders and links in the applied tree of one partition against the image's
 * own counts (its XML: files and directories), without crossing into other partitions' mount
 * points or the API filesystems the chroot mounted.
 */
async function countAgainstImage(image: imaging.WimImage, dir: string, mount: string, layout: partition.ResolvedLayout): Promise<{ counted: number; listed: number }> {
  const otherMounts = new Set(
    [...layout.partitions, ...partition.logicalVolumesOf(layout)]
      .flatMap((p) => partition.mountPointsOf(p))
      .filter((m): m is string => !!m && m.startsWith('/') && m !== mount && (mount === '/' || m.startsWith(`${mount}/`)))
      .map((m) => join(dir, m.slice(mount === '/' ? 0 : mount.length))),
  );
  if (mount === '/') for (const api of ['dev', 'proc', 'sys', 'run']) otherMounts.add(join(dir, api));
  let counted = 1;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      counted++;
      if (e.isDirectory() && !otherMounts.has(p)) await walk(p);
    }
  };
  await walk(dir);
  return { counted, listed: image.fileCount + image.directoryCount };
}

/**
 * Samples the image's listing and checks each path exists in the deployed tree. Paths that
 * remap and specialize rename or remove on purpose, and those under other partitions' mount points (the ESP is
 * written with mtools, not mounted) are left out.
 */
async function missingFiles(wimPath: string, index: number, dir: string, mount: string, plan: DeployPlan, layout: partition.ResolvedLayout, changed: ReadonlySet<string>, signal: AbortSignal | undefined): Promise<{ checked: number; paths: string[] }> {
  const listing = (await imaging.dir(wimPath, index, signal ? { signal } : {})) as string[];
  const otherMounts = [...layout.partitions, ...partition.logicalVolumesOf(layout)].flatMap((p) => partition.mountPointsOf(p)).filter((m): m is string => !!m && m.startsWith('/') && m !== mount && (mount === '/' || m.startsWith(`${mount}/`)));
  const skippedPath = (p: string) =>
    otherMounts.some((m) => p.startsWith(`${posix.join(mount, m.slice(mount.length))}/`) || p === m) ||
    (plan.specialize.removeSshHostKeys && /^\/etc\/ssh\/ssh_host_/.test(p)) ||
    p === '/var/lib/dbus/machine-id' ||
    // What remap renamed and specialize removed on purpose (a swap unit, a MAC-bound .link).
    changed.has(p) ||
    // The running system mounts over these (and the chroot the image's tools ran in does now):
    // what an image holds there is never seen.
    /^\/(dev|proc|sys|run)\//.test(p) ||
    // The bootloader step installs GRUB afresh; grub-install replaces what an image captured
    // from a deployed system carries there (its locale files, say).
    (plan.bootloader.type === 'grub' && p.startsWith('/boot/grub/')) ||
    p === '/';
  const candidates = listing.filter((p) => !skippedPath(mount === '/' ? p : posix.join(mount, p)));
  const step = Math.max(1, Math.ceil(candidates.length / FILE_SAMPLE));
  const sample = candidates.filter((_, i) => i % step === 0);
  const paths: string[] = [];
  for (const p of sample) {
    if (!(await lstat(join(dir, p)).then(() => true, () => false))) paths.push(p);
  }
  return { checked: sample.length, paths };
}

/**
 * What boot readiness is judged on, read from the deployed system: the grub.cfg the bootloader
 * step wrote, or a raw image's own (/boot/grub/grub.cfg on the filesystem holding /boot).
 */
export async function bootFacts(ctx: DeployContext, io: StepIO): Promise<BootFacts> {
  const root = need(ctx.targetRoot, 'the target tree');
  const read = (p: string) => readFile(join(root, p), 'utf8').catch(() => undefined);
  const bootPart = bootPartition(ctx);
  const bootMount = join(root, bootPart.mount === '/' ? '' : bootPart.mount);
  // GRUB names files from the top of the filesystem; a btrfs subvolume mounted here (subvol=@) is /@ to it.
  const subvol = treeMountAt(ctx, bootPart.mount)?.subvolume;
  const inTree = (p: string) => (subvol && p.startsWith(`/${subvol}/`) ? p.slice(subvol.length + 1) : p);
  const grubCfgPath = ctx.grub?.grubCfg ?? (ctx.raw ? (bootPart.mount === '/boot' ? '/grub/grub.cfg' : '/boot/grub/grub.cfg') : undefined);
  const grubCfg = grubCfgPath ? await readFile(join(bootMount, grubCfgPath), 'utf8').catch(() => undefined) : undefined;
  const entries = grubCfg ? bootEntries(grubCfg) : [];
  const existing = new Set<string>();
  for (const e of entries) for (const p of [e.kernel, e.initrd]) if (p && (await pathKind(join(bootMount, inTree(p)))) === 'file') existing.add(p);
  const initramfsResume: { initrd: string; value: string | undefined }[] = [];
  if (await systemHas(root, 'usr/bin/unmkinitramfs')) {
    const chroot = await systemChroot(ctx, io);
    for (const initrd of new Set(entries.map((e) => e.initrd).filter((p): p is string => !!p && existing.has(p)))) {
      const inSystem = bootPart.mount === '/' ? inTree(initrd) : `${bootPart.mount}${inTree(initrd)}`;
      initramfsResume.push({ initrd: inSystem, value: await readInitramfsResume(chroot, inSystem, io.signal) });
    }
  }
  const { specialize } = ctx.plan;
  const rootVolume = treeMountAt(ctx, '/')?.partition;
  return {
    volumes: deployedVolumes(ctx),
    lvmRoot: rootVolume?.volumeGroup ? { volume: rootVolume.name, tools: (await systemHas(root, 'sbin/lvm')) || (await systemHas(root, 'usr/sbin/lvm')) } : undefined,
    fstab: await read('etc/fstab'),
    crypttab: await read('etc/crypttab'),
    grubCfg: grubCfg !== undefined && grubCfgPath ? { path: bootPart.mount === '/' ? grubCfgPath : `${bootPart.mount}${grubCfgPath}`, text: grubCfg } : undefined,
    bootFileExists: (p) => existing.has(p),
    initramfsResume,
    ssh: { server: await systemHas(root, 'usr/sbin/sshd'), wanted: specialize.sshHostKeys === 'new' || !specialize.removeSshHostKeys, hostKeys: await hostKeys(root) },
  };
}

async function readBytes(device: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(device, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf;
  } finally {
    await fh.close();
  }
}
