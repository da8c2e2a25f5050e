import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildResult } from '../builder/index.js';
import { planTestBuild } from '../qemu-tests/shared-build.js';
import { pathKind, run } from '../core/index.js';
import * as imaging from '../imaging/index.js';
import { startVm, withVm, type Vm } from '../qemu-tests/index.js';
import { withPartitionMounted } from '../test-support/disk-image.js';
import { makeReferenceSystem, type ReferenceSystem } from '../test-support/reference-system.js';
import type { AgentEvent } from './events/index.js';

// Faults in the middle of a deploy, in QEMU: the network to the share goes away during apply,
// and the power is cut during apply. The agent must never report a half-written disk as
// deployed, a rerun must see what was left, and running the plan again must finish the job.

const BOOT_TIMEOUT_MS = 120_000;
const JOB_TIMEOUT_MS = 240_000;
// How long the agent may take to notice the share is gone and say so.
const FAILURE_BOUND_MS = 90_000;
const DISK_SIZE = 2 * 1024 ** 3;

let build: BuildResult;
let work: string;
let share: string;
let reference: ReferenceSystem;
let disk: string;

function plan(o: { wipe: boolean }): string {
  // No sha256 and no integrity table: the check step reads only the WIM's header and metadata,
  // so the file data is still on the share when apply starts.
  return `source: { url: smb://10.0.2.4/qemu/images, image: big.wim, index: 1 }
target:
  disk: { pick: smallest, minSize: 1GiB }
  wipe: ${o.wipe}
  layout:
    table: gpt
    partitions:
      - { name: ESP, size: 64MiB, type: esp, format: vfat, mount: /boot/efi }
      - { name: bios-boot, size: 1MiB, type: bios-boot }
      - { name: root, size: rest, type: linux, format: ext4, label: root, mount: / }
apply: [{ partition: root }]
specialize: { hostname: faulty }
bootloader: { type: grub, firmware: both }
after: poweroff
`;
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function pe(name: string, onEvent?: (e: AgentEvent, vm: () => Vm | undefined) => void): Promise<Vm> {
  let vm: Vm | undefined;
  const started = startVm({
    iso: build.iso,
    disks: [{ path: disk, format: 'raw' }],
    share,
    workDir: join(work, name),
    lifetimeMs: JOB_TIMEOUT_MS + 2 * BOOT_TIMEOUT_MS,
    ...(onEvent ? { onEvent: (e: AgentEvent) => onEvent(e, () => vm) } : {}),
  });
  return started.then((v) => (vm = v));
}


beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-faults-e2e-'));
  share = join(work, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  build = await planTestBuild();
  reference = await makeReferenceSystem(join(work, 'reference'));
  // Incompressible data, so apply streams from the share for several seconds under emulation.
  await mkdir(join(reference.root, 'usr/share/big'), { recursive: true });
  for (let i = 0; i < 6; i++) await writeFile(join(reference.root, `usr/share/big/blob-${i}.bin`), randomBytes(16 * 1024 ** 2));
  await imaging.capture(reference.root, join(share, 'images/big.wim'), { name: 'big', compression: 'xpress' });
  disk = join(work, 'disk.raw');
  await writeFile(disk, '');
  await run('truncate', ['-s', String(DISK_SIZE), disk], { what: 'making the disk', timeoutMs: 10_000 });
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('faults during a deploy', () => {
  it('reports failed at apply within a bounded time when the share goes away, and leaves the disk unbootable and marked unfinished', async () => {
    await writeFile(join(share, 'plan.yaml'), plan({ wipe: false }));
    let cutAt = 0;
    const failed = await withVm(
      'share cut',
      pe('share-cut', (e, vm) => {
        if (!cutAt && e.type === 'progress' && e.step === 'apply') {
          cutAt = Date.now();
          void vm()?.setLink(false);
        }
      }),
      async (vm) => {
        const f = await vm.waitForEvent('failed', JOB_TIMEOUT_MS + FAILURE_BOUND_MS);
        expect(vm.events.some((e) => e.type === 'deployed')).toBe(false);
        return f;
      },
    );
    expect(cutAt).toBeGreaterThan(0);
    const seconds = (Date.now() - cutAt) / 1000;
    process.stdout.write(`share cut: failed ${seconds.toFixed(1)} s after the link went down\n`);
    expect(seconds * 1000).toBeLessThan(FAILURE_BOUND_MS);
    expect(failed).toMatchObject({ type: 'failed', step: 'apply', diskTouched: true });
    // Nothing points at the half-written system: no boot code, no deployed marker, but the
    // unfinished marker a rerun looks for.
    const mbr = Buffer.alloc(440);
    const fh = await open(disk, 'r');
    await fh.read(mbr, 0, 440, 0);
    await fh.close();
    expect(mbr.every((b) => b === 0)).toBe(true);
    await withPartitionMounted(
      disk,
      3,
      async (root) => {
        expect(await pathKind(join(root, 'var/lib/imagepe/deployed.json'))).toBe('missing');
        expect(JSON.parse(await readFile(join(root, 'var/lib/imagepe/deploying.json'), 'utf8'))).toMatchObject({ image: 'big.wim' });
      },
      { readOnly: true, type: 'ext4' },
    );
  }, JOB_TIMEOUT_MS + FAILURE_BOUND_MS + 60_000);

  it('refuses to rerun over the unfinished deploy without wipe, naming it, and writes nothing', async () => {
    const before = await sha256(disk);
    const failed = await withVm('rerun without wipe', pe('rerun-no-wipe'), (vm) => vm.waitForEvent('failed', JOB_TIMEOUT_MS));
    expect(failed).toMatchObject({ step: 'disk', code: 'REFUSED', diskTouched: false });
    expect(failed.type === 'failed' && failed.message).toMatch(/unfinished imagepe deploy of big\.wim/);
    expect(await sha256(disk)).toBe(before);
  }, JOB_TIMEOUT_MS + 60_000);

  it('survives a power cut during apply: the same plan run again finishes and the disk boots', async () => {
    await writeFile(join(share, 'plan.yaml'), plan({ wipe: true }));
    let cut = false;
    await withVm(
      'power cut',
      pe('power-cut', (e, vm) => {
        if (!cut && e.type === 'progress' && e.step === 'apply') {
          cut = true;
          // QMP quit: the machine is gone at once, as with the plug pulled.
          void vm()?.stop();
        }
      }),
      (vm) => vm.waitForExit(JOB_TIMEOUT_MS),
    );
    expect(cut).toBe(true);
    const done = await withVm('rerun after the power cut', pe('rerun'), async (vm) => {
      const d = await vm.waitForEvent('deployed', JOB_TIMEOUT_MS);
      await vm.waitForExit(60_000);
      const disk = vm.events.find((e) => e.type === 'step' && e.step === 'disk' && e.status === 'done');
      // It saw what the cut left and wiped it, as the plan allows.
      expect(disk?.type === 'step' && disk.detail).toMatch(/wiping: .*unfinished imagepe deploy of big\.wim/);
      return d;
    });
    expect(done).toMatchObject({ type: 'deployed', hostname: 'faulty' });
    const line = await withVm('boot after rerun', startVm({ disks: [{ path: disk, format: 'raw' }], workDir: join(work, 'boot'), lifetimeMs: BOOT_TIMEOUT_MS + 30_000 }), (vm) =>
      vm.waitForLine(/DEPLOYED hostname=\S+ machine-id=\S* marker=\w+/, BOOT_TIMEOUT_MS),
    );
    expect(line).toMatch(/DEPLOYED hostname=faulty machine-id=[0-9a-f]{32} marker=yes/);
  }, 3 * JOB_TIMEOUT_MS);
});
