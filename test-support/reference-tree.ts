import { chown, copyFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

// The one builder of the small Linux reference trees that tests, the bench and the demo
// generalize, capture and deploy. Every tree has the same identity, which is what generalize and
// specialize work on; the options add what only some callers need.

/** The machine-id a reference has until generalize empties it (32 hex digits). */
export const REFERENCE_MACHINE_ID = '0123456789abcdef0123456789abcdef';

/** The host's busybox; /bin/busybox of every reference is a copy of it. */
export const HOST_BUSYBOX = '/usr/bin/busybox';

/** Where `blobBytes` puts the incompressible blob, relative to the root. */
export const REFERENCE_BLOB = 'usr/share/imagepe/blob.bin';

/** Enough for the default init, which prints a line and powers off. */
const DEFAULT_APPLETS = ['sh', 'cat', 'echo', 'mount', 'poweroff'];

const DEFAULT_INIT = '#!/bin/sh\necho "DEPLOYED hostname=$(cat /etc/hostname) machine-id=$(cat /etc/machine-id)"\npoweroff -f\n';

export interface ReferenceTreeOptions {
  /** /etc/machine-id before generalize, 32 hex digits; REFERENCE_MACHINE_ID when absent. */
  machineId?: string;
  /** busybox applets linked in /bin besides the default ones (sh, cat, echo, mount, poweroff). */
  applets?: readonly string[];
  /** The text of /sbin/init (mode 0755); by default a script that prints a DEPLOYED line and powers off. */
  init?: string;
  /** Copy the host's newest kernel to /boot/vmlinuz-VERSION, with no initramfs (reference-system.ts adds one). */
  kernel?: boolean;
  /** The text of /etc/os-release; none when absent. */
  osRelease?: string;
  /** Put /boot/efi/EFI/vendor/hello.txt ("on the ESP\n"), which a deploy moves onto the ESP. */
  espFile?: boolean;
  /** Write this many bytes (a multiple of 4) of incompressible data to REFERENCE_BLOB, so a WIM stores it as one large resource. */
  blobBytes?: number;
  /** A user's home: /home/NAME/notes.txt with `notes`, mode 0600; the home and the file belong to `owner` when given. */
  home?: { name: string; notes: string; owner?: { uid: number; gid: number } };
  /** More files (mode 0644), by path relative to the root; their folders are made. */
  files?: Readonly<Record<string, string>>;
}

export interface ReferenceTree {
  root: string;
  /** The machine-id written to /etc/machine-id (32 hex digits, no newline). */
  machineId: string;
  /** The version (uname -r) of the kernel in /boot, when `kernel` was asked for. */
  kernelVersion?: string;
}

/**
 * Builds a small Linux reference tree under `root` (made if missing): busybox with a shell, an
 * init, hostname "reference" with a matching /etc/hosts, a machine-id with the D-Bus link to it,
 * an SSH host key pair beside sshd_config, and a log with content: the state generalize removes
 * and specialize sets. Owners are the caller's unless `home` names others (chown needs root).
 */
export async function makeReferenceTree(root: string, options: ReferenceTreeOptions & { kernel: true }): Promise<ReferenceTree & { kernelVersion: string }>;
export async function makeReferenceTree(root: string, options?: ReferenceTreeOptions): Promise<ReferenceTree>;
export async function makeReferenceTree(root: string, options: ReferenceTreeOptions = {}): Promise<ReferenceTree> {
  const machineId = options.machineId ?? REFERENCE_MACHINE_ID;
  for (const d of ['bin', 'sbin', 'etc/ssh', 'boot/efi', 'dev', 'proc', 'sys', 'tmp', 'root', 'var/log', 'var/lib/dbus']) await mkdir(join(root, d), { recursive: true });
  await copyFile(HOST_BUSYBOX, join(root, 'bin/busybox'));
  for (const applet of new Set([...DEFAULT_APPLETS, ...(options.applets ?? [])])) await symlink('busybox', join(root, 'bin', applet));
  await writeFile(join(root, 'sbin/init'), options.init ?? DEFAULT_INIT, { mode: 0o755 });
  await writeFile(join(root, 'etc/hostname'), 'reference\n');
  await writeFile(join(root, 'etc/hosts'), '127.0.0.1\tlocalhost\n127.0.1.1\treference\n');
  await writeFile(join(root, 'etc/machine-id'), `${machineId}\n`);
  await symlink('/etc/machine-id', join(root, 'var/lib/dbus/machine-id'));
  await writeFile(join(root, 'etc/ssh/ssh_host_ed25519_key'), 'PRIVATE KEY OF THE REFERENCE\n', { mode: 0o600 });
  await writeFile(join(root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'ssh-ed25519 AAAA reference\n');
  await writeFile(join(root, 'etc/ssh/sshd_config'), 'PermitRootLogin no\n');
  await writeFile(join(root, 'var/log/messages'), 'reference boot log\n');

  let kernelVersion: string | undefined;
  if (options.kernel) {
    kernelVersion = await hostKernelVersion();
    await copyFile(`/boot/vmlinuz-${kernelVersion}`, join(root, `boot/vmlinuz-${kernelVersion}`));
  }
  if (options.osRelease !== undefined) await writeFile(join(root, 'etc/os-release'), options.osRelease);
  if (options.espFile) {
    await mkdir(join(root, 'boot/efi/EFI/vendor'), { recursive: true });
    await writeFile(join(root, 'boot/efi/EFI/vendor/hello.txt'), 'on the ESP\n');
  }
  if (options.blobBytes !== undefined) {
    const blob = Buffer.alloc(options.blobBytes);
    for (let i = 0; i < blob.length; i += 4) blob.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ (i >>> 5)) >>> 0, i);
    await mkdir(dirname(join(root, REFERENCE_BLOB)), { recursive: true });
    await writeFile(join(root, REFERENCE_BLOB), blob);
  }
  if (options.home) {
    const { name, notes, owner } = options.home;
    const home = join(root, 'home', name);
    await mkdir(home, { recursive: true });
    await writeFile(join(home, 'notes.txt'), notes, { mode: 0o600 });
    if (owner) for (const p of [home, join(home, 'notes.txt')]) await chown(p, owner.uid, owner.gid);
  }
  for (const [path, content] of Object.entries(options.files ?? {})) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return { root, machineId, kernelVersion };
}

/** The version (uname -r) of the newest kernel in the host's /boot. */
export async function hostKernelVersion(): Promise<string> {
  const kernels = (await readdir('/boot')).filter((n) => n.startsWith('vmlinuz-')).sort();
  const newest = kernels.pop();
  if (!newest) throw new Error('no /boot/vmlinuz-*: install linux-image-amd64 (scripts/setup)');
  return newest.slice('vmlinuz-'.length);
}
