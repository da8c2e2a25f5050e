import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildModuleIndex, selectModules, writeCpio, type FileTree } from '../builder/index.js';
import type { LayoutInput } from '../partition/index.js';
import { HOST_BUSYBOX, makeReferenceTree, type ReferenceTree } from './reference-tree.js';

/**
 * The disk layout the tests deploy the reference system with: GPT with an ESP and a bios-boot
 * partition, so the disk boots on UEFI and on BIOS, and the root filling the rest.
 */
export const REFERENCE_LAYOUT = {
  table: 'gpt',
  partitions: [
    { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat', label: 'ESP', mount: '/boot/efi' },
    { name: 'bios-boot', size: '1MiB', type: 'bios-boot' },
    { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root', mount: '/' },
  ],
} as const satisfies LayoutInput;

/** A reference tree with a kernel, whose machine-id is the one it had before it was generalized. */
export interface ReferenceSystem extends ReferenceTree {
  kernelVersion: string;
}

const BUSYBOX_APPLETS = ['sh', 'cat', 'tr', 'echo', 'mount', 'umount', 'poweroff', 'sleep', 'ls', 'modprobe', 'findfs', 'switch_root', 'mkdir', 'sync'];

// The deployed disk boots the distribution kernel, whose disk and filesystem drivers are all
// modules, so like any real system it needs an initramfs: this one loads them, finds the root
// by the UUID GRUB passes, and hands over to the system's own init.
const INITRD_INIT = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_pci virtio_blk ahci sd_mod crc32c_generic ext4; do modprobe "$m" || echo "initrd: modprobe $m failed"; done
root=
for arg in $(cat /proc/cmdline); do
  case "$arg" in root=*) root="\${arg#root=}" ;; esac
done
dev=
for i in $(seq 1 50); do
  dev=$(findfs "$root" 2>/dev/null) && [ -n "$dev" ] && break
  sleep 0.2
done
[ -n "$dev" ] || { echo "initrd: root $root not found"; exec sh; }
mkdir -p /newroot
mount -o rw "$dev" /newroot || { echo "initrd: cannot mount $dev"; exec sh; }
umount /sys /proc
mount --move /dev /newroot/dev 2>/dev/null
exec switch_root /newroot /sbin/init
`;

// What the test reads off the serial console once the deployed disk has booted.
const SYSTEM_INIT = `#!/bin/sh
mount -t proc proc /proc
line="DEPLOYED hostname=$(cat /etc/hostname) machine-id=$(cat /etc/machine-id) marker=$(cat /var/lib/imagepe/deployed.json >/dev/null 2>&1 && echo yes || echo no)"
# What a technician added to the reference after it was installed (none in a fresh one).
custom="CUSTOM acme=$(/usr/local/bin/acme --version 2>/dev/null || echo none) added=$(ls /etc/custom.d 2>/dev/null | tr '\\n' , || true)"
echo "$line"
echo "$custom"
# /dev/console is whichever console= came last; the test reads the serial port.
echo "$line" >/dev/ttyS0 2>/dev/null
echo "$custom" >/dev/ttyS0 2>/dev/null
sync
poweroff -f
`;

/**
 * A tiny bootable Linux reference system: the common reference tree (reference-tree.ts) with the
 * host's kernel, an initramfs with the disk drivers, and an init that prints a DEPLOYED line with
 * the hostname and machine-id (and a CUSTOM line) and powers off. It carries the state that
 * generalize must remove (machine-id, SSH host keys, logs, shell history).
 */
export async function makeReferenceSystem(root: string): Promise<ReferenceSystem> {
  const tree = await makeReferenceTree(root, { machineId: 'ab'.repeat(16), applets: BUSYBOX_APPLETS, init: SYSTEM_INIT, kernel: true, files: { 'root/.ash_history': 'poweroff\n' } });
  await makeInitrd(tree.kernelVersion, join(root, `boot/initrd.img-${tree.kernelVersion}`));
  return tree;
}

async function makeInitrd(kernelVersion: string, out: string): Promise<void> {
  const modDir = `/lib/modules/${kernelVersion}`;
  const depText = await readFile(join(modDir, 'modules.dep'), 'utf8');
  const softdep = await readFile(join(modDir, 'modules.softdep'), 'utf8').catch(() => '');
  const builtin = await readFile(join(modDir, 'modules.builtin'), 'utf8').catch(() => '');
  const index = buildModuleIndex(depText, softdep, builtin);
  const chosen = selectModules(index, ['virtio_pci', 'virtio_blk', 'ahci', 'sd_mod', 'crc32c_generic', 'ext4']);
  const tree: FileTree = new Map();
  tree.set('init', { kind: 'data', data: Buffer.from(INITRD_INIT), mode: 0o755 });
  tree.set('bin/busybox', { kind: 'file', source: HOST_BUSYBOX, size: (await stat(HOST_BUSYBOX)).size, mode: 0o755 });
  for (const applet of [...BUSYBOX_APPLETS, 'seq']) tree.set(`bin/${applet}`, { kind: 'symlink', target: 'busybox' });
  for (const d of ['proc', 'sys', 'dev', 'newroot']) tree.set(d, { kind: 'dir' });
  tree.set('dev/console', { kind: 'char', major: 5, minor: 1, mode: 0o600 });
  const chosenSet = new Set(chosen.paths);
  for (const path of chosen.paths) {
    const source = join(modDir, path);
    tree.set(`lib/modules/${kernelVersion}/${path}`, { kind: 'file', source, size: (await stat(source)).size, mode: 0o644 });
  }
  // busybox modprobe reads a modules.dep limited to what is here.
  const dep = depText
    .split('\n')
    .filter((line) => chosenSet.has(line.split(':')[0] ?? ''))
    .join('\n');
  tree.set(`lib/modules/${kernelVersion}/modules.dep`, { kind: 'data', data: Buffer.from(`${dep}\n`), mode: 0o644 });
  await writeCpio(tree, out, 0);
}

export interface ReferencePlanOptions {
  /** Hostname template: "demo-{mac}". */
  hostname: string;
  /** Expected sha256 of the WIM, checked before the disk is touched. */
  sha256?: string;
  /** Where the image is: default QEMU's SMB share (smb://10.0.2.4/qemu/images); server:/images for imagepe serve. */
  url?: string;
  /** The root partition's size (default: rest of the disk). */
  rootSize?: string;
  /** Partitions after root, as layout lines: "{ name: swap, size: 256MiB, type: linux-swap, format: swap }". */
  morePartitions?: readonly string[];
  /** Erase a disk that holds something (a second deploy to the same machine). */
  wipe?: boolean;
}

/**
 * The plan that deploys the reference system from QEMU's SMB share (images/reference.wim) to
 * the smallest disk of at least 1 GiB: GPT with an ESP and a bios-boot partition, so the same
 * disk boots by UEFI and by BIOS. The demo, the end-to-end tests and the bench all use it.
 */
export function referencePlan(o: ReferencePlanOptions): string {
  return `source:
  url: ${o.url ?? 'smb://10.0.2.4/qemu/images'}
  image: reference.wim
  index: reference
${o.sha256 === undefined ? '' : `  sha256: "${o.sha256}"\n`}target:
  disk: { pick: smallest, minSize: 1GiB }
${o.wipe ? '  wipe: true\n' : ''}  layout:
    table: gpt
    firmware: both
    partitions:
      - { name: ESP, size: 64MiB, type: esp, format: vfat, label: ESP, mount: /boot/efi }
      - { name: bios-boot, size: 1MiB, type: bios-boot }
      - { name: root, size: ${o.rootSize ?? 'rest'}, type: linux, format: ext4, label: root, mount: / }
${(o.morePartitions ?? []).map((p) => `      - ${p}\n`).join('')}apply:
  - { partition: root }
specialize:
  hostname: "${o.hostname}"
  machineId: new
bootloader: { type: grub, firmware: both }
after: poweroff
`;
}

/**
 * What a technician does to a reference machine between installing and capturing it: round 1
 * installs a package-like tool (/opt/acme with a command on PATH) and a setting, later rounds
 * add a setting each and update the tool. The deployed system's init reports both.
 */
export async function customizeReference(root: string, round: number): Promise<void> {
  await mkdir(join(root, 'opt/acme/bin'), { recursive: true });
  await mkdir(join(root, 'usr/local/bin'), { recursive: true });
  await mkdir(join(root, 'etc/custom.d'), { recursive: true });
  await writeFile(join(root, 'opt/acme/bin/acme'), `#!/bin/sh\necho acme-1.${round}\n`, { mode: 0o755 });
  await writeFile(join(root, 'opt/acme/VERSION'), `1.${round}\n`);
  await symlink('/opt/acme/bin/acme', join(root, 'usr/local/bin/acme')).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  await writeFile(join(root, `etc/custom.d/round-${round}`), `customization round ${round}\n`);
}
