import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { buildPe, parseBuildConfig, projectRoot, type BuildResult } from '../builder/index.js';
import { run } from '../core/index.js';
import * as imaging from '../imaging/index.js';
import { startVm, withVm, type Vm } from '../qemu-tests/index.js';
import { partitionNode, qcow2ToRaw, withDiskImage, withPartitionMounted } from '../test-support/disk-image.js';
import { customizeReference, makeReferenceSystem, REFERENCE_LAYOUT, type ReferenceSystem } from '../test-support/reference-system.js';
import { deploy } from './deploy/index.js';
import { QUESTIONS } from './console/index.js';
import { parsePlan } from './plan/index.js';

// The whole workflow with nothing done by hand: a reference machine is installed and
// customized, the PE captures it (generalized) to the share, a second customization is
// appended as index 2, the PE deploys index 2 to two blank machines at once (one from a plan,
// one by a technician answering on the serial console), and both boot as themselves. Then the
// Windows-shaped path: an NTFS image applied behind an msr partition with unattend.xml placed.

const exec = promisify(execFile);
const SHARE_URL = 'smb://10.0.2.4/qemu';
const BOOT_TIMEOUT_MS = 120_000;
const JOB_TIMEOUT_MS = 300_000;
const DISK_SIZE = 2 * 1024 ** 3;
const MAC_A = '52:54:00:00:00:0a';
const MAC_B = '52:54:00:00:00:0b';
const SECRET = 'Tr0ub4dor-and-3';

let work: string;
let share: string;
let reference: ReferenceSystem;
let referenceDisk: string;
const isos: Record<'capture' | 'deploy' | 'console', BuildResult | undefined> = { capture: undefined, deploy: undefined, console: undefined };

/** A PE whose default menu entry runs `mode` with the plan at plan.yaml on the share, or asks a technician. */
async function pe(kind: 'capture' | 'deploy' | 'console'): Promise<BuildResult> {
  const mode = kind === 'console' ? 'deploy' : kind;
  const args = kind === 'console' ? [] : [`imagepe.plan=${SHARE_URL}/${kind}.yaml`];
  isos[kind] ??= await buildPe({
    config: parseBuildConfig({
      kernelArgs: ['quiet', 'loglevel=3', 'panic=10', `imagepe.share=${SHARE_URL}`],
      menu: { timeoutSeconds: 1, default: kind, entries: [{ id: kind, title: `imagepe: ${kind}`, mode, args }] },
    }),
    outputDir: join(projectRoot(), '.cache', `test-output-workflow-${kind}`),
  });
  return isos[kind]!;
}


async function wimInfoJson(wim: string): Promise<{ images: { index: number; name: string; description: string }[] }> {
  const { stdout } = await exec('node', [resolve('dist/cli/main.js'), 'info', wim, '--json']);
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as { images: { index: number; name: string; description: string }[] };
}

