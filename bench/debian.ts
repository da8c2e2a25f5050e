import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as imaging from '../imaging/index.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { DEBIAN_SEPARATE_LAYOUT, makeDebianReferenceDisk } from '../test-support/debian-reference.js';
import { bootReport, planPe, runAgent, SHARE_URL } from '../test-support/pe-flow.js';
import { timed } from './stats.js';

/**
 * A real Debian 12 (debootstrap, linux-image-amd64) through the PE, once: each figure is one
 * sample. The reference is the multi-volume one (separate /boot and /home, swap after root, on
 * 6 GiB), deployed with its recorded layout re-planned for a 3 GiB disk.
 */
export interface DebianFigures {
  runs: 1;
  accel: string;
  /** Building the reference disk from the cached debootstrap tree (the tree itself is built once and cached). */
  referenceBuildSeconds: number;
  /** QEMU start to the PE's `captured`: PE boot, the system's filesystems found and measured, generalize, capture (xpress, integrity table), verify. */
  captureSeconds: number;
  /** The WIM on the share, and the files in the image. */
  wimBytes: number;
  imageBytes: number;
  /** QEMU start to the PE's `deployed` (UEFI, layout from the image re-planned for a smaller disk, initramfs rebuilt). */
  deploySeconds: number;
  /** The deploy's initramfs step alone: the image's update-initramfs under this machine's emulation. */
  initramfsSeconds: number;
  /** QEMU start of the deployed disk to its report unit seeing multi-user.target reached. */
  firstBootSeconds: number;
  /** What `systemctl is-system-running --wait` said on that first boot. */
  state: string;
  /** capture + deploy + first boot; the target is at most 180 s. */
  totalSeconds: number;
}

const JOB_TIMEOUT_MS = 1_800_000;

/** Builds the reference, captures it through the PE, deploys it through the PE (UEFI) and boots the copy. */
export async function benchDebian(work: string): Promise<DebianFigures> {
  const dir = join(work, 'debian');
  const share = join(dir, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  const [captureIso, deployIso] = await Promise.all([planPe('capture', 'bench'), planPe('deploy', 'bench')]);
  const image = join(dir, 'reference.raw');
  const referenceBuildSeconds = await timed(() => makeDebianReferenceDisk(image, { layout: DEBIAN_SEPARATE_LAYOUT, sizeBytes: 6 * 1024 ** 3 }));

  await writeFile(join(share, 'capture.yaml'), `kind: capture\ndestination: { url: ${SHARE_URL}, file: images/debian.wim, name: debian-12, compression: xpress, integrity: true }\nafter: poweroff\n`);
  const captured = await withVm('bench capture', startVm({ iso: captureIso.iso, disks: [{ path: image, format: 'raw' }], share, workDir: join(dir, 'capture'), lifetimeMs: JOB_TIMEOUT_MS }), (vm) => runAgent(vm, 'captured', JOB_TIMEOUT_MS));
  const wim = join(share, 'images/debian.wim');
  const info = await imaging.info(wim);

  await writeFile(join(share, 'deploy.yaml'), `source: { url: ${SHARE_URL}, image: images/debian.wim }\ntarget: { disk: { pick: smallest, minSize: 2GiB }, layout: from-image }\nspecialize: { hostname: "bench-{mac}" }\nafter: poweroff\n`);
  const disk = join(dir, 'deployed.qcow2');
  let accel = '';
  const deployed = await withVm('bench deploy', startVm({ iso: deployIso.iso, uefi: true, disks: [{ path: disk, size: 3 * 1024 ** 3 }], share, workDir: join(dir, 'deploy'), lifetimeMs: JOB_TIMEOUT_MS }), (vm) => {
    accel = vm.accel.accel;
    return runAgent(vm, 'deployed', JOB_TIMEOUT_MS);
  });
  const report = await bootReport('bench', disk, { format: 'qcow2', uefi: true, workDir: join(dir, 'boot'), timeoutMs: 600_000 });
  const firstBootSeconds = Number(report.seconds);
  return {
    runs: 1,
    accel,
    referenceBuildSeconds,
    captureSeconds: captured.seconds,
    wimBytes: info.sizeBytes,
    imageBytes: info.images[0]!.totalBytes,
    deploySeconds: deployed.seconds,
    initramfsSeconds: deployed.stepSeconds.initramfs ?? 0,
    firstBootSeconds,
    state: report.state ?? 'unknown',
    totalSeconds: captured.seconds + deployed.seconds + firstBootSeconds,
  };
}
