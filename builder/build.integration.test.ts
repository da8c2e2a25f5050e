import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../core/index.js';
import { readBootReport } from '../iso/index.js';
import { parseEventLine } from '../agent/events/index.js';
import { sharedTestBuild } from '../qemu-tests/shared-build.js';
import { bundleAgent, buildPe, libraryClosure, parseBuildConfig, readElfFile, type BuildResult } from './index.js';
import { AGENT_NODE_FLAGS } from './initramfs.js';

const sha256 = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

async function listInitramfs(initrd: string, dir: string): Promise<Map<string, string>> {
  const cpio = join(dir, 'initrd.cpio');
  await run('zstd', ['-d', '-q', '-f', '-o', cpio, initrd]);
  const r = await run('cpio', ['-itv', '--quiet', '-F', cpio]);
  // "lrwxrwxrwx ... usr/bin/node -> /run/imagepe/pe/usr/bin/node": path → link target or ''
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const m = /^\S+\s+\S+\s+\S+\s+\S+\s+(?:\d+,\s*)?\d+\s+\S+\s+\S+\s+\S+\s+(.*)$/.exec(line);
    if (!m) continue;
    const [path, target] = m[1]!.split(' -> ');
    out.set(path!, target ?? '');
  }
  return out;
}

async function listSquashfs(image: string): Promise<Set<string>> {
  const r = await run('unsquashfs', ['-l', '-d', '', image]);
  return new Set(r.stdout.split('\n').filter((l) => l.startsWith('/')).map((l) => l.slice(1)));
}

async function extractFromIso(iso: string, path: string, to: string): Promise<void> {
  await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', path, to]);
}

describe('ELF closure on real binaries', () => {
  it('finds every library of /usr/bin/node without ldd', async () => {
    const info = await readElfFile('/usr/bin/node');
    expect(info.interpreter).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(info.needed).toContain('libc.so.6');
    const c = await libraryClosure(['/usr/bin/node', '/usr/sbin/mount.cifs', '/usr/bin/wimlib-imagex']);
    expect(c.unresolved).toEqual([]);
    expect(c.files).toEqual(expect.arrayContaining(['/usr/bin/node', '/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/libc.so.6']));
    expect(c.files.some((f) => f.includes('libwim.so'))).toBe(true);
  });
});