/** Boots a deployed disk alone and reads what its init prints. */
async function bootDeployed(name: string, disk: string, uefi: boolean): Promise<{ hostname: string; machineId: string; marker: string; acme: string; added: string[] }> {
  return withVm(`${name} boot`, startVm({ uefi, disks: [{ path: disk }], workDir: join(work, `${name}-boot`), lifetimeMs: BOOT_TIMEOUT_MS + 30_000 }), async (vm) => {
    const line = await vm.waitForLine(/DEPLOYED hostname=\S+ machine-id=\S* marker=\w+/, BOOT_TIMEOUT_MS);
    const custom = await vm.waitForLine(/CUSTOM acme=\S+ added=\S*/, 30_000);
    const m = /DEPLOYED hostname=(\S+) machine-id=(\S*) marker=(\w+)/.exec(line)!;
    const c = /CUSTOM acme=(\S+) added=(\S*)/.exec(custom)!;
    return { hostname: m[1]!, machineId: m[2]!, marker: m[3]!, acme: c[1]!, added: c[2]!.split(',').filter(Boolean) };
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-workflow-e2e-'));
  share = join(work, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  await Promise.all([pe('capture'), pe('deploy'), pe('console')]);

  // 1. The reference machine: installed (by imagepe itself, from a base image) and customized.
  reference = await makeReferenceSystem(join(work, 'base'));
  const baseDir = join(work, 'base-share');
  await mkdir(baseDir);
  await imaging.capture(reference.root, join(baseDir, 'base.wim'), { name: 'base', compression: 'xpress' });
  referenceDisk = join(work, 'reference.raw');
  await writeFile(referenceDisk, '');
  await run('truncate', ['-s', String(DISK_SIZE), referenceDisk], { what: 'making the reference disk', timeoutMs: 10_000 });
  await deploy(
    parsePlan({
      source: { url: `file://${baseDir}`, image: 'base.wim' },
      target: {
        layout: REFERENCE_LAYOUT,
      },
      apply: [{ partition: 'root' }],
      specialize: { hostname: 'reference', machineId: 'keep', removeSshHostKeys: false },
      logs: false,
    }),
    { disk: referenceDisk, yes: true },
  );
  await withPartitionMounted(referenceDisk, 3, (root) => customizeReference(root, 1));
}, 600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the seven-step workflow in QEMU', () => {
  it('captures the reference machine, generalized, to a new WIM on the share from the PE in capture mode', async () => {
    await writeFile(
      join(share, 'capture.yaml'),
      `kind: capture
source: { partition: root }
generalize: true
destination:
  url: ${SHARE_URL}
  file: images/golden.wim
  name: golden-1
  description: reference with acme 1.1
  compression: xpress
  integrity: true
after: poweroff
`,
    );
    const iso = await pe('capture');
    const captured = await withVm('capture 1', startVm({ iso: iso.iso, disks: [{ path: referenceDisk, format: 'raw' }], share, workDir: join(work, 'capture-1'), lifetimeMs: JOB_TIMEOUT_MS + 60_000 }), async (vm) => {
      await vm.waitForEvent('ready', BOOT_TIMEOUT_MS);
      const done = await vm.waitForEvent('captured', JOB_TIMEOUT_MS);
      await vm.waitForExit(60_000);
      process.stdout.write(`capture 1: PE start to captured ${vm.elapsedSeconds().toFixed(1)} s wall (${vm.accel.accel})\n`);
      const steps = vm.events.filter((e) => e.type === 'step' && e.status !== 'started').map((e) => (e.type === 'step' ? `${e.step}:${e.status}` : ''));
      expect(steps).toEqual(['plan:done', 'disk:done', 'source:done', 'share:done', 'generalize:done', 'capture:done', 'verify:done']);
      return done;
    });
    expect(captured).toMatchObject({ type: 'captured', index: 1, name: 'golden-1' });
    const info = await wimInfoJson(join(share, 'images/golden.wim'));
    expect(info.images.map((i) => [i.index, i.name, i.description])).toEqual([[1, 'golden-1', 'reference with acme 1.1']]);
    // Only the finished file: no temporary name left behind.
    expect((await readdir(join(share, 'images'))).filter((f) => f !== 'logs')).toEqual(['golden.wim']);
    // Generalized: the reference's machine-id is gone from the image and from the reference itself.
    const etc = (await imaging.dir(join(share, 'images/golden.wim'), 1, { path: '/etc' })) as string[];
    expect(etc).toContain('/etc/custom.d/round-1');
    expect(etc.some((p) => p.startsWith('/etc/ssh/ssh_host_'))).toBe(false);
    await withPartitionMounted(referenceDisk, 3, async (root) => expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe(''), { readOnly: true });
  }, JOB_TIMEOUT_MS + 2 * BOOT_TIMEOUT_MS);

  it('appends a second capture, after another customization, as index 2', async () => {
    await withPartitionMounted(referenceDisk, 3, (root) => customizeReference(root, 2));
    await writeFile(
      join(share, 'capture.yaml'),
      `kind: capture
destination: { url: ${SHARE_URL}, file: images/golden.wim, name: golden-2, description: reference with acme 1.2, append: true }
after: poweroff
`,
    );
    const iso = await pe('capture');
    const captured = await withVm('capture 2', startVm({ iso: iso.iso, disks: [{ path: referenceDisk, format: 'raw' }], share, workDir: join(work, 'capture-2'), lifetimeMs: JOB_TIMEOUT_MS + 60_000 }), async (vm) => {
      const done = await vm.waitForEvent('captured', JOB_TIMEOUT_MS);
      await vm.waitForExit(60_000);
      return done;
    });
    expect(captured).toMatchObject({ index: 2, name: 'golden-2' });
    const info = await wimInfoJson(join(share, 'images/golden.wim'));
    expect(info.images.map((i) => i.name)).toEqual(['golden-1', 'golden-2']);
  }, JOB_TIMEOUT_MS + 2 * BOOT_TIMEOUT_MS);

  it('deploys index 2 to two blank machines at once, one from a plan and one by a technician on the serial console; both boot as themselves', async () => {
    // The plan's share credentials are a secret: QEMU's Samba maps an unknown user to guest, so
    // the mount works, and the password must show up nowhere the agent writes.
    await writeFile(
      join(share, 'deploy.yaml'),
      `source:
  url: ${SHARE_URL}
  image: images/golden.wim
  index: golden-2
  credentials: { username: imagepe-tech, password: "${SECRET}" }
target:
  disk: { pick: smallest, minSize: 1GiB }
  layout: from-image
specialize: { hostname: "node-{mac}" }
bootloader: { type: grub, firmware: both }
after: poweroff
`,
    );
    const diskA = join(work, 'a.qcow2');
    const diskB = join(work, 'b.qcow2');
    const [a, b] = await Promise.all([
      withVm('deploy A (plan)', startVm({ iso: (await pe('deploy')).iso, uefi: true, mac: MAC_A, disks: [{ path: diskA, size: DISK_SIZE }], share, workDir: join(work, 'deploy-a'), lifetimeMs: JOB_TIMEOUT_MS + 60_000 }), async (vm) => {
        const done = await vm.waitForEvent('deployed', JOB_TIMEOUT_MS);
        await vm.waitForExit(60_000);
        process.stdout.write(`deploy A: PE start to deployed ${vm.elapsedSeconds().toFixed(1)} s wall\n`);
        return { done, serial: await readFile(vm.logPath, 'utf8') };
      }),
      withVm('deploy B (technician)', startVm({ iso: (await pe('console')).iso, uefi: false, mac: MAC_B, disks: [{ path: diskB, size: DISK_SIZE }], share, workDir: join(work, 'deploy-b'), lifetimeMs: JOB_TIMEOUT_MS + 120_000 }), async (vm) => {
        const seen = await technicianDeploys(vm, { image: 'golden-2', hostname: 'tech-b' });
        process.stdout.write(`deploy B: PE start to powered off ${vm.elapsedSeconds().toFixed(1)} s wall\n`);
        return { seen, transcript: seen.transcript, serial: await readFile(vm.logPath, 'utf8') };
      }),
    ]);
    expect(a.done).toMatchObject({ type: 'deployed', hostname: 'node-52540000000a' });
    expect(b.transcript).toMatch(/DEPLOYED/);
    expectTechnicianSaw(b.seen, b.serial);
    const logs = await readdir(join(share, 'images/logs'));
    for (const text of [a.serial, b.serial, ...(await Promise.all(logs.map((f) => readFile(join(share, 'images/logs', f), 'utf8'))))]) expect(text).not.toContain(SECRET);

    const [bootA, bootB] = await Promise.all([bootDeployed('A', diskA, true), bootDeployed('B', diskB, false)]);
    expect(bootA.hostname).toBe('node-52540000000a');
    expect(bootB.hostname).toBe('tech-b');
    for (const boot of [bootA, bootB]) {
      expect(boot.marker).toBe('yes');
      expect(boot.machineId).toMatch(/^[0-9a-f]{32}$/);
      expect(boot.machineId).not.toBe(reference.machineId);
      // Index 2 carries both rounds of customization and the updated tool.
      expect(boot.acme).toBe('acme-1.2');
      expect(boot.added).toEqual(['round-1', 'round-2']);
    }
    expect(bootA.machineId).not.toBe(bootB.machineId);
  }, 2 * JOB_TIMEOUT_MS + 2 * BOOT_TIMEOUT_MS);

  it('applies an image captured from an NTFS volume behind an msr partition and places unattend.xml for Windows setup', async () => {
    const volume = join(work, 'windows-volume.img');
    await makeWindowsLikeVolume(volume);
    await imaging.capture(volume, join(share, 'images/windows.wim'), { name: 'Windows (test volume)', compression: 'xpress' });
    const unattend = '<?xml version="1.0" encoding="utf-8"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend"><settings pass="specialize"><component name="Microsoft-Windows-Shell-Setup"><ComputerName>WIN-E2E</ComputerName></component></settings></unattend>\n';
    await writeFile(
      join(share, 'deploy.yaml'),
      `source: { url: ${SHARE_URL}, image: images/windows.wim, index: 1 }
target:
  disk: { pick: smallest, minSize: 1GiB }
  layout:
    table: gpt
    partitions:
      - { name: ESP, size: 100MiB, type: esp, format: vfat, label: SYSTEM }
      - { name: MSR, size: 16MiB, type: msr }
      - { name: Windows, size: rest, type: windows-basic, format: ntfs, label: Windows }
apply: [{ partition: Windows }]
specialize: { unattend: { xml: ${JSON.stringify(unattend)} } }
bootloader: { type: none }
after: poweroff
`,
    );
    const disk = join(work, 'windows.qcow2');
    await withVm('deploy Windows', startVm({ iso: (await pe('deploy')).iso, uefi: true, disks: [{ path: disk, size: DISK_SIZE }], share, workDir: join(work, 'deploy-windows'), lifetimeMs: JOB_TIMEOUT_MS + 60_000 }), async (vm) => {
      await vm.waitForEvent('deployed', JOB_TIMEOUT_MS);
      await vm.waitForExit(60_000);
    });
    // No Windows boots here: the disk is read offline, as Windows setup would find it.
    const raw = join(work, 'windows.raw');
    await qcow2ToRaw(disk, raw);
    await withDiskImage(
      raw,
      async (loop) => {
        const table = JSON.parse((await run('sfdisk', ['--json', loop], { what: 'reading the table', timeoutMs: 30_000 })).stdout) as { partitiontable: { partitions: { type: string; name?: string }[] } };
        expect(table.partitiontable.partitions.map((p) => [p.name, p.type.toUpperCase()])).toEqual([
          ['ESP', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'],
          ['MSR', 'E3C9E316-0B5C-4DB8-817D-F92DF00215AE'],
          ['Windows', 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7'],
        ]);
        const node = await partitionNode(loop, 3);
        expect((await run('ntfscat', [node, 'Windows/Panther/unattend.xml'], { what: 'reading unattend.xml', timeoutMs: 30_000 })).stdout.trimEnd()).toBe(unattend.trimEnd());
        expect((await run('ntfscat', [node, 'Windows/System32/drivers/etc/hosts'], { what: 'reading a file of the image', timeoutMs: 30_000 })).stdout).toContain('127.0.0.1 localhost');
        expect((await run('ntfsinfo', ['--force', '--mft', node], { what: 'reading the volume label', timeoutMs: 30_000 })).stdout).toMatch(/Volume Name:\s+Windows/);
      },
      { readOnly: true },
    );
  }, JOB_TIMEOUT_MS + 120_000);

  it('appends a third capture as index 3 by a technician answering on the serial console', async () => {
    await withPartitionMounted(referenceDisk, 3, (root) => customizeReference(root, 3));
    const transcript = await withVm('capture 3 (technician)', startVm({ iso: (await pe('console')).iso, disks: [{ path: referenceDisk, format: 'raw' }], share, workDir: join(work, 'capture-3'), lifetimeMs: JOB_TIMEOUT_MS + 120_000 }), async (vm) => {
      const t = await technicianCaptures(vm, { wim: 'images/golden.wim', name: 'golden-3', description: 'captured at the console' });
      process.stdout.write(`capture 3 (technician): PE start to powered off ${vm.elapsedSeconds().toFixed(1)} s wall\n`);
      return t;
    });
    expect(transcript).toMatch(/CAPTURED/);
    const info = await wimInfoJson(join(share, 'images/golden.wim'));
    expect(info.images.map((i) => [i.name, i.description])).toEqual([
      ['golden-1', 'reference with acme 1.1'],
      ['golden-2', 'reference with acme 1.2'],
      ['golden-3', 'captured at the console'],
    ]);
    const etc = (await imaging.dir(join(share, 'images/golden.wim'), 3, { path: '/etc/custom.d' })) as string[];
    expect(etc).toContain('/etc/custom.d/round-3');
  }, JOB_TIMEOUT_MS + 2 * BOOT_TIMEOUT_MS);
});

/** What the technician on B must have seen, point by point, on an 80-column plain ASCII console. */
function expectTechnicianSaw(seen: TechnicianDeploy, serial: string): void {
  // The first screen: the machine in words above "Press Enter", the JSON ready line still there.
  const banner = seen.banner.slice(seen.banner.lastIndexOf('This machine:'));
  expect(banner).toMatch(/Model {5}QEMU/);
  // DHCP runs beside the agent's start: the address, or that there is none yet.
  expect(banner).toMatch(new RegExp(`Network   ${MAC_B}  (10\\.0\\.2\\.15/24|no address)`));
  expect(banner).toMatch(/Disks {5}\/dev\/vda  2\.00 GiB/);
  expect(seen.banner).toMatch(/^\{"imagepe":1,"type":"ready"/m);
  // The share as \\\\server\\share, said back as smb://; a wrong server says it tries, and how long.
  expect(seen.wrongServer).toContain('That is smb://10.0.2.9/qemu.');
  expect(seen.wrongServer).toContain('Mapping smb://10.0.2.9/qemu (at most 45 s) ...');
  expect(seen.wrongServer).toContain('still trying: ');
  expect(seen.wrongServer).toContain('Check the server name or address');
  // q at the disk went back to the image only, and Enter took the image chosen before.
  expect(seen.tokens).toContain(`{mac}     52540000000b (the first network card's MAC, ${MAC_B})`);
  expect(seen.tokens).toContain('{serial}  none');
  expect(seen.tokens).toContain('The default is pe-{mac}, here pe-52540000000b.');
  expect(seen.nearMiss).toContain('typed out in lower case');
  expect(seen.refused).toContain('Not confirmed (only "yes" goes on): nothing was done.');
  expect(seen.refused).toContain('Your answers are kept');
  expect(seen.confirmed).toMatch(/^ \[tech-b\]: \s*\n/);
  expect(seen.confirmed).toContain('This ERASES /dev/vda');
  expect(seen.confirmed).toContain('as tech-b.');
  // One thing said at the end, and the log where the share shows it.
  expect(seen.summary).toMatch(/DEPLOYED \/dev\/vda as tech-b in \S+\r*\n/);
  expect(seen.summary).not.toContain('next: shell');
  expect(seen.summary).toMatch(/Log on the share:\r*\n {4}smb:\/\/10\.0\.2\.4\/qemu\/logs\/tech-b-\S+\.log\r*\n {4}\\\\10\.0\.2\.4\\qemu\\logs\\tech-b-\S+\.log/);
  expect(seen.summary).not.toContain('/tmp/imagepe-');
  // The conversation's text stays within 80 columns, plain ASCII; the JSON event lines are for machines.
  const human = serial.split(/\r*\n/).filter((l) => !l.startsWith('{"imagepe"'));
  const start = human.findIndex((l) => l.includes('This machine:'));
  expect(human.slice(start).filter((l) => l.length > 80 || /[^\x20-\x7e\t\x08]/.test(l))).toEqual([]);
}

/** An NTFS volume laid out like a Windows installation, made with ntfs-3g. */
async function makeWindowsLikeVolume(path: string): Promise<void> {
  await writeFile(path, '');
  await run('truncate', ['-s', '64M', path], { what: 'making the volume', timeoutMs: 10_000 });
  await run('mkntfs', ['--fast', '--force', '--label', 'OSDisk', path], { what: 'formatting the volume', timeoutMs: 60_000 });
  const dir = await mkdtemp(join(tmpdir(), 'imagepe-ntfs-'));
  await run('ntfs-3g', [path, dir], { what: 'mounting the volume', timeoutMs: 30_000 });
  try {
    await mkdir(join(dir, 'Windows/System32/drivers/etc'), { recursive: true });
    await mkdir(join(dir, 'Windows/System32/config'), { recursive: true });
    await mkdir(join(dir, 'Users/Default'), { recursive: true });
    await writeFile(join(dir, 'Windows/System32/drivers/etc/hosts'), '127.0.0.1 localhost\r\n');
    await writeFile(join(dir, 'Windows/System32/config/SOFTWARE'), Buffer.alloc(256 * 1024, 7));
    await writeFile(join(dir, 'Windows/explorer.exe'), Buffer.from('MZ test binary'));
  } finally {
    await run('umount', [dir], { what: 'unmounting the volume', timeoutMs: 30_000 });
    await rm(dir, { recursive: true, force: true });
  }
}

const literally = (text: string) => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

/** Answers questions on the serial port: waits for the question, types the reply and Enter. */
function conversation(vm: Vm) {
  const answer = async (question: string, reply: (before: string) => string, timeoutMs = 120_000) => {
    const { before } = await vm.expect(literally(question), timeoutMs);
    vm.sendSerial(`${reply(before)}\r`);
    return before;
  };
  /** The number of the table row that names `text`. */
  const pickRow = (text: string) => (table: string) => {
    const row = new RegExp(`^\\s*(\\d+)\\D.*\\s${literally(text).source}\\s`, 'm').exec(table);
    if (!row) throw new Error(`no row for ${text} in:\n${table}`);
    return row[1]!;
  };
  return { answer, pickRow };
}

/** What the technician deploying B saw, piece by piece: each is the serial output before a question. */
interface TechnicianDeploy {
  /** Above "Press Enter": what the machine is. */
  banner: string;
  /** After the share typed as \\\\10.0.2.9\\qemu, a server that is not there. */
  wrongServer: string;
  /** Before the host name question: the tokens in words. */
  tokens: string;
  /** After "YES" at the confirmation. */
  nearMiss: string;
  /** After "no": back at the first question. */
  refused: string;
  /** After the host name question, Enter taking the name typed before: the confirmation. */
  confirmed: string;
  /** The run and its summary. */
  summary: string;
  transcript: string;
}

/**
 * A technician at the serial console, tired: reads what the machine is and presses Enter,
 * chooses deploy, types the share the Windows way with a wrong server address, then the right
 * one, picks the image by name from the table, goes back from the disk question with q (Enter
 * takes the image again), the only disk, names the machine, types YES (asked once more) and
 * then no: nothing may happen. Back at the first question every answer is the default, so
 * Enter goes through to the confirmation, where yes deploys; then power off.
 */
async function technicianDeploys(vm: Vm, o: { image: string; hostname: string }): Promise<TechnicianDeploy> {
  const { answer, pickRow } = conversation(vm);
  const banner = await answer(QUESTIONS.claim, () => '', BOOT_TIMEOUT_MS);
  await answer(QUESTIONS.mode, () => 'd');
  await answer(QUESTIONS.share, () => '\\\\10.0.2.9\\qemu');
  const wrongServer = await answer(QUESTIONS.share, () => '\\\\10.0.2.4\\qemu');
  await answer(QUESTIONS.image, pickRow(o.image));
  await answer(QUESTIONS.disk, () => 'q');
  await answer(QUESTIONS.image, () => '');
  await answer(QUESTIONS.disk, () => '1');
  const tokens = await answer(QUESTIONS.hostname, () => o.hostname);
  await answer(QUESTIONS.confirm, () => 'YES');
  const nearMiss = await answer(QUESTIONS.confirm, () => 'no');
  const refused = await answer(QUESTIONS.mode, () => '');
  await answer(QUESTIONS.share, () => '');
  await answer(QUESTIONS.image, () => '');
  await answer(QUESTIONS.disk, () => '');
  await answer(QUESTIONS.hostname, () => '');
  const confirmed = await answer(QUESTIONS.confirm, () => 'yes');
  const summary = await answer(QUESTIONS.next, () => 'p', JOB_TIMEOUT_MS);
  await vm.waitForExit(60_000);
  return { banner, wrongServer, tokens, nearMiss, refused, confirmed, summary, transcript: [wrongServer, tokens, nearMiss, refused, confirmed, summary].join('') };
}

/**
 * A technician captures the reference from the serial console: capture, the default share, the
 * only disk, the root filesystem found, generalize, append to the WIM picked from the table by
 * its file name, the image's name and description, yes, and power off.
 */
async function technicianCaptures(vm: Vm, o: { wim: string; name: string; description: string }): Promise<string> {
  const { answer, pickRow } = conversation(vm);
  await answer(QUESTIONS.claim, () => '', BOOT_TIMEOUT_MS);
  await answer(QUESTIONS.mode, () => 'c');
  await answer(QUESTIONS.share, () => '');
  await answer(QUESTIONS.referenceDisk, () => '1');
  await answer(QUESTIONS.partition, () => 'r');
  await answer(QUESTIONS.generalize, () => 'y');
  await answer(QUESTIONS.destination, pickRow(o.wim));
  await answer(QUESTIONS.imageName, () => o.name);
  await answer(QUESTIONS.description, () => o.description);
  let transcript = await answer(QUESTIONS.confirm, () => 'yes');
  transcript += await answer(QUESTIONS.next, () => 'p', JOB_TIMEOUT_MS);
  await vm.waitForExit(60_000);
  return transcript;
}
