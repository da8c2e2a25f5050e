import { link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as imaging from '../imaging/index.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { DEBIAN_SEPARATE_LAYOUT, makeDebianReferenceDisk, type DebianReference } from '../test-support/debian-reference.js';
import { bootReport, planPe, runAgent, settled, SHARE_URL } from '../test-support/pe-flow.js';

// A real Debian 12, installed as its installer leaves one with separate /boot and /home and swap
// after root on a 6 GiB disk, through the whole product in QEMU: the reference machine boots; the
// PE captures the whole system (generalized) to the SMB share as one tree; the PE deploys it to
// two blank 3 GiB machines, one by UEFI with the layout recorded in the image re-planned for the
// smaller disk (new filesystem UUIDs: references remapped, the initramfs rebuilt by the image's
// update-initramfs) and one by BIOS with a plan layout of other sizes that keeps the reference's
// filesystem UUIDs (nothing to remap or rebuild); each deployed disk then boots to
// multi-user.target with systemd reporting "running", ssh.service active, /boot holding the
// kernel, /home's files, its plan hostname, and a machine-id and SSH host key of its own. The
// systems' own report unit prints the result on the serial port.
//
// Under software emulation the image's update-initramfs takes about ten minutes (it runs some
// 13,000 programs, each costing tens of milliseconds without KVM; natively about ten seconds),
// which is why only one of the two deploys rebuilds it; the host integration test rebuilds it for
// every kind of deploy.

const BOOT_TIMEOUT_MS = 300_000;
const JOB_TIMEOUT_MS = 1_500_000;
const DISK_SIZE = 3 * 1024 ** 3;
const MAC_A = '52:54:00:00:0d:0a';
const MAC_B = '52:54:00:00:0d:0b';

let work: string;
let share: string;
let ref: DebianReference;

const boot = async (name: string, disk: string, format: 'raw' | 'qcow2', uefi: boolean) => {
  const r = await bootReport(name, disk, { format, uefi, workDir: join(work, `${name}-boot`), timeoutMs: BOOT_TIMEOUT_MS });
  process.stdout.write(`debian ${name}: QEMU start to the system's report ${r.seconds} s wall\n`);
  return r;
};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-debian-e2e-'));
  share = join(work, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  await Promise.all([planPe('capture', 'debian'), planPe('deploy', 'debian')]);
  ref = await makeDebianReferenceDisk(join(work, 'reference.raw'), { layout: DEBIAN_SEPARATE_LAYOUT, sizeBytes: 6 * 1024 ** 3 });
}, 900_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a real Debian 12 through the PE', () => {
  it('boots as installed: multi-user.target reached, systemd running, ssh active', async () => {
    const r = await boot('reference', ref.image, 'raw', false);
    expect(r).toMatchObject({ state: 'running', target: 'active', ssh: 'active', hostname: 'reference', 'machine-id': ref.machineId, hostkey: ref.hostKey, root: ref.uuids.root, efi: ref.uuids.esp, boot: ref.uuids.boot, home: ref.uuids.home, homefile: 'imagedfromreference', failed: '' });
    expect(r.swap).toContain(ref.uuids.swap);
  }, BOOT_TIMEOUT_MS + 120_000);

  it('is captured by the PE, generalized, to the share', async () => {
    await writeFile(join(share, 'capture.yaml'), `kind: capture\nsource: { partition: root }\ndestination: { url: ${SHARE_URL}, file: images/debian.wim, name: debian-12, compression: xpress, integrity: true }\nafter: poweroff\n`);
    const { end: captured, seconds } = await withVm('capture', startVm({ iso: (await planPe('capture', 'debian')).iso, disks: [{ path: ref.image, format: 'raw' }], share, workDir: join(work, 'capture'), lifetimeMs: JOB_TIMEOUT_MS + 180_000 }), (vm) => runAgent(vm, 'captured', JOB_TIMEOUT_MS));
    process.stdout.write(`debian capture: PE start to captured ${seconds.toFixed(1)} s wall\n`);
    expect(captured).toMatchObject({ type: 'captured', index: 1, name: 'debian-12' });
    const info = await imaging.info(join(share, 'images/debian.wim'));
    process.stdout.write(`debian capture: WIM ${(info.images[0]!.totalBytes / 1024 ** 2).toFixed(0)} MiB of files in ${((captured.type === 'captured' ? captured.sizeBytes : 0) / 1024 ** 2).toFixed(0)} MiB\n`);
    const recorded = JSON.parse((await imaging.imageProperty(join(share, 'images/debian.wim'), 1, 'IMAGEPE/LAYOUT'))!) as { layout: { partitions: { name: string; mount?: string }[] }; volumes: { partition: string; uuid?: string }[] };
    expect(recorded.volumes.map((v) => [v.partition, v.uuid])).toEqual(expect.arrayContaining([['root', ref.uuids.root], ['swap', ref.uuids.swap], ['ESP', ref.uuids.esp], ['boot', ref.uuids.boot], ['home', ref.uuids.home]]));
    // The whole system in one tree, with the mount points of its filesystems recorded.
    expect(recorded.layout.partitions.map((p) => [p.name, p.mount])).toEqual(expect.arrayContaining([['boot', '/boot'], ['root', '/'], ['home', '/home']]));
  }, JOB_TIMEOUT_MS + 240_000);

  it('is deployed by the PE to two blank machines (UEFI from the image, BIOS with a plan layout), and each boots to a running system of its own', async () => {
    // Each machine reads deploy.yaml from its own share; the WIM is the same file in both.
    const shareA = join(work, 'share-a');
    const shareB = join(work, 'share-b');
    for (const s of [shareA, shareB]) {
      await mkdir(join(s, 'images'), { recursive: true });
      await link(join(share, 'images/debian.wim'), join(s, 'images/debian.wim'));
    }
    await writeFile(join(shareA, 'deploy.yaml'), `source: { url: ${SHARE_URL}, image: images/debian.wim }\ntarget: { disk: { pick: smallest, minSize: 2GiB }, layout: from-image }\nspecialize: { hostname: "deb-a-{mac}" }\nbootloader: { firmware: both }\nafter: poweroff\n`);
    await writeFile(
      join(shareB, 'deploy.yaml'),
      `source: { url: ${SHARE_URL}, image: images/debian.wim }
target:
  disk: { pick: smallest, minSize: 2GiB }
  identities: keep
  layout:
    table: gpt
    partitions:
      - { name: efi, size: 100MiB, type: esp, format: vfat, mount: /boot/efi }
      - { name: bios, size: 1MiB, type: bios-boot }
      - { name: boot, size: 300MiB, type: linux, format: ext4, mount: /boot }
      - { name: system, size: 2000MiB, type: linux, format: ext4, label: system, mount: / }
      - { name: home, size: 100MiB, type: linux-home, format: ext4, mount: /home }
      - { name: swap, size: rest, type: linux-swap, format: swap, mount: swap }
apply: [{ partition: system }]
specialize: { hostname: "deb-b-{mac}" }
bootloader: { firmware: bios, initramfs: keep }
after: poweroff
`,
    );
    const diskA = join(work, 'a.qcow2');
    const diskB = join(work, 'b.qcow2');
    const iso = (await planPe('deploy', 'debian')).iso;
    const deployOn = async (name: string, s: string, disk: string, mac: string, uefi: boolean) => {
      const run = await withVm(`deploy ${name}`, startVm({ iso, uefi, mac, disks: [{ path: disk, size: DISK_SIZE }], share: s, workDir: join(work, `deploy-${name}`), lifetimeMs: JOB_TIMEOUT_MS + 180_000 }), (vm) => runAgent(vm, 'deployed', JOB_TIMEOUT_MS));
      process.stdout.write(`debian deploy ${name}: PE start to deployed ${run.seconds.toFixed(1)} s wall; initramfs ${run.stepSeconds.initramfs?.toFixed(1) ?? 'skipped'}\n`);
      return run;
    };
    // allSettled: a failure of one must not leave the other VM running past the test.
    const [a, b] = settled(await Promise.allSettled([deployOn('A', shareA, diskA, MAC_A, true), deployOn('B', shareB, diskB, MAC_B, false)]));
    expect(a.end).toMatchObject({ type: 'deployed', hostname: 'deb-a-525400000d0a' });
    expect(b.end).toMatchObject({ type: 'deployed', hostname: 'deb-b-525400000d0b' });
    expect(a.steps).toEqual(expect.arrayContaining([expect.stringMatching(/^check: .*layout re-planned: root shrunk from 5\.\d+ GiB on the reference to 2\.\d+ GiB/), expect.stringMatching(/^remap: 6 references in \/etc\/fstab, \/etc\/initramfs-tools\/conf\.d\/resume$/), expect.stringMatching(/^initramfs: update-initramfs for /), expect.stringMatching(/^bootloader: the image's grub-install, BIOS, UEFI \/EFI\/BOOT\/BOOTX64\.EFI/)]));
    expect(b.steps).toEqual(expect.arrayContaining(["remap: nothing to rewrite: the filesystems keep the reference's identities", "initramfs: the plan keeps the image's initramfs", expect.stringMatching(/^bootloader: the image's grub-install, BIOS, grub\.cfg/)]));
    for (const { steps } of [a, b]) expect(steps).toEqual(expect.arrayContaining([expect.stringMatching(/^verify: .*boot readiness/)]));
    // The ESP was mounted in the PE and the image's own grub-install wrote it: no fallback warning.
    expect(a.warnings.filter((w) => w.includes('ESP cannot be mounted'))).toEqual([]);

    const [bootA, bootB] = settled(await Promise.allSettled([boot('A', diskA, 'qcow2', true), boot('B', diskB, 'qcow2', false)]));
    for (const [r, hostname] of [
      [bootA, 'deb-a-525400000d0a'],
      [bootB, 'deb-b-525400000d0b'],
    ] as const) {
      expect(r).toMatchObject({ state: 'running', target: 'active', ssh: 'active', hostname, homefile: 'imagedfromreference', failed: '' });
      expect(Number(r.kernels)).toBeGreaterThan(0);
      expect(r['machine-id']).toMatch(/^[0-9a-f]{32}$/);
      expect(r.hostkey).toMatch(/^SHA256:/);
    }
    // A's filesystems are new; B's carry the reference's UUIDs, as its plan asked.
    expect(bootA.root).not.toBe(ref.uuids.root);
    expect(bootA.swap).not.toContain(ref.uuids.swap);
    expect(bootA.boot).not.toBe(ref.uuids.boot);
    expect(bootA.boot).toMatch(/^[0-9a-f-]{36}$/);
    expect(bootB.root).toBe(ref.uuids.root);
    expect(bootB.boot).toBe(ref.uuids.boot);
    expect(bootB.swap).toContain(ref.uuids.swap);
    expect(new Set([bootA['machine-id'], bootB['machine-id'], ref.machineId]).size).toBe(3);
    expect(new Set([bootA.hostkey, bootB.hostkey, ref.hostKey]).size).toBe(3);
  }, 2 * JOB_TIMEOUT_MS + 2 * BOOT_TIMEOUT_MS);
});
