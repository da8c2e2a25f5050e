import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { installFirstBootReport } from '../../server/index.js';
import { placeUnattend, specializeLinux } from '../../specialize/index.js';
import type { MappedShare } from '../../share/index.js';
import { systemHas } from '../../system/chroot.js';
import { unbindMacAddresses } from '../../system/mac-bindings.js';
import { defineStep, need, skipped } from '../../steps/index.js';
import { partitionNamed, systemChroot, treePartitionAt, type DeployContext } from '../context.js';

/**
 * This machine's identity on the copy: host name, a new machine-id, SSH host keys of its own
 * (made by the image's ssh-keygen: Debian makes no missing ones on boot), network configuration
 * freed from the reference's MAC addresses, the plan's files; unattend.xml for Windows.
 */
export const specializeStep = defineStep({
  name: 'specialize',
  title: 'Specialized',
  writesDisk: true,
  async run(ctx: DeployContext, io) {
    const { plan, hostname } = ctx;
    const did: string[] = [];
    if (linuxApplied(ctx)) {
      const spec = await specializeLinux(join(need(ctx.targetRoot, 'the target tree'), '/'), {
        ...(hostname ? { hostname } : {}),
        machineId: plan.specialize.machineId,
        removeSshHostKeys: plan.specialize.removeSshHostKeys,
        files: plan.specialize.files,
      });
      ctx.machineId = spec.machineId;
      if (hostname) did.push(`hostname ${hostname}`);
      if (ctx.machineId) did.push('new machine-id');
      const keys = spec.removed.filter((r) => r.startsWith('/etc/ssh/'));
      if (keys.length) did.push(`${keys.length} SSH host keys removed`);
      if (plan.specialize.files.length) did.push(`${plan.specialize.files.length} files written`);
      const root = need(ctx.targetRoot, 'the target tree');
      for (const c of await unbindMacAddresses(root)) {
        io.info(`specialize: ${c.file}: ${c.changes.join('; ')}`);
        if (c.removed) ctx.changedPaths.add(c.file);
        did.push(`${c.file} ${c.removed ? 'removed' : 'no longer bound to a MAC address'}`);
      }
      if (ctx.options.report) {
        if (await systemHas(root, 'lib/systemd/systemd')) {
          await installFirstBootReport(root, ctx.options.report);
          did.push(`first-boot report to ${ctx.options.report.origin}`);
        } else io.warn('the image has no systemd: it will not report its first boot to the deployment server');
      }
      if (plan.specialize.sshHostKeys === 'new' && (await systemHas(root, 'usr/sbin/sshd'))) {
        if (!(await systemHas(root, 'usr/bin/ssh-keygen'))) io.warn('the image has an SSH server but no ssh-keygen: no host keys were made, so sshd will not start');
        else {
          const chroot = await systemChroot(ctx, io);
          const before = new Set(await hostKeys(root));
          await chroot.run('ssh-keygen', ['-A'], io.runOpts("making SSH host keys with the image's ssh-keygen", 300_000));
          const made = (await hostKeys(root)).filter((k) => !before.has(k));
          if (made.length) did.push(`new SSH host keys (${made.map((k) => k.replace(/^ssh_host_|_key$/g, '')).join(', ')})`);
        }
      }
    }
    if (plan.specialize.unattend) {
      const unattend = plan.specialize.unattend;
      const xml = 'xml' in unattend ? unattend.xml : await readFile(unattendPath(unattend.file, ctx.share), 'utf8');
      const ntfsEntry = plan.apply.find((a) => partitionNamed(ctx, a.partition).fsType === 'ntfs')!;
      did.push(await placeUnattend(partitionNamed(ctx, ntfsEntry.partition).node, xml, io.signal));
    }
    return did.length ? did.join(', ') : skipped('nothing to specialize');
  },
});

/** A Linux tree was applied to a root filesystem (or a raw image's Linux root is mounted): the image is a Linux system to specialize. */
export function linuxApplied(ctx: DeployContext): boolean {
  // A raw image: the system step found and mounted its Linux root, or there is none.
  if (ctx.raw) return ctx.targetRoot !== undefined;
  return treePartitionAt(ctx, '/') !== undefined && ctx.plan.apply.some((a) => partitionNamed(ctx, a.partition).fsType !== 'ntfs');
}

/** The private host key files in the system's /etc/ssh. */
export async function hostKeys(root: string): Promise<string[]> {
  return (await readdir(join(root, 'etc/ssh')).catch(() => [] as string[])).filter((n) => /^ssh_host_.+_key$/.test(n)).sort();
}

function unattendPath(file: string, share: MappedShare | undefined): string {
  // A relative answer file lives on the share, next to the image.
  if (file.startsWith('/') || !share?.root) return file;
  return join(share.root, file);
}
