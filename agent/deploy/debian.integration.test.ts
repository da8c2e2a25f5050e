import { jest } from '@jest/globals';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { run } from '../../core/index.js';
import * as imaging from '../../imaging/index.js';
import * as partition from '../../partition/index.js';
import { makeDebianReferenceDisk, readDeployedDebian, type DebianReference } from '../../test-support/debian-reference.js';
import { removeDir, sparseFile, tempDir } from '../../test-support/tree.js';
import { capture } from '../capture/index.js';
import type { DeployEvent } from '../events/index.js';
import { parseCapturePlan, parsePlan, type DeployPlanInput } from '../plan/index.js';
import { deploy } from './index.js';

// A real Debian 12, installed as its installer leaves one, captured and deployed on loop
// devices: what the system's own files say about storage and identity after the deploy.

jest.setTimeout(600_000);

const GiB = 1024 ** 3;
let dir: string;
let share: string;
let ref: DebianReference;
let oldNames: string[];

beforeAll(async () => {
  dir = await tempDir('debian-deploy');
  share = join(dir, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  ref = await makeDebianReferenceDisk(join(dir, 'reference.img'));
  oldNames = [ref.uuids.root, ref.uuids.esp, ref.uuids.swap];
  // imagepe's capture mode: generalize, capture, layout and identities recorded.
  await capture(parseCapturePlan({ kind: 'capture', destination: { url: `file://${share}`, file: 'images/debian.wim', name: 'debian', compression: 'xpress' } }), { disk: ref.image });
}, 900_000);

afterAll(async () => {
  await removeDir(dir);
});

function plan(over: Partial<DeployPlanInput> = {}): ReturnType<typeof parsePlan> {
  return parsePlan({
    source: { url: `file://${share}`, image: 'images/debian.wim' },
    target: { layout: 'from-image' },
    specialize: { hostname: 'web-{mac}' },
    after: 'poweroff',
    ...over,
  });
}

async function deployTo(name: string, bytes: number, p: ReturnType<typeof parsePlan>, mac = '52:54:00:00:00:10'): Promise<{ disk: string; events: DeployEvent[] }> {
  const disk = await sparseFile(join(dir, name), bytes);
  const events: DeployEvent[] = [];
  await deploy(p, { disk, yes: true, facts: { mac }, events: (e) => events.push(e) });
  return { disk, events };
}

describe('a real Debian 12 deployed from an image', () => {
  it('with the layout from the image: every storage reference names the new filesystems, and the machine has its own identity', async () => {
    const { disk, events } = await deployTo('from-image.img', 3 * GiB, plan());
    const got = await readDeployedDebian(disk, oldNames);
    const [esp, root, swap] = [got.filesystems[1]!, got.filesystems[3]!, got.filesystems[4]!];
    expect([esp.TYPE, root.TYPE, swap.TYPE]).toEqual(['vfat', 'ext4', 'swap']);
    expect(got.fstab).toContain(`UUID=${root.UUID} /               ext4    errors=remount-ro 0       1`);
    expect(got.fstab).toContain(`UUID=${esp.UUID}  /boot/efi       vfat    umask=0077      0       1`);
    expect(got.fstab).toContain(`UUID=${swap.UUID} none            swap    sw              0       0`);
    expect(got.resume).toBe(`RESUME="UUID=${swap.UUID}"`);
    expect(got.initramfsResume).toBe(`UUID=${swap.UUID}`);
    expect(got.grubLinux.length).toBeGreaterThan(0);
    for (const l of got.grubLinux) expect(l).toMatch(new RegExp(`root=UUID=${root.UUID} `));
    // Nothing under /etc names the reference's filesystems any more.
    expect(got.stale).toEqual([]);
    expect(got.hostname).toBe('web-525400000010');
    expect(got.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(got.machineId).not.toBe(ref.machineId);
    expect(got.hostKeys.sort()).toEqual(['ssh_host_ecdsa_key', 'ssh_host_ed25519_key', 'ssh_host_rsa_key']);
    expect(got.hostKey).not.toBe(ref.hostKey);
    expect(got.espFiles).toEqual(expect.arrayContaining(['/EFI/BOOT/BOOTX64.EFI', '/EFI/debian/grubx64.efi']));
    // Secure Boot (the plan's default): the image's shim at the removable path, its signed GRUB
    // beside it, and that GRUB's config at its built-in prefix.
    expect(got.espFiles).toEqual(expect.arrayContaining(['/EFI/BOOT/grubx64.efi', '/EFI/BOOT/mmx64.efi', '/EFI/debian/grub.cfg']));
    expect(events.some((e) => e.type === 'step' && e.step === 'bootloader' && e.status === 'done' && e.detail?.includes("(shim and signed GRUB from the image's packages)"))).toBe(true);
    const steps = events.filter((e) => e.type === 'step' && e.status === 'done').map((e) => (e.type === 'step' ? `${e.step}: ${e.detail}` : ''));
    expect(steps).toEqual(expect.arrayContaining([expect.stringMatching(/^remap: 4 references in \/etc\/fstab, \/etc\/initramfs-tools\/conf\.d\/resume$/), expect.stringMatching(/^initramfs: update-initramfs for 6\./), expect.stringMatching(/^bootloader: the image's grub-install, BIOS, UEFI/), expect.stringMatching(/boot readiness/)]));
    // Each rewrite is in the log, file and line.
    expect(events.filter((e) => e.type === 'log' && e.text.startsWith('remap: /etc/fstab:'))).toHaveLength(3);
  });

  it('with a plan layout of other sizes: the references follow the mount points', async () => {
    const layout = {
      table: 'gpt' as const,
      partitions: [
        { name: 'efi', size: '100MiB', type: 'esp', format: 'vfat' as const, mount: '/boot/efi' },
        { name: 'bios', size: '1MiB', type: 'bios-boot' },
        { name: 'system', size: '2400MiB', type: 'linux', format: 'ext4' as const, mount: '/', label: 'system' },
        { name: 'swap', size: 'rest', type: 'linux-swap', format: 'swap' as const, mount: 'swap' },
      ],
    };
    const { disk } = await deployTo('plan-layout.img', 3 * GiB, plan({ target: { layout }, apply: [{ partition: 'system' }] }), '52:54:00:00:00:11');
    const got = await readDeployedDebian(disk, oldNames);
    const [esp, root, swap] = [got.filesystems[1]!, got.filesystems[3]!, got.filesystems[4]!];
    expect(root.LABEL).toBe('system');
    expect(got.fstab).toContain(`UUID=${root.UUID} /`);
    expect(got.fstab).toContain(`UUID=${esp.UUID}  /boot/efi`);
    expect(got.fstab).toContain(`UUID=${swap.UUID} none`);
    expect(got.initramfsResume).toBe(`UUID=${swap.UUID}`);
    expect(got.stale).toEqual([]);
  });

  it('keeping the identities: the filesystems are made with the reference UUIDs and nothing is rewritten', async () => {
    const p = plan();
    p.target.identities = 'keep';
    const { disk, events } = await deployTo('keep.img', 3 * GiB, p, '52:54:00:00:00:12');
    const got = await readDeployedDebian(disk, []);
    expect([got.filesystems[3]!.UUID, got.filesystems[1]!.UUID, got.filesystems[4]!.UUID]).toEqual([ref.uuids.root, ref.uuids.esp, ref.uuids.swap]);
    expect(got.fstab).toContain(`UUID=${ref.uuids.root} /`);
    expect(events.find((e) => e.type === 'step' && e.step === 'remap' && e.status === 'done')).toMatchObject({ detail: "nothing to rewrite: the filesystems keep the reference's identities" });
    // The machine's own identity is still new.
    expect(got.hostKey).not.toBe(ref.hostKey);
  });

  it('from an image captured on the host (no layout recorded): the plan layout mount points are the mapping; MAC-bound network files are made generic; verify refuses an fstab entry that names nothing here', async () => {
    // A copy of the reference, changed the way an administrator would, captured with imagepe capture.
    const copy = join(dir, 'host-copy.img');
    await run('cp', ['--sparse=always', ref.image, copy]);
    const tree = await tempDir('debian-tree');
    const mounted = await partition.withAttachedImage(copy, async (loop) => {
      const nodes = await partition.waitForPartitions(loop, [3], 15_000, (what) => ({ what, timeoutMs: 60_000 }));
      await run('mount', [nodes.get(3)!, tree]);
      try {
        await mkdir(join(tree, 'etc/netplan'), { recursive: true });
        await writeFile(join(tree, 'etc/netplan/01-lan.yaml'), 'network:\n  version: 2\n  ethernets:\n    lan:\n      match:\n        macaddress: "52:54:00:aa:bb:cc"\n      set-name: lan0\n      dhcp4: true\n');
        await mkdir(join(tree, 'etc/systemd/network'), { recursive: true });
        await writeFile(join(tree, 'etc/systemd/network/10-lan.link'), '[Match]\nMACAddress=52:54:00:aa:bb:cc\n[Link]\nName=lan0\n');
        await imaging.generalize(tree);
        await imaging.capture(tree, join(share, 'images/host.wim'), { name: 'host', compression: 'xpress', unixData: true, skipSpaceCheck: true });
        // The same system with a mount of a disk the deployed machine will not have.
        await writeFile(join(tree, 'etc/fstab'), `${await readFile(join(tree, 'etc/fstab'), 'utf8')}UUID=${randomUUID()} /srv/data ext4 defaults 0 2\n`);
        await imaging.capture(tree, join(share, 'images/broken.wim'), { name: 'broken', compression: 'xpress', unixData: true, skipSpaceCheck: true });
        return true;
      } finally {
        await run('umount', [tree]);
      }
    });
    expect(mounted).toBe(true);
    await removeDir(tree);

    const layout = {
      table: 'gpt' as const,
      partitions: [
        { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat' as const, mount: '/boot/efi' },
        { name: 'bios', size: '1MiB', type: 'bios-boot' },
        { name: 'root', size: '2200MiB', type: 'linux', format: 'ext4' as const, mount: '/' },
        { name: 'swap', size: 'rest', type: 'linux-swap', format: 'swap' as const, mount: 'swap' },
      ],
    };
    const hostPlan = (image: string) => plan({ source: { url: `file://${share}`, image }, target: { layout }, apply: [{ partition: 'root' }] });
    const { disk } = await deployTo('host.img', 3 * GiB, hostPlan('images/host.wim'), '52:54:00:00:00:13');
    const got = await readDeployedDebian(disk, oldNames);
    expect(got.fstab).toContain(`UUID=${got.filesystems[3]!.UUID} /`);
    expect(got.fstab).toContain(`UUID=${got.filesystems[1]!.UUID}  /boot/efi`);
    expect(got.initramfsResume).toBe(`UUID=${got.filesystems[4]!.UUID}`);
    expect(got.stale).toEqual([]);
    await partition.withAttachedImage(
      disk,
      async (loop) => {
        const nodes = await partition.waitForPartitions(loop, [3], 15_000, (what) => ({ what, timeoutMs: 60_000 }));
        const mnt = await tempDir('deployed-host');
        await run('mount', ['-o', 'ro,noload', nodes.get(3)!, mnt]);
        try {
          const netplan = await readFile(join(mnt, 'etc/netplan/01-lan.yaml'), 'utf8');
          expect(netplan).not.toContain('52:54:00:aa:bb:cc');
          expect(netplan).not.toContain('set-name');
          expect(await readFile(join(mnt, 'etc/systemd/network/10-lan.link'), 'utf8').catch(() => 'removed')).toBe('removed');
        } finally {
          await run('umount', [mnt]);
          await removeDir(mnt);
        }
      },
      { readOnly: true },
    );

    // The broken image: the deploy fails at verify, naming the file, the line and what is missing.
    const broken = await sparseFile(join(dir, 'broken.img'), 3 * GiB);
    const events: DeployEvent[] = [];
    await expect(deploy(hostPlan('images/broken.wim'), { disk: broken, yes: true, facts: { mac: '52:54:00:00:00:14' }, events: (e) => events.push(e) })).rejects.toMatchObject({ code: 'VERIFY_FAILED' });
    const failed = events[events.length - 1]!;
    expect(failed).toMatchObject({ type: 'failed', step: 'verify', diskTouched: true });
    expect(failed.type === 'failed' && failed.message).toMatch(/\/etc\/fstab line 14: UUID=[0-9a-f-]{36} \(mounted on \/srv\/data\) is no filesystem on this disk/);
    expect(events.some((e) => e.type === 'deployed')).toBe(false);
  });
});
