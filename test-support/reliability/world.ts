import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/index.js';
import { capture, generalize } from '../../imaging/index.js';
import { sha256File } from '../../agent/deploy/index.js';
import type { DeployPlanInput } from '../../agent/plan/index.js';
import { REFERENCE_LAYOUT } from '../reference-system.js';
import { makeReferenceTree, REFERENCE_BLOB } from '../reference-tree.js';

// The host-side world the reliability tests and the bench deploy into: a small Linux tree
// captured into WIMs on a file:// share, damaged copies of them made the way real damage
// happens (a copy cut short, one flipped byte, the wrong file), and sparse disk image files.

export const MiB = 1024 * 1024;
/** Big enough for the base layout (a 64 MiB ESP, bios-boot, an ext4 root), small enough to hash in a blink. */
export const DISK_BYTES = 128 * MiB;
export const FACTS = { mac: '52:54:00:aa:bb:cc', serial: 'REL-0008' };

export interface World {
  dir: string;
  /** The folder a file:// url names; images/ holds the WIMs, logs/ the deploy logs. */
  share: string;
  /** Good WIMs: ref.wim without an integrity table, ref-check.wim with one. */
  wim: string;
  wimSha: string;
  checkedWim: string;
  /** sha256 of usr/share/imagepe/blob.bin in the reference tree, to recognise it on a deployed disk. */
  blobSha: string;
  /** Secrets put in every plan; none may show up anywhere. */
  secrets: { password: string; fileContent: string };
}

/** Share-relative names of the images makeWorld writes. */
export const IMAGES = {
  good: 'images/ref.wim',
  checked: 'images/ref-check.wim',
  truncated: 'images/truncated.wim',
  corruptChecked: 'images/corrupt-check.wim',
  corrupt: 'images/corrupt.wim',
  notWim: 'images/not-a-wim.wim',
  empty: 'images/empty.wim',
  missing: 'images/missing.wim',
} as const;

export async function makeWorld(dir: string): Promise<World> {
  await mkdir(dir, { recursive: true });
  const share = join(dir, 'share');
  const ref = join(dir, 'reference');
  // What specialize touches, a file under the ESP's mount point, a private file in a home with
  // a non-ASCII name, and a 1 MiB blob to damage.
  await makeReferenceTree(ref, { espFile: true, blobBytes: MiB, home: { name: 'ünïcødé', notes: 'Grüße\n' } });
  await generalize(ref);
  await mkdir(join(share, 'images'), { recursive: true });
  const wim = join(share, IMAGES.good);
  const checkedWim = join(share, IMAGES.checked);
  await capture(ref, wim, { name: 'reference', compression: 'xpress', skipSpaceCheck: true });
  await capture(ref, checkedWim, { name: 'reference', compression: 'xpress', check: true, skipSpaceCheck: true });
  const blobSha = await sha256File(join(ref, REFERENCE_BLOB));
  await rm(ref, { recursive: true, force: true });

  // A copy cut short, as an interrupted transfer leaves it: the header is fine, the tables at the end are gone.
  await copyFile(wim, join(share, IMAGES.truncated));
  const size = (await readFile(wim)).length;
  await truncate(join(share, IMAGES.truncated), Math.floor(size * 0.6));
  // One byte flipped inside the largest file resource: with an integrity table, and without one.
  await copyFile(checkedWim, join(share, IMAGES.corruptChecked));
  await flipByteInLargestBlob(join(share, IMAGES.corruptChecked));
  await copyFile(wim, join(share, IMAGES.corrupt));
  await flipByteInLargestBlob(join(share, IMAGES.corrupt));
  await writeFile(join(share, IMAGES.notWim), 'This is a README that was saved as .wim by mistake.\n'.repeat(100));
  await writeFile(join(share, IMAGES.empty), '');

  const secret = randomBytes(9).toString('hex');
  return {
    dir,
    share,
    wim,
    wimSha: await sha256File(wim),
    checkedWim,
    blobSha,
    secrets: { password: `pw-${secret}-never-shown`, fileContent: `token-${secret}-kept-private` },
  };
}

/** Flips one byte in the middle of the largest non-metadata resource, read from `wimlib-imagex info --blobs`. */
export async function flipByteInLargestBlob(wimPath: string): Promise<number> {
  const out = (await run('wimlib-imagex', ['info', wimPath, '--blobs'], { what: `listing the resources of ${wimPath}` })).stdout;
  let best: { offset: number; size: number } | undefined;
  for (const block of out.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}\\s*=\\s*(\\d+)`, 'm').exec(block)?.[1];
    const offset = field('Offset in WIM');
    const stored = field('Compressed size');
    if (offset === undefined || stored === undefined || /METADATA/.test(block)) continue;
    if (!best || Number(stored) > best.size) best = { offset: Number(offset), size: Number(stored) };
  }
  if (!best || best.size < 1024) throw new Error(`${wimPath} has no file resource large enough to damage`);
  const at = best.offset + Math.floor(best.size / 2);
  const fh = await open(wimPath, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
  return at;
}

export interface PlanOptions {
  image?: string;
  url?: string;
  sha256?: string | null;
  index?: number | string;
  wipe?: boolean;
  grub?: boolean;
  applyIndex?: number | string;
}

/**
 * The plan every fault starts from: GPT with an ESP (files under /boot/efi go there), bios-boot
 * and an ext4 root; the share password and a private file's content are the secrets that must
 * never be seen. GRUB is left out unless asked: the reference tree has no kernel to boot.
 */
export function basePlan(w: World, o: PlanOptions = {}): DeployPlanInput {
  const sha = o.sha256 === null ? undefined : (o.sha256 ?? (o.image === undefined || o.image === IMAGES.good ? w.wimSha : undefined));
  return {
    source: {
      url: o.url ?? `file://${w.share}`,
      image: o.image ?? IMAGES.good,
      index: o.index ?? 'reference',
      ...(sha ? { sha256: sha } : {}),
      credentials: { username: 'deploy', password: w.secrets.password, domain: 'LAB' },
    },
    target: {
      wipe: o.wipe ?? false,
      layout: REFERENCE_LAYOUT,
    },
    apply: [{ partition: 'root', ...(o.applyIndex !== undefined ? { index: o.applyIndex } : {}) }],
    specialize: {
      hostname: 'node-{mac}',
      machineId: 'empty',
      files: [
        { path: '/etc/motd', content: 'deployed by imagepe\n', mode: '0644' },
        { path: '/etc/imagepe-token', content: `${w.secrets.fileContent}\n`, mode: '0600' },
      ],
    },
    bootloader: o.grub ? { type: 'grub', firmware: 'both' } : { type: 'none' },
    after: 'poweroff',
  };
}

/** A blank sparse disk image file. */
export async function blankDisk(path: string, bytes = DISK_BYTES): Promise<string> {
  await rm(path, { force: true });
  const fh = await open(path, 'w');
  try {
    await fh.truncate(bytes);
  } finally {
    await fh.close();
  }
  return path;
}

/** What is attached to a disk image file right now (must be nothing after a deploy). */
export async function loopsOf(path: string): Promise<string> {
  return (await run('losetup', ['--associated', path, '--noheadings', '--output', 'NAME'])).stdout.trim();
}
