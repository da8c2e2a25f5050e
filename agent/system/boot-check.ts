import { bootEntries } from './grub.js';
import { answersTo, isOptional, parseReference, readTable, type StorageReference, type VolumeIdentity } from './references.js';

/** What verify reads from a deployed Linux system to tell whether it will boot. */
export interface BootFacts {
  /** The volumes on the deployed disk, with every name they answer to. */
  volumes: readonly VolumeIdentity[];
  fstab?: string | undefined;
  crypttab?: string | undefined;
  /** The boot loader's configuration, and where it is in the system. */
  grubCfg?: { path: string; text: string } | undefined;
  /** Whether a path GRUB names (on the filesystem it boots from) exists. */
  bootFileExists(path: string): boolean;
  /** The resume device each initramfs was built with; value undefined when it has none. */
  initramfsResume: readonly { initrd: string; value: string | undefined }[];
  /** The root is on an LVM logical volume (VG/LV), and whether the system has LVM's tools for its initramfs to activate it. */
  lvmRoot?: { volume: string; tools: boolean } | undefined;
  /** An SSH server is installed, and whether the plan wants it to have host keys. */
  ssh?: { server: boolean; wanted: boolean; hostKeys: readonly string[] } | undefined;
}

// fstab types that are not a local block device: nothing on this disk to find.
const NOT_LOCAL = /^(nfs4?|cifs|smb3|smbfs|sshfs|fuse(\..*)?|tmpfs|ramfs|proc|sysfs|devpts|devtmpfs|cgroup2?|securityfs|efivarfs|debugfs|tracefs|hugetlbfs|mqueue|bind|overlay|9p|virtiofs|glusterfs|ceph)$/;

/**
 * Everything that would keep the deployed system from booting cleanly, in words naming the file,
 * the line and what is missing; empty when there is nothing. A mount without nofail or noauto
 * whose device is not on this disk drops systemd into emergency mode; a root= or resume= that
 * names nothing stops the initramfs or delays it; a kernel or initramfs that is not there stops
 * GRUB; an SSH server without host keys does not start.
 */
export function bootProblems(f: BootFacts): string[] {
  const problems: string[] = [];
  const here = (r: StorageReference) => r.kind !== 'device' && f.volumes.some((v) => answersTo(v, r));
  const judge = (where: string, text: string, why: string) => {
    const r = parseReference(text);
    if (!r) return;
    if (r.kind === 'device') problems.push(`${where}: ${text} (${why}) is a kernel device name, which differs from machine to machine; name it by UUID=`);
    else if (!here(r)) problems.push(`${where}: ${text} (${why}) is no filesystem on this disk`);
  };
  for (const e of readTable(f.fstab ?? '')) {
    const [spec, mount, type, options] = e.fields;
    if (!spec || NOT_LOCAL.test(type ?? '') || isOptional(options) || (options ?? '').split(',').includes('bind')) continue;
    judge(`/etc/fstab line ${e.line}`, spec, type === 'swap' ? 'swap' : `mounted on ${mount ?? '?'}`);
  }
  for (const e of readTable(f.crypttab ?? '')) {
    const [name, source, , options] = e.fields;
    if (!source || isOptional(options)) continue;
    judge(`/etc/crypttab line ${e.line}`, source, `the encrypted volume ${name ?? '?'}`);
  }
  if (f.grubCfg) {
    const entries = bootEntries(f.grubCfg.text);
    if (entries.length === 0) problems.push(`${f.grubCfg.path}: no boot entry (no linux line)`);
    for (const e of entries) {
      const where = `${f.grubCfg.path} line ${e.line}`;
      if (!e.root) problems.push(`${where}: the kernel command line has no root=`);
      else judge(where, e.root, 'root=');
      if (e.resume && e.resume !== 'none') judge(where, e.resume, 'resume=');
      if (!f.bootFileExists(e.kernel)) problems.push(`${where}: the kernel ${e.kernel} is not on the boot filesystem`);
      if (e.initrd && !f.bootFileExists(e.initrd)) problems.push(`${where}: the initramfs ${e.initrd} is not on the boot filesystem`);
    }
  }
  for (const r of f.initramfsResume) {
    if (r.value && r.value !== 'none' && r.value !== 'auto') judge(`${r.initrd} (RESUME= built in)`, r.value, 'the resume device');
  }
  if (f.lvmRoot && !f.lvmRoot.tools) problems.push(`the root is on logical volume ${f.lvmRoot.volume}, but the system has no lvm2 (/sbin/lvm), so its initramfs cannot activate the volume group; install lvm2 in the image, or deploy the root to a partition`);
  if (f.ssh?.server && f.ssh.wanted && f.ssh.hostKeys.length === 0) problems.push('/etc/ssh: the SSH server has no host keys, so ssh.service does not start');
  return problems;
}
