import { REFERENCE_LAYOUT } from '../../test-support/reference-system.js';
import { jest } from '@jest/globals';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { run } from '../../core/index.js';
import { capture, generalize } from '../../imaging/index.js';
import { withAttachedImage } from '../../partition/index.js';
import { makeReferenceTree } from '../../test-support/reference-tree.js';
import { removeDir, sparseFile, tempDir } from '../../test-support/tree.js';
import { parsePlan, type DeployPlanInput } from '../plan/index.js';
import { specializeLinux } from '../specialize/index.js';
import { deploy, sha256File } from './index.js';
import { DeployEventSchema, type DeployEvent } from '../events/index.js';

// A tiny reference system (busybox, an init, the host's kernel) is generalized, captured into a
// file:// "share" and deployed into sparse disk images through loop devices; every assertion
// reads the disk back with tools that did not write it.

const GiB = 1024 ** 3;
// Jest takes testTimeout from the root config only, not from the integration project.
jest.setTimeout(90_000);
const FACTS = { mac: '52:54:00:12:34:56', serial: 'SN 0042' };
let dir: string;
let share: string;
let wimSha: string;

function planInput(overrides: { sha256?: string; wipe?: boolean } = {}): DeployPlanInput {
  return {
    source: { url: `file://${share}`, image: 'images/ref.wim', index: 'reference', sha256: overrides.sha256 ?? wimSha },
    target: {
      wipe: overrides.wipe ?? false,
      layout: REFERENCE_LAYOUT,
    },
    apply: [{ partition: 'root' }],
    specialize: { hostname: 'node-{mac}', files: [{ path: '/etc/motd', content: 'deployed by imagepe\n', mode: '0640' }] },
    bootloader: { type: 'grub', firmware: 'both', kernelArgs: 'quiet' },
    after: 'poweroff',
  };
}

function withDisk<T>(image: string, fn: (loop: string) => Promise<T>): Promise<T> {
  return withAttachedImage(image, fn, { readOnly: true });
}