describe('imagepe build', () => {
  let build: BuildResult;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'imagepe-build-test-'));
    build = await sharedTestBuild();
  }, 180_000);
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('packs the PE: a core initramfs that finds the medium, and a squashfs payload with node, the tools and their libraries', async () => {
    await extractFromIso(build.iso, '/boot/initrd.img', join(work, 'core.img'));
    await extractFromIso(build.iso, '/imagepe/pe.sqfs', join(work, 'pe.sqfs'));
    const core = await listInitramfs(join(work, 'core.img'), work);
    const payload = await listSquashfs(join(work, 'pe.sqfs'));
    const v = build.kernel.version;
    const inCore = [
      'init', 'dev/console', 'usr/bin/busybox', 'usr/share/imagepe/agent.cjs', 'usr/share/imagepe/agent-loader.cjs', 'usr/share/imagepe/agent.cache', 'usr/share/imagepe/udhcpc.script',
      `usr/lib/modules/${v}/modules.dep`, `usr/lib/modules/${v}/modules.alias`,
      `usr/lib/modules/${v}/kernel/drivers/block/virtio_blk.ko`, `usr/lib/modules/${v}/kernel/drivers/nvme/host/nvme.ko`,
      `usr/lib/modules/${v}/kernel/drivers/scsi/sd_mod.ko`, `usr/lib/modules/${v}/kernel/drivers/usb/storage/usb-storage.ko`,
      `usr/lib/modules/${v}/kernel/fs/isofs/isofs.ko`, `usr/lib/modules/${v}/kernel/fs/squashfs/squashfs.ko`,
      `usr/lib/modules/${v}/kernel/crypto/cmac.ko`, `usr/lib/modules/${v}/kernel/crypto/ccm.ko`, `usr/lib/modules/${v}/kernel/crypto/gcm.ko`,
      `usr/lib/modules/${v}/kernel/arch/x86/crypto/aesni-intel.ko`,
    ];
    for (const f of inCore) expect(core.get(f) === '' ? f : `not a file in the core: ${f}`).toBe(f);
    expect(core.get('usr/bin/sh')).toBe('busybox');
    const inPayload = [
      'usr/bin/node', 'usr/sbin/sfdisk', 'usr/sbin/wipefs', 'usr/sbin/blkid', 'usr/bin/lsblk', 'usr/sbin/losetup', 'usr/bin/partx', 'usr/sbin/mke2fs', 'usr/sbin/mkfs.fat',
      'usr/bin/ntfs-3g', 'usr/bin/wimlib-imagex', 'usr/sbin/mount.cifs', 'usr/sbin/grub-install', 'usr/bin/efibootmgr',
      'usr/lib/x86_64-linux-gnu/libc.so.6', 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
      'usr/lib/grub/i386-pc/normal.mod', 'usr/lib/grub/x86_64-efi/normal.mod',
      `usr/lib/modules/${v}/kernel/drivers/net/virtio_net.ko`, `usr/lib/modules/${v}/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko`,
      `usr/lib/modules/${v}/kernel/fs/smb/client/cifs.ko`, `usr/lib/modules/${v}/kernel/fs/ext4/ext4.ko`,
    ];
    for (const f of inPayload) {
      expect(payload.has(f) ? f : `missing from the payload: ${f}`).toBe(f);
      // The core links every payload file at its own path into the payload's mount point.
      expect(core.get(f)).toBe(`/run/imagepe/pe/${f}`);
    }
    expect(core.get('usr/lib64/ld-linux-x86-64.so.2')).toBe('../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
    expect([...payload].some((f) => f.includes('x86_64-efi/monolithic'))).toBe(false);
    expect(build.coreInitrdBytes).toBeLessThan(20 * 1024 * 1024);
  });

  it('carries the payload in the PXE initrd as a second archive after the core', async () => {
    const initrd = await readFile(build.pxe.initrd);
    expect(initrd.readUInt32LE(0)).toBe(0xfd2fb528); // zstd frame magic
    const second = Math.ceil(build.coreInitrdBytes / 4) * 4;
    expect(initrd.toString('ascii', second, second + 6)).toBe('070701');
    // The directory comes first, then the image.
    expect(initrd.toString('ascii', second + 110, second + 118)).toBe('imagepe\0');
    expect(initrd.toString('ascii', second, second + 512)).toContain('imagepe/pe.sqfs\0');
    expect(initrd.length).toBeGreaterThan(build.coreInitrdBytes + build.payloadBytes);
  });

  it('writes a hybrid ISO with BIOS and UEFI El Torito entries and a GPT, within the size budget', async () => {
    const report = await readBootReport(build.iso);
    expect(report.entries.map((e) => e.platform)).toEqual(['BIOS', 'UEFI']);
    expect(report.entries[0]!.path).toBe('/boot/grub/bios.img');
    expect(report.systemArea).toMatch(/grub2-mbr/);
    expect(report.systemArea).toMatch(/GPT/);
    expect(report.volumeId).toBe(build.volumeId);
    // 80 MiB before Secure Boot; the signed chain adds about 6 MiB to the ESP (shim, the signed CD
    // GRUB, MokManager) and 4 MiB of the same kind to the payload, for deployed disks.
    expect(build.isoBytes).toBeLessThanOrEqual(90 * 1024 * 1024);
  });

  it('puts the signed chain on the ESP: shim at the removable path, the signed CD GRUB beside it, its config at its prefix', async () => {
    const table = JSON.parse((await run('sfdisk', ['--json', build.iso])).stdout) as { partitiontable: { sectorsize?: number; partitions: { start: number; type: string }[] } };
    const esp = table.partitiontable.partitions.find((p) => /C12A7328-F81F-11D2-BA4B-00A0C93EC93B/i.test(p.type));
    expect(esp).toBeDefined();
    const image = `${build.iso}@@${esp!.start * (table.partitiontable.sectorsize ?? 512)}`;
    const env = { MTOOLS_SKIP_CHECK: '1' };
    const copy = async (path: string) => {
      const to = join(work, path.replace(/\//g, '_'));
      await run('mcopy', ['-n', '-i', image, `::${path}`, to], { env });
      return readFile(to);
    };
    expect((await copy('/EFI/BOOT/BOOTX64.EFI')).equals(await readFile('/usr/lib/shim/shimx64.efi.signed'))).toBe(true);
    expect((await copy('/EFI/BOOT/grubx64.efi')).equals(await readFile('/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed'))).toBe(true);
    expect((await copy('/EFI/BOOT/mmx64.efi')).equals(await readFile('/usr/lib/shim/mmx64.efi.signed'))).toBe(true);
    const cfg = (await copy('/boot/grub/grub.cfg')).toString('utf8');
    expect(cfg).toMatch(/^search --no-floppy --set=root --file \/imagepe-/m);
    expect(cfg).toContain('configfile $prefix/grub.cfg');
    // The fallback the signed CD GRUB searches for, on the ISO.
    await extractFromIso(build.iso, '/.disk/info', join(work, 'info'));
    expect(await readFile(join(work, 'info'), 'utf8')).toBe(`imagepe PE ${build.volumeId}\n`);
    // The PE carries the disk GRUB and shim for deployed disks, at their packaged paths.
    await extractFromIso(build.iso, '/imagepe/pe.sqfs', join(work, 'pe-sb.sqfs'));
    const payload = await listSquashfs(join(work, 'pe-sb.sqfs'));
    for (const f of ['usr/lib/shim/shimx64.efi.signed', 'usr/lib/shim/mmx64.efi.signed', 'usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed']) expect(payload.has(f) ? f : `missing: ${f}`).toBe(f);
  });

  it('writes the PXE bundle', async () => {
    const ipxe = await readFile(build.pxe.ipxeScript, 'utf8');
    expect(ipxe).toMatch(/^#!ipxe/);
    expect(ipxe).toContain('kernel vmlinuz initrd=initrd.img');
    expect(await readFile(build.pxe.grubConfig, 'utf8')).toContain('initrd $imagepe_dir/initrd.img');
    // UEFI network boot with Secure Boot: shim, the signed network GRUB under the name shim
    // loads, and the config at that GRUB's prefix (/grub), which finds the kernel beside grub/.
    const sb = build.pxe.secureBoot!;
    expect((await readFile(sb.shim)).equals(await readFile('/usr/lib/shim/shimx64.efi.signed'))).toBe(true);
    expect((await readFile(sb.grub)).equals(await readFile('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'))).toBe(true);
    expect(sb.grubConfig).toBe(join(build.pxe.dir, 'grub', 'grub.cfg'));
    expect(await readFile(sb.grubConfig, 'utf8')).toContain('"$prefix"');
    expect((await stat(build.pxe.kernel)).size).toBeGreaterThan(1_000_000);
  });

  it('rebuilds with nothing changed from the cache in at most 3 s', async () => {
    const again = await buildPe({ config: parseBuildConfig({}), outputDir: join(work, 'again') });
    expect(again.cached).toBe(true);
    expect(again.cacheKey).toBe(build.cacheKey);
    expect(again.durationMs).toBeLessThanOrEqual(3_000);
    expect(await sha256(again.iso)).toBe(await sha256(build.iso));
  }, 30_000);

  it('is reproducible: two uncached builds give byte-identical ISOs', async () => {
    const a = await buildPe({ config: parseBuildConfig({}), outputDir: join(work, 'a'), cacheDir: join(work, 'cache-a'), useCache: false, sourceDateEpoch: 1_700_000_000 });
    const b = await buildPe({ config: parseBuildConfig({}), outputDir: join(work, 'b'), cacheDir: join(work, 'cache-b'), useCache: false, sourceDateEpoch: 1_700_000_000 });
    expect(a.cached || b.cached).toBe(false);
    expect(await sha256(b.pxe.initrd)).toBe(await sha256(a.pxe.initrd));
    expect(await sha256(b.iso)).toBe(await sha256(a.iso));
  }, 180_000);
});

describe('agent bundle', () => {
  it("the PE's loader takes the build's code cache, with the PE's Node.js and flags", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imagepe-cache-'));
    try {
      await extractFromIso((await sharedTestBuild()).iso, '/boot/initrd.img', join(dir, 'core.img'));
      const core = await listInitramfs(join(dir, 'core.img'), dir);
      expect(core.get('usr/share/imagepe/agent.cache')).toBe('');
      await run('cpio', ['-id', '--quiet', '-F', join(dir, 'initrd.cpio'), 'usr/share/imagepe/*'], { cwd: dir });
      const loader = join(dir, 'usr/share/imagepe/agent-loader.cjs');
      // The top level runs, the agent is held back (as when the build made the cache); the
      // loader says what V8 did with the cache.
      const probe = "require('node:vm'); globalThis.imagepeHoldAgent = true; require(process.argv[1]); process.stdout.write(process.env.IMAGEPE_CODE_CACHE)";
      const r = await run(process.execPath, [...AGENT_NODE_FLAGS, '-e', probe, loader], { timeoutMs: 30_000 });
      expect(r.stdout).toBe('accepted');
      // Without the PE's flags V8 refuses it, and the agent still loads (compiled from scratch).
      const plain = await run(process.execPath, ['-e', probe, loader], { timeoutMs: 30_000 });
      expect(plain.stdout).toBe('rejected');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs under plain node without node_modules and prints a ready event', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imagepe-agent-'));
    try {
      const file = join(dir, 'agent.cjs');
      const bundle = await bundleAgent();
      // Everything the deploy needs is inlined; under emulation parsing costs time, so it stays small.
      expect(bundle.length).toBeLessThan(1024 * 1024);
      await writeFile(file, bundle);
      // On this host there is no plan and no PE console (IMAGEPE_SERIALS/SCREENS come from the
      // PE's /init), so after `ready` the agent can only say it has no technician console.
      const r = await run(process.execPath, [file], { cwd: dir, timeoutMs: 30_000, okExitCodes: [1], env: { IMAGEPE_SERIALS: '', IMAGEPE_SCREENS: '' } });
      const events = r.stdout.split('\n').map(parseEventLine);
      const ready = events.find((e) => e?.type === 'ready');
      expect(ready).toBeDefined();
      expect(ready!.type === 'ready' && ready!.node).toBe(process.version);
      expect(events.find((e) => e?.type === 'error')).toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/no console/) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
