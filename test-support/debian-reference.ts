import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/index.js';
import * as partition from '../partition/index.js';
import { enterChroot } from '../agent/system/chroot.js';
import { findImageGrub, installImageGrub } from '../agent/system/grub.js';
import { unpackDebianTree } from './debian-tree.js';
import { sparseFile, tempDir, removeDir } from './tree.js';

/**
 * The Debian 12 reference disk the tests capture and deploy: laid out the way the Debian
 * installer's "use entire disk" leaves a UEFI/BIOS machine (ESP, bios-boot, root, swap after
 * root), /etc/fstab naming /, /boot/efi and swap by UUID with the installer's options and
 * comments, the resume device in initramfs-tools' conf.d/resume, GRUB installed for BIOS and
 * UEFI with grub.cfg written by update-grub, and the initramfs rebuilt with that resume device.
 */
export const DEBIAN_LAYOUT = {
  table: 'gpt',
  partitions: [
    { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
    { name: 'bios-boot', size: '1MiB', type: 'bios-boot' },
    { name: 'root', size: 'rest', type: 'linux', format: 'ext4', mount: '/' },
    { name: 'swap', size: '128MiB', type: 'linux-swap', format: 'swap', mount: 'swap' },
  ],
} as const satisfies partition.LayoutInput;

export const DEBIAN_DISK_BYTES = 2 * 1024 ** 3;

/** What the reference was, to compare deployed copies with. */
export interface DebianReference {
  image: string;
  hostname: string;
  machineId: string;
  /** The SHA256 fingerprint of its ed25519 host key, as ssh-keygen -l prints it. */
  hostKey: string;
  uuids: { root: string; esp: string; swap: string };
}

/** The line the report unit prints on the serial port once the system has finished booting. */
export const REPORT_MARK = 'IMAGEPE-REPORT';

// A test probe, installed in the reference so every copy has it: once systemd says the boot is
// over, it prints how the boot went on the serial port and powers the machine off. Type=simple,
// so the boot does not wait for it (is-system-running --wait would then wait for itself).
const REPORT_UNIT = `[Unit]
Description=Report how the boot went on the serial port (imagepe tests)

[Service]
Type=simple
ExecStart=/usr/local/sbin/imagepe-report

[Install]
WantedBy=multi-user.target
`;

const REPORT_SCRIPT = `#!/bin/sh
state=$(systemctl is-system-running --wait)
failed=$(systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\\n' ',')
key=$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null | awk '{print $2}')
swap=$(swapon --show=UUID --noheadings 2>/dev/null | tr -d ' ' | tr '\\n' ',')
[ -n "$swap" ] || swap=$(swapon --show=NAME --noheadings | tr '\\n' ',')
echo "${REPORT_MARK} state=$state target=$(systemctl is-active multi-user.target) ssh=$(systemctl is-active ssh.service) hostname=$(hostname) machine-id=$(cat /etc/machine-id) hostkey=$key efi=$(findmnt -n -o UUID /boot/efi) root=$(findmnt -n -o UUID /) swap=$swap failed=$failed uptime=$(cut -d' ' -f1 /proc/uptime)" >/dev/ttyS0
sync
systemctl poweroff
`;

/** Reads the report line: each key=value pair. */
export function parseReport(line: string): Record<string, string> {
  const at = line.indexOf(REPORT_MARK);
  return Object.fromEntries(
    line
      .slice(at + REPORT_MARK.length)
      .trim()
      .split(/\s+/)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/** Builds the reference disk as a raw image file (about 40 s with the tree cached, plus 100 s to build the tree once). */
export async function makeDebianReferenceDisk(image: string, options: { hostname?: string; sizeBytes?: number } = {}): Promise<DebianReference> {
  const hostname = options.hostname ?? 'reference';
  await sparseFile(image, options.sizeBytes ?? DEBIAN_DISK_BYTES);
  const applied = await partition.apply(partition.resolveLayout(partition.parseLayout(DEBIAN_LAYOUT), await partition.describeDisk(image)));
  const uuid = (name: string) => applied.partitions.find((p) => p.name === name)!.uuid!;
  const uuids = { root: uuid('root'), esp: uuid('ESP'), swap: uuid('swap') };
  return partition.withAttachedImage(image, async (loop) => {
    const nodes = await partition.waitForPartitions(loop, [1, 2, 3, 4], 15_000, (what) => ({ what, timeoutMs: 60_000 }));
    const root = await tempDir('debian-reference');
    await run('mount', ['-t', 'ext4', nodes.get(3)!, root], { what: 'mounting the reference root' });
    try {
      await unpackDebianTree(root);
      await configure(root, hostname, uuids);
      const chroot = await enterChroot(root);
      try {
        await chroot.run('update-initramfs', ['-u', '-k', 'all'], { what: 'building the reference initramfs', timeoutMs: 600_000 });
        const grub = await findImageGrub(root);
        if (!grub) throw new Error('the Debian tree has no GRUB tooling');
        await installImageGrub({ chroot, grub, firmware: 'both', device: loop, espNode: nodes.get(1)!, bootUuid: uuids.root, bootPrefix: '/boot', bootloaderId: 'debian', kernelArgs: '', diskNames: applied.partitions.map((p) => ({ node: nodes.get(p.number)!, uuid: p.uuid, partuuid: p.partuuid, label: p.label, partlabel: p.name })), warn: () => undefined });
      } finally {
        await chroot.release(false, () => undefined);
      }
      const machineId = (await readFile(join(root, 'etc/machine-id'), 'utf8')).trim();
      const hostKey = (await run('ssh-keygen', ['-lf', join(root, 'etc/ssh/ssh_host_ed25519_key.pub')])).stdout.split(/\s+/)[1]!;
      return { image, hostname, machineId, hostKey, uuids };
    } finally {
      await run('umount', [root], { what: 'unmounting the reference root', timeoutMs: 120_000 });
      await removeDir(root);
    }
  });
}

/** What the installer writes and asks for, as files of the reference. */
async function configure(root: string, hostname: string, uuids: DebianReference['uuids']): Promise<void> {
  const put = async (path: string, text: string, mode = 0o644) => {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text, { mode });
    await chmod(join(root, path), mode);
  };
  await put(
    'etc/fstab',
    [
      '# /etc/fstab: static file system information.',
      '#',
      "# Use 'blkid' to print the universally unique identifier for a",
      '# device; this may be used with UUID= as a more robust way to name devices',
      '# that works even if disks are added and removed. See fstab(5).',
      '#',
      '# <file system> <mount point>   <type>  <options>       <dump>  <pass>',
      '# / was on /dev/sda3 during installation',
      `UUID=${uuids.root} /               ext4    errors=remount-ro 0       1`,
      '# /boot/efi was on /dev/sda1 during installation',
      `UUID=${uuids.esp}  /boot/efi       vfat    umask=0077      0       1`,
      '# swap was on /dev/sda4 during installation',
      `UUID=${uuids.swap} none            swap    sw              0       0`,
      '',
    ].join('\n'),
  );
  await put('etc/initramfs-tools/conf.d/resume', `RESUME=UUID=${uuids.swap}\n`);
  await put('etc/hostname', `${hostname}\n`);
  await put('etc/hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}\n\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n`);
  // The installer asks for the console; a VM on a serial port gets it there too.
  // grub-pc's and grub-efi-amd64's postinst put Debian's default in place; the -bin packages do not.
  const grub = await readFile(join(root, 'etc/default/grub'), 'utf8').catch(() => readFile(join(root, 'usr/share/grub/default/grub'), 'utf8'));
  await put(
    'etc/default/grub',
    grub
      .replace(/^GRUB_TIMEOUT=.*$/m, 'GRUB_TIMEOUT=1')
      .replace(/^GRUB_CMDLINE_LINUX=.*$/m, 'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"')
      .concat('GRUB_TERMINAL="console serial"\nGRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"\n'),
  );
  await put('etc/systemd/system/imagepe-report.service', REPORT_UNIT);
  await put('usr/local/sbin/imagepe-report', REPORT_SCRIPT, 0o755);
  await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  await symlink('/etc/systemd/system/imagepe-report.service', join(root, 'etc/systemd/system/multi-user.target.wants/imagepe-report.service'));
}

/** What a deployed Debian disk holds, read back offline (read-only, journal not replayed). */
export interface DeployedDebian {
  /** blkid of each partition by number: TYPE, UUID, LABEL, PARTUUID. */
  filesystems: Record<number, Record<string, string>>;
  fstab: string;
  resume: string;
  hostname: string;
  machineId: string;
  /** ssh_host_*_key files, and the ed25519 key's fingerprint. */
  hostKeys: string[];
  hostKey: string;
  /** The linux lines of grub.cfg. */
  grubLinux: string[];
  /** RESUME= built into the initramfs. */
  initramfsResume: string;
  /** Files on the ESP (mdir -/ -b). */
  espFiles: string[];
  /** Text files under /etc that still name any of `oldNames`, with the name. */
  stale: string[];
}

/** Reads a deployed disk image whose root is partition `rootNumber` and ESP partition 1. */
export async function readDeployedDebian(image: string, oldNames: readonly string[], rootNumber = 3): Promise<DeployedDebian> {
  return partition.withAttachedImage(
    image,
    async (loop) => {
      const numbers = [1, 2, 3, 4].filter((n) => n !== rootNumber).concat(rootNumber);
      const nodes = await partition.waitForPartitions(loop, numbers, 15_000, (what) => ({ what, timeoutMs: 60_000 }));
      const filesystems: Record<number, Record<string, string>> = {};
      for (const [n, node] of nodes) filesystems[n] = await partition.probeFilesystem(node, (what) => ({ what, timeoutMs: 60_000 }));
      const root = await tempDir('deployed-debian');
      await run('mount', ['-t', 'ext4', '-o', 'ro,noload', nodes.get(rootNumber)!, root], { what: 'mounting the deployed root' });
      try {
        const read = (p: string) => readFile(join(root, p), 'utf8').catch(() => '');
        const hostKeys = (await run('ls', [join(root, 'etc/ssh')])).stdout.split('\n').filter((n) => /^ssh_host_.+_key$/.test(n));
        const hostKey = hostKeys.includes('ssh_host_ed25519_key') ? (await run('ssh-keygen', ['-lf', join(root, 'etc/ssh/ssh_host_ed25519_key.pub')])).stdout.split(/\s+/)[1]! : '';
        const grubLinux = (await read('boot/grub/grub.cfg')).split('\n').map((l) => l.trim()).filter((l) => l.startsWith('linux'));
        const initrd = (await run('ls', [join(root, 'boot')])).stdout.split('\n').find((n) => n.startsWith('initrd.img-'));
        let initramfsResume = '';
        if (initrd) {
          const unpacked = await tempDir('initrd');
          try {
            await run('unmkinitramfs', [join(root, 'boot', initrd), unpacked], { what: 'unpacking the deployed initramfs', timeoutMs: 120_000 });
            const conf = (await run('sh', ['-c', 'cat "$1"/main/conf/conf.d/* "$1"/conf/conf.d/* 2>/dev/null; true', 'sh', unpacked])).stdout;
            initramfsResume = /^RESUME=(.*)$/m.exec(conf)?.[1]?.replace(/^"|"$/g, '') ?? '';
          } finally {
            await removeDir(unpacked);
          }
        }
        const stale: string[] = [];
        for (const name of oldNames) {
          const r = await run('grep', ['-rIl', '--', name, join(root, 'etc')], { okExitCodes: [0, 1] });
          for (const f of r.stdout.split('\n').filter(Boolean)) stale.push(`${f.slice(root.length)}: ${name}`);
        }
        const esp = await run('mdir', ['-/', '-b', '-i', nodes.get(1)!, '::/'], { env: { MTOOLS_SKIP_CHECK: '1' }, okExitCodes: [0, 1] });
        return {
          filesystems,
          fstab: await read('etc/fstab'),
          resume: (await read('etc/initramfs-tools/conf.d/resume')).trim(),
          hostname: (await read('etc/hostname')).trim(),
          machineId: (await read('etc/machine-id')).trim(),
          hostKeys,
          hostKey,
          grubLinux,
          initramfsResume,
          espFiles: esp.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^::/, '')),
          stale,
        };
      } finally {
        await run('umount', [root], { what: 'unmounting the deployed root', timeoutMs: 120_000 });
        await removeDir(root);
      }
    },
    { readOnly: true },
  );
}