async function blkid(node: string): Promise<Record<string, string>> {
  const r = await run('blkid', ['--probe', '--output', 'export', node], { okExitCodes: [0, 2] });
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

interface RootSnapshot {
  hostname: string;
  hosts: string;
  machineId: string;
  ssh: string[];
  motd: string;
  motdMode: number;
  grubCfg: string;
  marker: Record<string, unknown>;
  busybox: string;
  efiDirInRoot: string[];
  dbusMachineId: boolean;
}

async function readRoot(node: string): Promise<RootSnapshot> {
  const mnt = await tempDir('deployed-root');
  await run('mount', ['-o', 'ro', node, mnt]);
  try {
    const { stat } = await import('node:fs/promises');
    return {
      hostname: await readFile(join(mnt, 'etc/hostname'), 'utf8'),
      hosts: await readFile(join(mnt, 'etc/hosts'), 'utf8'),
      machineId: await readFile(join(mnt, 'etc/machine-id'), 'utf8'),
      ssh: await readdir(join(mnt, 'etc/ssh')),
      motd: await readFile(join(mnt, 'etc/motd'), 'utf8'),
      motdMode: (await stat(join(mnt, 'etc/motd'))).mode & 0o7777,
      grubCfg: await readFile(join(mnt, 'boot/grub/grub.cfg'), 'utf8'),
      marker: JSON.parse(await readFile(join(mnt, 'var/lib/imagepe/deployed.json'), 'utf8')) as Record<string, unknown>,
      busybox: await sha256File(join(mnt, 'bin/busybox')),
      efiDirInRoot: await readdir(join(mnt, 'boot/efi')).catch(() => ['(missing)']),
      dbusMachineId: await stat(join(mnt, 'var/lib/dbus/machine-id')).then(() => true, () => false),
    };
  } finally {
    await run('umount', [mnt]);
    await removeDir(mnt);
  }
}

beforeAll(async () => {
  dir = await tempDir('deploy');
  share = join(dir, 'share');
  const ref = join(dir, 'reference');
  // The host's kernel and a file under the ESP's mount point; no initrd.
  await makeReferenceTree(ref, { kernel: true, espFile: true });
  await generalize(ref);
  await mkdir(join(share, 'images'), { recursive: true });
  await capture(ref, join(share, 'images/ref.wim'), { name: 'reference', compression: 'xpress' });
  wimSha = await sha256File(join(share, 'images/ref.wim'));
}, 60_000);

afterAll(async () => {
  await removeDir(dir);
});

describe('deploy into a disk image', () => {
  const events: DeployEvent[] = [];
  let disk: string;
  let first: RootSnapshot;

  it('deploys a GPT disk for UEFI and BIOS and reads everything back', async () => {
    disk = await sparseFile(join(dir, 'disk.img'), GiB);
    const input = planInput();
    input.source = { ...input.source, credentials: { username: 'deploy', password: 'pw-never-logged' } };
    const result = await deploy(parsePlan(input), { disk, yes: true, facts: FACTS, events: (e) => events.push(e) });

    // Events: each a valid line of the schema, steps in the order the issue lists, then deployed.
    for (const e of events) expect(DeployEventSchema.safeParse(JSON.parse(JSON.stringify(e))).success).toBe(true);
    const done = events.filter((e) => e.type === 'step' && e.status !== 'started').map((e) => (e.type === 'step' ? e.step : ''));
    expect(done).toEqual(['plan', 'disk', 'share', 'check', 'partition', 'format', 'apply', 'remap', 'specialize', 'initramfs', 'bootloader', 'verify']);
    // The busybox reference has no initramfs tool: the step says so and skips.
    expect(events.find((e) => e.type === 'step' && e.step === 'initramfs' && e.status === 'skipped')).toMatchObject({ detail: 'the image has neither update-initramfs nor dracut' });
    expect(events[events.length - 1]).toMatchObject({ type: 'deployed', disk, hostname: 'node-525400123456', after: 'poweroff' });
    expect(events.some((e) => e.type === 'progress' && e.step === 'apply' && e.unit === 'bytes' && e.total !== undefined && e.done === e.total)).toBe(true);
    expect(events.some((e) => e.type === 'progress' && e.step === 'check' && e.phase === 'Hashing image')).toBe(true);
    expect(result.machineId).toMatch(/^[0-9a-f]{32}$/);

    // The loop device deploy attached is gone again.
    expect((await run('losetup', ['--associated', disk, '--noheadings'])).stdout.trim()).toBe('');

    await withDisk(disk, async (loop) => {
      const table = (JSON.parse((await run('sfdisk', ['--json', loop])).stdout) as { partitiontable: { label: string; partitions: { name: string; type: string }[] } }).partitiontable;
      expect(table.label).toBe('gpt');
      expect(table.partitions.map((p) => p.name)).toEqual(['ESP', 'bios-boot', 'root']);
      const rootFs = await blkid(`${loop}p3`);
      expect(rootFs.TYPE).toBe('ext4');
      expect((await blkid(`${loop}p1`)).TYPE).toBe('vfat');

      first = await readRoot(`${loop}p3`);
      expect(first.hostname).toBe('node-525400123456\n');
      expect(first.hosts).toContain('127.0.1.1\tnode-525400123456');
      expect(first.hosts).not.toContain('reference');
      expect(first.machineId).toMatch(/^[0-9a-f]{32}\n$/);
      expect(first.machineId.trim()).toBe(result.machineId);
      expect(first.machineId).not.toContain('0123456789abcdef');
      expect(first.ssh.filter((n) => n.startsWith('ssh_host_'))).toEqual([]);
      expect(first.ssh).toContain('sshd_config');
      expect(first.motd).toBe('deployed by imagepe\n');
      expect(first.motdMode).toBe(0o640);
      expect(first.busybox).toBe(await sha256File('/usr/bin/busybox'));
      expect(first.dbusMachineId).toBe(false);
      expect(first.efiDirInRoot).toEqual([]);
      // The fixture has no initrd, so the kernel must find its root by PARTUUID on its own.
      expect(rootFs.PART_ENTRY_UUID).toMatch(/^[0-9a-f-]{36}$/);
      expect(first.grubCfg).toContain(`root=PARTUUID=${rootFs.PART_ENTRY_UUID} rootwait`);
      expect(first.grubCfg).toContain(`search --no-floppy --fs-uuid --set=root ${rootFs.UUID}`);
      expect(first.grubCfg).toMatch(/linux \/boot\/vmlinuz-\S+ root=PARTUUID=\S+ rootwait rw console=tty0 console=ttyS0,115200 quiet/);
      expect(first.marker).toMatchObject({ hostname: 'node-525400123456', sha256: wimSha, machineId: result.machineId });

      const efi = await run('mdir', ['-b', '-i', `${loop}p1`, '::/EFI/BOOT'], { env: { MTOOLS_SKIP_CHECK: '1' } });
      expect(efi.stdout).toMatch(/BOOTX64\.EFI/i);
      const efiBin = await run('mtype', ['-i', `${loop}p1`, '::/EFI/BOOT/BOOTX64.EFI'], { env: { MTOOLS_SKIP_CHECK: '1' } });
      expect(efiBin.stdout.startsWith('MZ')).toBe(true);
      expect((await run('mtype', ['-i', `${loop}p1`, '::/EFI/vendor/hello.txt'], { env: { MTOOLS_SKIP_CHECK: '1' } })).stdout).toBe('on the ESP\n');
    });

    const bytes = await readFile(disk);
    // GRUB's boot.img in the MBR (it carries the "GRUB " string) and core.img in bios-boot (1 MiB into a 64 MiB ESP + 1 MiB = sector 133120).
    expect(bytes.subarray(0, 440).includes(Buffer.from('GRUB '))).toBe(true);
    expect(bytes.subarray(65 * 1024 * 1024 + 0, 65 * 1024 * 1024 + 512).some((b) => b !== 0)).toBe(true);
    expect(bytes.readUInt16LE(510)).toBe(0xaa55);

    // The log went to the share.
    const logs = await readdir(join(share, 'logs'));
    const log = logs.find((n) => n.startsWith('node-525400123456-'));
    expect(log).toBeDefined();
    const logText = await readFile(join(share, 'logs', log!), 'utf8');
    expect(logText).not.toContain('pw-never-logged');
    expect(JSON.stringify(events)).not.toContain('pw-never-logged');
    const lines = logText.trim().split('\n');
    expect(JSON.parse(lines[lines.length - 1]!)).toMatchObject({ type: 'deployed' });
  });

  it('refuses a disk that is not blank when the plan does not say wipe, before writing anything', async () => {
    const before = await sha256File(disk);
    const got: DeployEvent[] = [];
    await expect(deploy(parsePlan(planInput()), { disk, yes: true, facts: FACTS, events: (e) => got.push(e) })).rejects.toMatchObject({ code: 'REFUSED' });
    expect(got[got.length - 1]).toMatchObject({ type: 'failed', step: 'disk', code: 'REFUSED', diskTouched: false });
    expect(await sha256File(disk)).toBe(before);
  });

  it('deploys again over it with wipe and gives the machine a new machine-id', async () => {
    await deploy(parsePlan(planInput({ wipe: true })), { disk, yes: true, facts: FACTS });
    const second = await withDisk(disk, (loop) => readRoot(`${loop}p3`));
    expect(second.hostname).toBe(first.hostname);
    expect(second.machineId).toMatch(/^[0-9a-f]{32}\n$/);
    expect(second.machineId).not.toBe(first.machineId);
  });
});

describe('deploy with a wrong image checksum', () => {
  it('fails at the check step and leaves the disk blank', async () => {
    const disk = await sparseFile(join(dir, 'blank.img'), GiB);
    const before = await sha256File(disk);
    const events: DeployEvent[] = [];
    await expect(deploy(parsePlan(planInput({ sha256: 'f'.repeat(64) })), { disk, yes: true, facts: FACTS, events: (e) => events.push(e) })).rejects.toMatchObject({ code: 'WIM_CORRUPT' });
    const failed = events[events.length - 1];
    expect(failed).toMatchObject({ type: 'failed', step: 'check', code: 'WIM_CORRUPT', diskTouched: false });
    expect(failed?.type === 'failed' && failed.message).toContain('f'.repeat(64));
    expect(events.some((e) => e.type === 'step' && e.step === 'partition')).toBe(false);
    expect(events.some((e) => e.type === 'deployed')).toBe(false);
    expect(await sha256File(disk)).toBe(before);
    expect((await run('losetup', ['--associated', disk, '--noheadings'])).stdout.trim()).toBe('');
  });
});

describe('deploy from an http source', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/images/ref.wim') {
        res.writeHead(404).end();
        return;
      }
      void readFile(join(share, 'images/ref.wim')).then((data) => res.writeHead(200, { 'content-length': data.length }).end(data));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('downloads the image, checks its sha256 on the way and deploys it', async () => {
    const disk = await sparseFile(join(dir, 'http.img'), GiB);
    const input = planInput();
    input.source = { ...input.source, url: `${base}/` };
    input.bootloader = { type: 'none' };
    const events: DeployEvent[] = [];
    const result = await deploy(parsePlan(input), { disk, yes: true, facts: FACTS, scratchDir: dir, events: (e) => events.push(e) });
    expect(events.some((e) => e.type === 'progress' && e.step === 'check' && e.phase === 'Downloading image' && e.done === e.total)).toBe(true);
    expect(events.some((e) => e.type === 'step' && e.step === 'bootloader' && e.status === 'skipped')).toBe(true);
    const root = await withDisk(disk, async (loop) => {
      const mnt = await tempDir('http-root');
      await run('mount', ['-o', 'ro', `${loop}p3`, mnt]);
      try {
        return { busybox: await sha256File(join(mnt, 'bin/busybox')), machineId: (await readFile(join(mnt, 'etc/machine-id'), 'utf8')).trim() };
      } finally {
        await run('umount', [mnt]);
        await removeDir(mnt);
      }
    });
    expect(root.busybox).toBe(await sha256File('/usr/bin/busybox'));
    expect(root.machineId).toBe(result.machineId);
    // The download was a scratch copy; it is gone.
    expect((await readdir(dir)).filter((n) => n.endsWith('ref.wim'))).toEqual([]);
  });

  it('fails at check on a 404 without touching the disk', async () => {
    const disk = await sparseFile(join(dir, 'http404.img'), GiB);
    const input = planInput();
    input.source = { ...input.source, url: `${base}/missing/` };
    const events: DeployEvent[] = [];
    await expect(deploy(parsePlan(input), { disk, yes: true, facts: FACTS, scratchDir: dir, events: (e) => events.push(e) })).rejects.toThrow(/HTTP 404/);
    expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: 'check', diskTouched: false });
  });
});

