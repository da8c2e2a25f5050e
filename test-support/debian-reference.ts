import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/index.js';
import * as partition from '../partition/index.js';
import { treeMountOptions, treeMountsOf } from '../agent/deploy/context.js';
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

/** The installer's "separate /home" recipe with a separate /boot as well: /boot, /, /home and swap after them. */
export const DEBIAN_SEPARATE_LAYOUT = {
  table: 'gpt',
  partitions: [
    { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
    { name: 'bios-boot', size: '1MiB', type: 'bios-boot' },
    { name: 'boot', size: '256MiB', type: 'linux', format: 'ext4', mount: '/boot' },
    { name: 'root', size: 'rest', type: 'linux', format: 'ext4', mount: '/' },
    { name: 'home', size: '128MiB', type: 'linux-home', format: 'ext4', mount: '/home' },
    { name: 'swap', size: '128MiB', type: 'linux-swap', format: 'swap', mount: 'swap' },
  ],
} as const satisfies partition.LayoutInput;

/** A BIOS-only machine as the installer leaves it on an MBR disk: root flagged active, swap after it. */
export const DEBIAN_MBR_LAYOUT = {
  table: 'mbr',
  firmware: 'bios',
  partitions: [
    { name: 'root', size: 'rest', type: 'linux', format: 'ext4', mount: '/', flags: ['bootable'] },
    { name: 'swap', size: '128MiB', type: 'linux-swap', format: 'swap', mount: 'swap' },
  ],
} as const satisfies partition.LayoutInput;

/** Root on btrfs in subvolume @, /home in @home (Ubuntu's installer's names), @ the default; swap after it. */
export const DEBIAN_BTRFS_LAYOUT = {
  table: 'gpt',
  partitions: [
    { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
    { name: 'bios-boot', size: '1MiB', type: 'bios-boot' },
    {
      name: 'root',
      size: 'rest',
      type: 'linux',
      format: 'btrfs',
      mount: '/',
      subvolumes: [
        { name: '@', mount: '/' },
        { name: '@home', mount: '/home' },
      ],
      defaultSubvolume: '@',
    },
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
  /** Each filesystem's UUID by its partition's name in lower case: root, esp, swap, and boot, home where the layout has them. */
  uuids: { root: string; esp: string; swap: string } & Record<string, string>;
  /** A file the reference keeps under /home (separate layout): its path and content. */
  homeFile?: { path: string; content: string };
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
echo "${REPORT_MARK} state=$state target=$(systemctl is-active multi-user.target) ssh=$(systemctl is-active ssh.service) hostname=$(hostname) machine-id=$(cat /etc/machine-id) hostkey=$key efi=$(findmnt -n -o UUID /boot/efi) root=$(findmnt -n -o UUID /) rootsrc=$(findmnt -n -o SOURCE /) boot=$(findmnt -n -o UUID /boot) home=$(findmnt -n -o UUID /home) kernels=$(ls /boot/vmlinuz-* 2>/dev/null | wc -l) homefile=$(cat /home/technician/notes.txt 2>/dev/null | tr -d ' \\n') swap=$swap failed=$failed secureboot=$(od -An -t u1 -j4 -N1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c 2>/dev/null | tr -d ' ') lockdown=$(sed -n 's/.*\\[\\(.*\\)\\].*/\\1/p' /sys/kernel/security/lockdown 2>/dev/null) uptime=$(cut -d' ' -f1 /proc/uptime)" >/dev/ttyS0
# A copy deployed from imagepe serve reports its first boot to the server: let that finish (bounded) before power-off.
n=0
while [ $n -lt 120 ] && systemctl is-active -q imagepe-first-boot.service; do sleep 1; n=$((n + 1)); done
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
export async function makeDebianReferenceDisk(
  image: string,
  options: { hostname?: string; sizeBytes?: number; layout?: partition.LayoutInput } = {},
): Promise<DebianReference> {
  const hostname = options.hostname ?? 'reference';
  const layoutInput = options.layout ?? DEBIAN_LAYOUT;
  await sparseFile(image, options.sizeBytes ?? DEBIAN_DISK_BYTES);
  const applied = await partition.apply(partition.resolveLayout(partition.parseLayout(layoutInput), await partition.describeDisk(image)));
  const uuids = Object.fromEntries(applied.partitions.filter((p) => p.uuid).map((p) => [p.name.toLowerCase(), p.uuid!])) as DebianReference['uuids'];
  const mbr = applied.table === 'mbr';
  return partition.withAttachedImage(image, async (loop) => {
    const nodes = await partition.waitForPartitions(loop, applied.partitions.map((p) => p.number), 15_000, (what) => ({ what, timeoutMs: 60_000 }));
    const byMount = (m: string) => applied.partitions.find((p) => p.mount === m);
    // The system's own filesystems as one tree, parents first, as its fstab will mount them.
    const root = await tempDir('debian-reference');
    const mounted: string[] = [];
    try {
      for (const m of treeMountsOf(applied.partitions)) {
        const at = join(root, m.mount);
        await mkdir(at, { recursive: true });
        const options = treeMountOptions(m);
        await run('mount', ['-t', m.partition.fsType!, ...(options ? ['-o', options] : []), nodes.get(m.partition.number)!, at], { what: `mounting the reference ${m.mount}` });
        mounted.unshift(at);
      }
      await unpackDebianTree(root);
      await configure(root, hostname, applied.partitions);
      let homeFile: DebianReference['homeFile'];
      if (treeMountsOf(applied.partitions).some((m) => m.mount === '/home')) {
        homeFile = { path: '/home/technician/notes.txt', content: `imaged from ${hostname}\n` };
        await mkdir(join(root, 'home/technician'), { recursive: true });
        await writeFile(join(root, homeFile.path), homeFile.content);
      }
      const chroot = await enterChroot(root);
      try {
        await chroot.run('update-initramfs', ['-u', '-k', 'all'], { what: 'building the reference initramfs', timeoutMs: 600_000 });
        const grub = await findImageGrub(root);
        if (!grub) throw new Error('the Debian tree has no GRUB tooling');
        const boot = byMount('/boot') ?? byMount('/')!;
        const esp = applied.partitions.find((p) => p.fsType === 'vfat');
        await installImageGrub({
          chroot,
          grub,
          firmware: mbr ? 'bios' : 'both',
          device: loop,
          ...(esp ? { espNode: nodes.get(esp.number)! } : {}),
          bootUuid: boot.uuid!,
          bootPrefix: boot.mount === '/boot' ? '' : '/boot',
          bootSubvolume: treeMountsOf(applied.partitions).find((m) => m.mount === (boot.mount === '/boot' ? '/boot' : '/'))?.subvolume,
          bootloaderId: 'debian',
          kernelArgs: '',
          secureBoot: true,
          diskNames: applied.partitions.map((p) => ({ node: nodes.get(p.number)!, uuid: p.uuid, partuuid: p.partuuid, label: p.label, partlabel: mbr ? undefined : p.name })),
          warn: () => undefined,
        });
      } finally {
        await chroot.release(false, () => undefined);
      }
      const machineId = (await readFile(join(root, 'etc/machine-id'), 'utf8')).trim();
      const hostKey = (await run('ssh-keygen', ['-lf', join(root, 'etc/ssh/ssh_host_ed25519_key.pub')])).stdout.split(/\s+/)[1]!;
      return { image, hostname, machineId, hostKey, uuids, ...(homeFile ? { homeFile } : {}) };
    } finally {
      for (const at of mounted) await run('umount', [at], { what: `unmounting ${at}`, timeoutMs: 120_000 });
      await removeDir(root);
    }
  });
}

/** What the installer writes and asks for, as files of the reference. */
async function configure(root: string, hostname: string, partitions: readonly partition.AppliedPartition[]): Promise<void> {
  const put = async (path: string, text: string, mode = 0o644) => {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text, { mode });
    await chmod(join(root, path), mode);
  };
  // In the installer's order and words: / first, then the others by mount point, swap last.
  const options: Record<string, string> = { '/': 'errors=remount-ro', '/boot/efi': 'umask=0077' };
  const tree = treeMountsOf(partitions);
  const mounts = [
    ...tree.map((m) => ({ p: m.partition, mount: m.mount, subvol: m.subvolume })),
    ...partitions.filter((p) => p.mount && !tree.some((m) => m.partition === p)).map((p) => ({ p, mount: p.mount!, subvol: undefined })),
  ];
  const entries = mounts
    .sort((a, b) => (a.mount === '/' ? -1 : b.mount === '/' ? 1 : a.mount === 'swap' ? 1 : b.mount === 'swap' ? -1 : a.mount.localeCompare(b.mount)))
    .map(({ p, mount, subvol }) => ({ ...p, mount, subvol }))
    .flatMap((p) => [
      `# ${p.mount === 'swap' ? 'swap' : p.mount} was on /dev/sda${p.number} during installation`,
      // The installer's columns: a FAT volume id is short, and the line keeps a second space after it.
      `UUID=${p.uuid}${p.fsType === 'vfat' ? ' ' : ''} ${(p.mount === 'swap' ? 'none' : p.mount!).padEnd(15)} ${p.fsType!.padEnd(7)} ${(p.mount === 'swap' ? 'sw' : p.subvol ? `defaults,subvol=${p.subvol}` : (options[p.mount!] ?? 'defaults')).padEnd(15)} 0       ${p.mount === 'swap' || p.fsType === 'btrfs' ? 0 : p.mount === '/' || p.mount === '/boot/efi' ? 1 : 2}`,
    ]);
  const swap = partitions.find((p) => p.fsType === 'swap')!;
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
      ...entries,
      '',
    ].join('\n'),
  );
  await put('etc/initramfs-tools/conf.d/resume', `RESUME=UUID=${swap.uuid}\n`);
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
  /** The linux lines of grub.cfg, and the whole file. */
  grubLinux: string[];
  grubCfg: string;
  /** What /boot holds (its own filesystem when the system has one). */
  bootFiles: string[];
  /** RESUME= built into the initramfs. */
  initramfsResume: string;
  /** Files on the ESP (mdir -/ -b); empty without one. */
  espFiles: string[];
  /** Text files under /etc that still name any of `oldNames`, with the name. */
  stale: string[];
  /** The content of each of `options.files` (absolute paths in the system), or undefined when missing. */
  files: Record<string, string | undefined>;
}

/**
 * Reads a deployed disk image: the root (partition `rootNumber`, default 3), with the other
 * filesystems its fstab mounts by UUID mounted where it says, as the system would see them.
 */
export async function readDeployedDebian(image: string, oldNames: readonly string[], rootNumber = 3, options: { files?: readonly string[] } = {}): Promise<DeployedDebian> {
  return partition.withAttachedImage(
    image,
    async (loop) => {
      const runOpts = (what: string) => ({ what, timeoutMs: 60_000 });
      const table = await partition.readTable(loop, runOpts);
      // An MBR extended partition is only the container of the logical ones.
      const numbers = (table?.partitions ?? []).filter((p) => table!.label === 'gpt' || ![0x5, 0xf, 0x85].includes(parseInt(p.type, 16))).map((p) => Number(/(\d+)$/.exec(p.node)![1]));
      const nodes = await partition.waitForPartitions(loop, numbers, 15_000, runOpts);
      const filesystems: Record<number, Record<string, string>> = {};
      for (const [n, node] of nodes) filesystems[n] = await partition.probeFilesystem(node, runOpts);
      const root = await tempDir('deployed-debian');
      const mounted: string[] = [];
      try {
        // btrfs: no subvol= option, so the default subvolume is what comes up, as at boot.
        const ro = (type: string) => (type === 'ext4' ? 'ro,noload' : 'ro');
        const rootType = filesystems[rootNumber]!.TYPE!;
        await run('mount', ['-t', rootType, '-o', ro(rootType), nodes.get(rootNumber)!, root], { what: 'mounting the deployed root' });
        mounted.unshift(root);
        const read = (p: string) => readFile(join(root, p), 'utf8').catch(() => '');
        const fstab = await read('etc/fstab');
        for (const line of fstab.split('\n')) {
          const [spec, mount, type, opts] = line.replace(/#.*$/, '').trim().split(/\s+/);
          if (!spec?.startsWith('UUID=') || !mount || mount === '/' || (type !== 'ext4' && type !== 'btrfs')) continue;
          const n = Object.entries(filesystems).find(([, fs]) => fs.UUID === spec.slice(5))?.[0];
          if (!n) continue;
          const subvol = (opts ?? '').split(',').find((o) => o.startsWith('subvol='));
          await run('mount', ['-t', type, '-o', [ro(type), subvol].filter(Boolean).join(','), nodes.get(Number(n))!, join(root, mount)], { what: `mounting the deployed ${mount}` });
          mounted.unshift(join(root, mount));
        }
        const hostKeys = (await run('ls', [join(root, 'etc/ssh')])).stdout.split('\n').filter((n) => /^ssh_host_.+_key$/.test(n));
        const hostKey = hostKeys.includes('ssh_host_ed25519_key') ? (await run('ssh-keygen', ['-lf', join(root, 'etc/ssh/ssh_host_ed25519_key.pub')])).stdout.split(/\s+/)[1]! : '';
        const grubCfg = await read('boot/grub/grub.cfg');
        const grubLinux = grubCfg.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('linux'));
        const bootFiles = (await run('ls', [join(root, 'boot')])).stdout.split('\n').filter(Boolean);
        const initrd = bootFiles.find((n) => n.startsWith('initrd.img-'));
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
        const espNumber = Object.entries(filesystems).find(([, fs]) => fs.TYPE === 'vfat')?.[0];
        const esp = espNumber ? await run('mdir', ['-/', '-b', '-i', nodes.get(Number(espNumber))!, '::/'], { env: { MTOOLS_SKIP_CHECK: '1' }, okExitCodes: [0, 1] }) : { stdout: '' };
        const files: Record<string, string | undefined> = {};
        for (const f of options.files ?? []) files[f] = await readFile(join(root, f), 'utf8').catch(() => undefined);
        return {
          filesystems,
          fstab,
          resume: (await read('etc/initramfs-tools/conf.d/resume')).trim(),
          hostname: (await read('etc/hostname')).trim(),
          machineId: (await read('etc/machine-id')).trim(),
          hostKeys,
          hostKey,
          grubLinux,
          grubCfg,
          bootFiles,
          initramfsResume,
          espFiles: esp.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^::/, '')),
          stale,
          files,
        };
      } finally {
        for (const at of mounted) await run('umount', [at], { what: `unmounting ${at}`, timeoutMs: 120_000 });
        await removeDir(root);
      }
    },
    { readOnly: true },
  );
}
