import { jest } from '@jest/globals';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImagepeError, run } from '../../core/index.js';
import { captureRaw } from '../../imaging/raw/index.js';
import * as partition from '../../partition/index.js';
import { makeDebianReferenceDisk, readDeployedDebian, type DebianReference } from '../../test-support/debian-reference.js';
import { removeDir, sparseFile, tempDir } from '../../test-support/tree.js';
import type { DeployEvent } from '../events/index.js';
import { parsePlan, type DeployPlanInput } from '../plan/index.js';
import { deploy } from './index.js';

// A real Debian 12 as a raw disk image (imagepe capture-raw: used blocks, zstd, block map,
// sha256) deployed on loop devices to a disk twice its size: written whole and verified, the
// GPT's backup moved to the end, root grown over the disk with swap moved behind it (same
// UUID), then specialized like a WIM deploy. Also the refusals before the first write.

jest.setTimeout(600_000);

const GiB = 1024 ** 3;
const REF_BYTES = 2 * GiB;
let dir: string;
let share: string;
let ref: DebianReference;

beforeAll(async () => {
  dir = await tempDir('raw-deploy');
  share = join(dir, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  ref = await makeDebianReferenceDisk(join(dir, 'reference.img'), { hostname: 'raw-reference', sizeBytes: REF_BYTES });
  await captureRaw({ disk: ref.image, output: join(share, 'images/debian.img.zst') });
}, 900_000);

afterAll(async () => {
  await removeDir(dir);
});

function plan(over: Partial<DeployPlanInput['source']> = {}, rest: Partial<DeployPlanInput> = {}): ReturnType<typeof parsePlan> {
  return parsePlan({ source: { url: `file://${share}`, image: 'images/debian.img.zst', ...over }, target: { wipe: true }, specialize: { hostname: 'raw-{mac}' }, after: 'poweroff', ...rest });
}

async function deployTo(name: string, bytes: number, p: ReturnType<typeof parsePlan>): Promise<{ disk: string; events: DeployEvent[] }> {
  const disk = await sparseFile(join(dir, name), bytes);
  const events: DeployEvent[] = [];
  await deploy(p, { disk, yes: true, facts: { mac: '52:54:00:00:00:20' }, events: (e) => events.push(e) });
  return { disk, events };
}

describe('a raw image of a real Debian 12', () => {
  it('is written whole to a larger disk, grown to fill it, and specialized', async () => {
    const { disk, events } = await deployTo('big.img', 2 * REF_BYTES, plan());
    const steps = events.filter((e) => e.type === 'step' && e.status !== 'started').map((e) => (e.type === 'step' ? `${e.step}:${e.status}` : ''));
    expect(steps).toEqual(['plan:done', 'disk:done', 'share:done', 'check:done', 'write:done', 'grow:done', 'system:done', 'specialize:done', 'verify:done']);
    const detail = (step: string) => events.find((e) => e.type === 'step' && e.step === step && e.status === 'done')?.type === 'step' ? (events.find((e) => e.type === 'step' && e.step === step && e.status === 'done') as { detail?: string }).detail ?? '' : '';
    expect(detail('check')).toMatch(/sha256 from .*debian\.img\.zst\.sha256/);
    expect(detail('check')).toMatch(/block map .*debian\.img\.bmap/);
    const table = (await partition.withAttachedImage(disk, (loop) => partition.readTable(loop, (what) => ({ what, timeoutMs: 60_000 })), { readOnly: true }))!;
    const sectors = (n: number) => table.partitions!.find((p) => p.node.endsWith(String(n)))!;
    // root (3) takes what the disk has beyond the image; swap (4) sits at the end, its size kept.
    expect(sectors(4).start + sectors(4).size).toBeGreaterThan(2 * REF_BYTES / 512 - 2048 - 34);
    expect(sectors(3).size * 512).toBeGreaterThan(REF_BYTES + 1.5 * GiB);
    const got = await readDeployedDebian(disk, []);
    // The image's filesystems keep their UUIDs (nothing to remap); the machine's identity is new.
    expect(got.filesystems[3]).toMatchObject({ TYPE: 'ext4', UUID: ref.uuids.root });
    expect(got.filesystems[4]).toMatchObject({ TYPE: 'swap', UUID: ref.uuids.swap });
    expect(got.hostname).toBe('raw-525400000020');
    expect(got.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(got.machineId).not.toBe(ref.machineId);
    expect(got.hostKeys).toContain('ssh_host_ed25519_key');
    expect(got.hostKey).not.toBe(ref.hostKey);
    // The grown ext4 fills its partition, and is clean.
    await partition.withAttachedImage(disk, async (loop) => {
      const nodes = await partition.waitForPartitions(loop, [3], 15_000, (what) => ({ what, timeoutMs: 60_000 }));
      const header = (await run('dumpe2fs', ['-h', nodes.get(3)!], { timeoutMs: 60_000 })).stdout;
      const blocks = Number(/^Block count:\s+(\d+)/m.exec(header)![1]) * Number(/^Block size:\s+(\d+)/m.exec(header)![1]);
      expect(blocks).toBeGreaterThan(sectors(3).size * 512 - 4 * 1024 ** 2);
      await run('e2fsck', ['-fn', nodes.get(3)!], { timeoutMs: 120_000 });
    }, { readOnly: true });
    const marker = JSON.parse(await readRootFile(disk, '/var/lib/imagepe/deployed.json')) as { format: string; sha256: string };
    expect(marker.format).toBe('zst');
    expect(marker.sha256).toBe((await readFile(join(share, 'images/debian.img.zst.sha256'), 'utf8')).split(/\s+/)[0]);
  });

  it('refuses, before the first write, a disk smaller than the image and a sha256 that does not match', async () => {
    const small = await sparseFile(join(dir, 'small.img'), REF_BYTES - 64 * 1024 ** 2);
    const err = await deploy(plan(), { disk: small, yes: true, facts: { mac: '52:54:00:00:00:21' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImagepeError);
    expect((err as ImagepeError).code).toBe('NO_SPACE');
    expect((await run('sfdisk', ['--json', small], { okExitCodes: [0, 1] })).stdout).toBe('');
    // A wrong sha256 is found as the image is written: the deploy fails at write, never reports deployed.
    const events: DeployEvent[] = [];
    const wrong = await deploy(plan({ sha256: '0'.repeat(64) }), { disk: await sparseFile(join(dir, 'wrong.img'), REF_BYTES), yes: true, facts: { mac: '52:54:00:00:00:22' }, events: (e) => events.push(e) }).catch((e: unknown) => e);
    expect((wrong as ImagepeError).code).toBe('VERIFY_FAILED');
    expect(events.find((e) => e.type === 'failed')).toMatchObject({ step: 'write', diskTouched: true });
    expect(events.some((e) => e.type === 'deployed')).toBe(false);
  });

  it('takes the uncompressed image and its block map from the share, and grows nothing with grow: none', async () => {
    await run('zstd', ['-d', '-q', '-f', join(share, 'images/debian.img.zst'), '-o', join(share, 'images/debian.img')], { timeoutMs: 300_000 });
    await copyFile(join(share, 'images/debian.img.bmap'), join(share, 'images/debian.img.bmap.kept'));
    await writeFile(join(share, 'images/debian.img.sha256'), `${(await run('sha256sum', [join(share, 'images/debian.img')], { timeoutMs: 300_000 })).stdout.split(/\s+/)[0]}  debian.img\n`);
    const { disk, events } = await deployTo('same.img', 3 * GiB, plan({ image: 'images/debian.img' }, { target: { wipe: true, grow: 'none' } }));
    expect(events.find((e) => e.type === 'step' && e.step === 'grow' && e.status === 'done')).toMatchObject({ detail: expect.stringContaining('no partition grown') });
    const table = (await partition.withAttachedImage(disk, (loop) => partition.readTable(loop, (what) => ({ what, timeoutMs: 60_000 })), { readOnly: true }))!;
    const ref3 = (await partition.withAttachedImage(ref.image, (loop) => partition.readTable(loop, (what) => ({ what, timeoutMs: 60_000 })), { readOnly: true }))!.partitions!.find((p) => p.node.endsWith('3'))!;
    expect(table.partitions!.find((p) => p.node.endsWith('3'))!.size).toBe(ref3.size);
    const got = await readDeployedDebian(disk, []);
    expect(got.machineId).not.toBe(ref.machineId);
  });
});

/** A file of the deployed root (partition 3), read from a read-only mount. */
async function readRootFile(disk: string, path: string): Promise<string> {
  return partition.withAttachedImage(
    disk,
    async (loop) => {
      const nodes = await partition.waitForPartitions(loop, [3], 15_000, (what) => ({ what, timeoutMs: 60_000 }));
      const at = await tempDir('raw-root');
      await run('mount', ['-t', 'ext4', '-o', 'ro,noload', nodes.get(3)!, at]);
      try {
        return await readFile(join(at, path), 'utf8');
      } finally {
        await run('umount', [at]);
        await removeDir(at);
      }
    },
    { readOnly: true },
  );
}