describe('specialize', () => {
  it('resolves the image\'s absolute symlinks inside the image, never on this machine', async () => {
    const root = await tempDir('specialize');
    try {
      await mkdir(join(root, 'etc/ssh'), { recursive: true });
      await mkdir(join(root, 'run'), { recursive: true });
      await symlink('/run/hostname', join(root, 'etc/hostname'));
      await symlink('/run', join(root, 'var-run'));
      await writeFile(join(root, 'etc/ssh/ssh_host_rsa_key'), 'k');
      await writeFile(join(root, 'etc/ssh/ssh_host_rsa_key.pub'), 'k');
      const r = await specializeLinux(root, { hostname: 'pc9', machineId: 'new', removeSshHostKeys: true, files: [{ path: '/var-run/x/note', content: 'n', mode: '0600' }] });
      expect(await readFile(join(root, 'run/hostname'), 'utf8')).toBe('pc9\n');
      expect(await readFile(join(root, 'run/x/note'), 'utf8')).toBe('n');
      expect(await readdir(join(root, 'etc/ssh'))).toEqual([]);
      expect(r.removed.sort()).toEqual(['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_rsa_key.pub']);
      expect((await readFile(join(root, 'etc/machine-id'), 'utf8')).trim()).toBe(r.machineId);
    } finally {
      await removeDir(root);
    }
  });
});

