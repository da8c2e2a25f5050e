import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as imaging from '../imaging/index.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { sha256File } from './deploy/index.js';
import { makeReferenceSystem, type ReferenceSystem } from '../test-support/reference-system.js';
import { planPe, runAgent, SHARE_URL } from '../test-support/pe-flow.js';

// LVM through the PE, quickly (this host's kernel has no device-mapper, so only a guest running
// the PE's kernel can make or read a volume group): the PE deploys a small fixture image onto a
// layout with a volume group (root and /srv as logical volumes, a logical volume left empty),
// then captures that disk back without generalizing, which activates the group read-only: the
// disk's bytes are the same before and after, and the captured tree holds what was deployed,
// with the group and its volumes recorded. The real-Debian e2e boots a system whose root is on
// LVM; this one keeps the mechanics fast to run.

const exec = promisify(execFile);
const JOB_TIMEOUT_MS = 600_000;
const DISK_SIZE = 2 * 1024 ** 3;

let work: string;
let share: string;
let reference: ReferenceSystem;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-lvm-e2e-'));
  share = join(work, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  await Promise.all([planPe('capture', 'debian'), planPe('deploy', 'debian')]);
  reference = await makeReferenceSystem(join(work, 'reference'));
  // The system names its root by label and /srv by its device-mapper path, as an installer may.
  // The image has lvm2, as a system on LVM must (verify refuses one without): LVM's one binary.
  await mkdir(join(reference.root, 'srv'), { recursive: true });
  await mkdir(join(reference.root, 'usr/sbin'), { recursive: true });
  await copyFile('/usr/sbin/lvm', join(reference.root, 'usr/sbin/lvm'));
  await writeFile(join(reference.root, 'srv/data.txt'), 'on a logical volume\n');
  await writeFile(join(reference.root, 'etc/fstab'), 'LABEL=fixroot / ext4 defaults 0 1\n/dev/mapper/fix--vg-srv /srv xfs defaults 0 2\n');
  await exec('node', [resolve('dist/cli/main.js'), 'capture', reference.root, join(share, 'images/fixture.wim'), 'fixture', '--compress', 'xpress']);
}, 600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('LVM in the PE', () => {
  const disk = () => join(work, 'lvm.raw');

  it('deploys onto a volume group: the logical volumes made in exact extents, formatted, mounted as one tree and verified', async () => {
    await writeFile(
      join(share, 'deploy.yaml'),
      `source: { url: ${SHARE_URL}, image: images/fixture.wim }
target:
  disk: { pick: smallest, minSize: 1GiB }
  layout:
    table: gpt
    partitions:
      - { name: bios, size: 1MiB, type: bios-boot }
      - { name: pv, size: rest, type: lvm, format: lvm }
    volumeGroups:
      - name: fix-vg
        physicalVolumes: [pv]
        logicalVolumes:
          - { name: root, size: 600MiB, format: ext4, label: fixroot, mount: / }
          - { name: srv, size: 30%, format: xfs, mount: /srv }
          - { name: spare, size: rest }
apply: [{ partition: fix-vg/root }]
bootloader: { type: none }
after: poweroff
`,
    );
    const run = await withVm('deploy lvm', startVm({ iso: (await planPe('deploy', 'debian')).iso, disks: [{ path: disk(), size: DISK_SIZE, format: 'raw' }], share, workDir: join(work, 'deploy'), lifetimeMs: JOB_TIMEOUT_MS + 120_000 }), (vm) => runAgent(vm, 'deployed', JOB_TIMEOUT_MS));
    process.stdout.write(`lvm deploy: PE start to deployed ${run.seconds.toFixed(1)} s wall\n`);
    // 2 GiB less the first MiB, bios-boot and the backup GPT: a 2045 MiB PV, 511 extents of 4 MiB
    // after LVM's first MiB: 150 for root, 30% (153) for srv, the 208 left for spare.
    expect(run.steps).toEqual(
      expect.arrayContaining([
        'format: pv: LVM2_member, fix-vg/root: ext4, fix-vg/srv: xfs; volume group fix-vg: root 600 MiB, srv 612 MiB, spare 832 MiB',
        'apply: 1 "fixture" -> fix-vg/root',
        expect.stringMatching(/^verify: table, \d+ files on fix-vg\/root, boot readiness/),
      ]),
    );
    expect(run.end).toMatchObject({ type: 'deployed' });
  }, JOB_TIMEOUT_MS + 180_000);

  it('captures it back without generalizing: the group activated read-only, the disk unchanged, the group recorded', async () => {
    const before = await sha256File(disk());
    await writeFile(join(share, 'capture.yaml'), `kind: capture\nsource: { partition: root }\ngeneralize: false\ndestination: { url: ${SHARE_URL}, file: images/back.wim, name: back, compression: xpress }\nafter: poweroff\n`);
    const run = await withVm('capture lvm', startVm({ iso: (await planPe('capture', 'debian')).iso, disks: [{ path: disk(), format: 'raw' }], share, workDir: join(work, 'capture'), lifetimeMs: JOB_TIMEOUT_MS + 120_000 }), (vm) => runAgent(vm, 'captured', JOB_TIMEOUT_MS));
    process.stdout.write(`lvm capture: PE start to captured ${run.seconds.toFixed(1)} s wall\n`);
    expect(run.steps).toEqual(expect.arrayContaining([expect.stringMatching(/^source: \/dev\/mapper\/fix--vg-root \(logical volume fix-vg\/root\): ext4 "fixroot", 600 MiB, with \/srv \(\/dev\/mapper\/fix--vg-srv\); LVM: fix-vg \(root, srv, spare\)$/)]));
    expect(await sha256File(disk())).toBe(before);
    const wim = join(share, 'images/back.wim');
    const files = (await imaging.dir(wim, 1)) as string[];
    expect(files).toEqual(expect.arrayContaining(['/sbin/init', '/srv', '/srv/data.txt']));
    const recorded = JSON.parse((await imaging.imageProperty(wim, 1, 'IMAGEPE/LAYOUT'))!) as Record<string, unknown>;
    expect(recorded).toMatchObject({
      imagePartition: 'fix-vg/root',
      layout: {
        partitions: [
          { name: 'bios', size: '1MiB', type: 'bios-boot', format: 'none' },
          { name: 'pv', size: 'rest', type: 'lvm', format: 'lvm' },
        ],
        volumeGroups: [
          {
            name: 'fix-vg',
            physicalVolumes: ['pv'],
            logicalVolumes: [
              // In the order they lie in the group, as the deploy made them.
              { name: 'root', size: 'rest', format: 'ext4', label: 'fixroot', mount: '/' },
              { name: 'srv', size: '612MiB', format: 'xfs', mount: '/srv' },
              { name: 'spare', size: '832MiB', format: 'none' },
            ],
          },
        ],
      },
    });
  }, JOB_TIMEOUT_MS + 180_000);
});