describe('deploy a Windows-style image to NTFS', () => {
  it('applies in NTFS mode and places unattend.xml in Windows/Panther', async () => {
    const tree = join(dir, 'win');
    await mkdir(join(tree, 'Windows/System32'), { recursive: true });
    await writeFile(join(tree, 'Windows/System32/kernel32.dll'), Buffer.alloc(100_000, 7));
    await writeFile(join(tree, 'bootmgr'), 'bootmgr');
    await capture(tree, join(share, 'images/win.wim'), { name: 'win', compression: 'xpress', unixData: false });
    const disk = await sparseFile(join(dir, 'win.img'), GiB / 2);
    const xml = '<?xml version="1.0"?><unattend xmlns="urn:schemas-microsoft-com:unattend"/>\n';
    const plan = parsePlan({
      source: { url: `file://${share}`, image: 'images/win.wim' },
      target: { layout: { table: 'mbr', firmware: 'bios', partitions: [{ name: 'windows', size: 'rest', type: 'windows-basic', format: 'ntfs', flags: ['bootable'] }] } },
      apply: [{ partition: 'windows' }],
      specialize: { unattend: { xml } },
      bootloader: { type: 'none' },
    });
    const events: DeployEvent[] = [];
    await deploy(plan, { disk, yes: true, facts: FACTS, events: (e) => events.push(e) });
    expect(events.find((e) => e.type === 'step' && e.step === 'specialize' && e.status === 'done')).toMatchObject({ detail: 'Windows/Panther/unattend.xml' });
    await withDisk(disk, async (loop) => {
      expect((await blkid(`${loop}p1`)).TYPE).toBe('ntfs');
      expect((await run('ntfscat', [`${loop}p1`, 'Windows/Panther/unattend.xml'])).stdout).toBe(xml);
      const dll = await run('ntfscat', [`${loop}p1`, 'Windows/System32/kernel32.dll']);
      expect(String(dll.stdout).length).toBe(100_000);
    });
  });
});

describe('cancelling a deploy', () => {
  it('stops at the running step and releases the mounts and the loop device', async () => {
    const disk = await sparseFile(join(dir, 'cancel.img'), GiB);
    const controller = new AbortController();
    const events: DeployEvent[] = [];
    const sink = (e: DeployEvent) => {
      events.push(e);
      if (e.type === 'step' && e.step === 'apply' && e.status === 'started') controller.abort();
    };
    await expect(deploy(parsePlan(planInput()), { disk, yes: true, facts: FACTS, signal: controller.signal, events: sink })).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: 'apply', code: 'CANCELLED', diskTouched: true });
    expect((await run('losetup', ['--associated', disk, '--noheadings'])).stdout.trim()).toBe('');
    // Only this deploy's mounts: other test files may be deploying on the other worker.
    const diskDone = events.find((e) => e.type === 'step' && e.step === 'disk' && e.status === 'done');
    const loop = /\((\/dev\/loop\d+)\)/.exec(diskDone?.type === 'step' ? (diskDone.detail ?? '') : '')?.[1];
    expect(loop).toBeDefined();
    expect(await readFile('/proc/self/mounts', 'utf8')).not.toMatch(new RegExp(`^${loop}p\\d+ `, 'm'));
  });
});
