import type { Argv, CommandModule } from 'yargs';
import { ImagepeError, formatBytes, formatDuration } from '../../core/index.js';
import * as imaging from '../../imaging/index.js';
import type { Compression, WimDirEntry, WimInfo } from '../../imaging/index.js';
import { printJson } from '../output.js';
import { withProgress } from '../progress.js';

interface Global {
  json: boolean;
}

const COMPRESSIONS: readonly Compression[] = ['none', 'xpress', 'lzx', 'lzms'];

function captureOptions<T>(y: Argv<T>) {
  return y
    .option('compress', { choices: COMPRESSIONS, describe: 'Compression of a new WIM (default lzx; xpress is 5-8x faster to capture, a little larger)' })
    .option('solid', { type: 'boolean', default: false, describe: 'Solid compression: smaller, slower to apply single files from' })
    .option('check', { type: 'boolean', default: false, describe: 'Write an integrity table so damage is found before apply' })
    .option('exclude', { type: 'string', array: true, default: [] as string[], describe: 'Leave out a path or pattern (repeatable), like wimscript.ini [ExclusionList]' })
    .option('config', { type: 'string', describe: 'A capture configuration file in wimscript.ini format' })
    .option('unix-data', { type: 'boolean', default: true, describe: 'Keep owners, modes, special files and xattrs of a Linux source (--no-unix-data to drop them)' })
    .option('boot', { type: 'boolean', default: false, describe: 'Mark the new image bootable' })
    .option('flags', { type: 'string', describe: 'The FLAGS property of the image (Windows edition id)' })
    .option('space-check', { type: 'boolean', default: true, describe: 'Check free space before starting (--no-space-check to skip)' })
    .option('cross-filesystems', {
      type: 'boolean',
      default: false,
      describe: 'Also capture filesystems mounted below the source (tmpfs, bind mounts, other disks); by default their mount points are kept as empty directories and listed',
    });
}

function capturePositionals<T>(y: Argv<T>) {
  return y.positional('source', { type: 'string', demandOption: true }).positional('wim', { type: 'string', demandOption: true }).positional('name', { type: 'string' }).positional('description', { type: 'string' });
}

type CaptureArgs = Global & {
  source: string;
  wim: string;
  name?: string;
  description?: string;
  compress?: Compression;
  solid: boolean;
  check: boolean;
  exclude: string[];
  config?: string;
  'unix-data': boolean;
  boot: boolean;
  flags?: string;
  'space-check': boolean;
  'cross-filesystems': boolean;
  pipable?: boolean;
};

function toCaptureOptions(a: CaptureArgs): imaging.CaptureOptions {
  return {
    name: a.name,
    description: a.description,
    compression: a.compress,
    solid: a.solid,
    check: a.check,
    exclude: a.exclude,
    configFile: a.config,
    unixData: a['unix-data'],
    bootable: a.boot,
    flags: a.flags,
    skipSpaceCheck: !a['space-check'],
    crossFilesystems: a['cross-filesystems'],
    pipable: a.pipable,
  };
}

function captureSummary(verb: string, r: imaging.CaptureResult, wim: WimInfo): string {
  const img = r.image;
  const skipped = r.skippedMounts.length ? `\nSkipped ${r.skippedMounts.length} mount point(s) of other filesystems, kept as empty directories (--cross-filesystems includes them): ${r.skippedMounts.join(', ')}` : '';
  return `${verb} image ${img.index} "${img.name}" into ${r.wimPath}: ${img.fileCount} files, ${img.directoryCount} directories, ${formatBytes(img.totalBytes)} of data; WIM is now ${formatBytes(wim.sizeBytes)} (${wim.compression}) — ${formatDuration(r.durationMs / 1000)}${skipped}`;
}

const captureCommand: CommandModule<Global, CaptureArgs> = {
  command: 'capture <source> <wim> [name] [description]',
  describe: 'Capture a directory or NTFS volume into a new WIM',
  builder: (y) =>
    captureOptions(capturePositionals(y)).option('pipable', {
      type: 'boolean',
      default: false,
      describe: "wimlib's pipable format, applied as it downloads (deploy from an http:// URL); Microsoft's tools cannot read it",
    }) as Argv<CaptureArgs>,
  handler: async (a) => {
    const r = await withProgress(`Capturing ${a.source} → ${a.wim}`, a.json, (events) => imaging.capture(a.source, a.wim, { ...toCaptureOptions(a), events }));
    const wim = await imaging.info(a.wim);
    if (a.json) printJson({ type: 'result', operation: 'capture', wim: a.wim, image: r.image, wimSizeBytes: wim.sizeBytes, skippedMounts: r.skippedMounts, durationMs: r.durationMs });
    else process.stdout.write(`${captureSummary('Captured', r, wim)}\n`);
  },
};

const appendCommand: CommandModule<Global, CaptureArgs> = {
  command: 'append <source> <wim> [name] [description]',
  describe: 'Capture a directory or NTFS volume as a new image of a WIM',
  builder: (y) => captureOptions(capturePositionals(y)) as Argv<CaptureArgs>,
  handler: async (a) => {
    const r = await withProgress(`Appending ${a.source} → ${a.wim}`, a.json, (events) => imaging.append(a.source, a.wim, { ...toCaptureOptions(a), events }));
    const wim = await imaging.info(a.wim);
    if (a.json) printJson({ type: 'result', operation: 'append', wim: a.wim, image: r.image, wimSizeBytes: wim.sizeBytes, skippedMounts: r.skippedMounts, durationMs: r.durationMs });
    else process.stdout.write(`${captureSummary('Appended', r, wim)}\n`);
  },
};

type ApplyArgs = Global & { wim: string; image: string; target?: string; force: boolean; check: boolean; 'unix-data': boolean; 'space-check': boolean };

const applyCommand: CommandModule<Global, ApplyArgs> = {
  command: 'apply <wim> <image> [target]',
  describe: 'Apply an image to a directory or an unmounted NTFS volume',
  builder: (y) =>
    y
      .positional('wim', { type: 'string', demandOption: true, describe: 'A WIM, or the first part of a split WIM (x.swm; x2.swm, ... are read from beside it)' })
      .positional('image', { type: 'string', demandOption: true, describe: 'Image index (1-based) or name' })
      .positional('target', { type: 'string', describe: 'Directory, or NTFS volume (block device or image file)' })
      .option('force', { type: 'boolean', default: false, describe: 'Apply into a target that is not empty' })
      .option('check', { type: 'boolean', default: false, describe: "Check the WIM's integrity table first" })
      .option('unix-data', { type: 'boolean', default: true, describe: 'Restore Linux owners, modes, special files and xattrs (--no-unix-data to skip)' })
      .option('space-check', { type: 'boolean', default: true, describe: 'Check free space before starting' }) as Argv<ApplyArgs>,
  handler: async (a) => {
    let image: string | number = a.image;
    let target = a.target;
    if (target === undefined) {
      target = a.image;
      const wim = await imaging.info(a.wim);
      if (wim.images.length !== 1) {
        throw new ImagepeError('INVALID_INPUT', `${a.wim} holds ${wim.images.length} images; name the one to apply`, { hint: `imagepe apply ${a.wim} IMAGE ${target}` });
      }
      image = 1;
    }
    const t = target;
    const r = await withProgress(`Applying ${a.wim} image ${image} → ${t}`, a.json, (events) =>
      imaging.apply(a.wim, image, t, { allowNonEmpty: a.force, check: a.check, unixData: a['unix-data'], skipSpaceCheck: !a['space-check'], events }),
    );
    if (a.json) printJson({ type: 'result', operation: 'apply', wim: a.wim, image: r.image, target: r.target, targetKind: r.targetKind, durationMs: r.durationMs });
    else
      process.stdout.write(
        `Applied image ${r.image.index} "${r.image.name}" to ${r.target}${r.targetKind === 'ntfs-volume' ? ' (NTFS volume)' : ''}: ${r.image.fileCount} files, ${formatBytes(r.image.totalBytes)} — ${formatDuration(r.durationMs / 1000)}\n`,
      );
  },
};

type DeleteArgs = Global & { wim: string; image: string; check: boolean; soft: boolean };
const deleteCommand: CommandModule<Global, DeleteArgs> = {
  command: 'delete <wim> <image>',
  describe: 'Delete an image from a WIM (optimize reclaims the space)',
  builder: (y) =>
    y
      .positional('wim', { type: 'string', demandOption: true })
      .positional('image', { type: 'string', demandOption: true })
      .option('check', { type: 'boolean', default: false })
      .option('soft', { type: 'boolean', default: false, describe: 'Only drop the image from the index, do not rebuild (fast, space not reclaimed)' }) as Argv<DeleteArgs>,
  handler: async (a) => {
    const after = await withProgress(`Deleting image ${a.image} from ${a.wim}`, a.json, (events) => imaging.remove(a.wim, a.image, { check: a.check, soft: a.soft, events }));
    if (a.json) printJson({ type: 'result', operation: 'delete', wim: a.wim, images: after.images });
    else process.stdout.write(`Deleted image ${a.image} from ${a.wim}; ${after.imageCount} image(s) left, ${formatBytes(after.sizeBytes)}\n`);
  },
};

type ExportArgs = Global & { src: string; image: string; dest: string; name?: string; description?: string; compress?: Compression; solid: boolean; check: boolean; boot: boolean; pipable: boolean };
const exportCommand: CommandModule<Global, ExportArgs> = {
  command: 'export <src> <image> <dest> [name] [description]',
  describe: 'Copy an image (or all) into another WIM, new or existing',
  builder: (y) =>
    y
      .positional('src', { type: 'string', demandOption: true })
      .positional('image', { type: 'string', demandOption: true, describe: 'Index, name, or all' })
      .positional('dest', { type: 'string', demandOption: true })
      .positional('name', { type: 'string' })
      .positional('description', { type: 'string' })
      .option('compress', { choices: COMPRESSIONS, describe: 'Compression of a new destination WIM' })
      .option('solid', { type: 'boolean', default: false })
      .option('check', { type: 'boolean', default: false })
      .option('boot', { type: 'boolean', default: false })
      .option('pipable', { type: 'boolean', default: false, describe: 'Write a new destination in the pipable format (all images of a WIM, to deploy it from an http:// URL as it downloads)' }) as Argv<ExportArgs>,
  handler: async (a) => {
    const image = a.image === 'all' ? 'all' : a.image;
    const dest = await withProgress(`Exporting ${a.src} image ${a.image} → ${a.dest}`, a.json, (events) =>
      imaging.exportImage(a.src, image, a.dest, { destName: a.name, destDescription: a.description, compression: a.compress, solid: a.solid, check: a.check, bootable: a.boot, pipable: a.pipable, events }),
    );
    if (a.json) printJson({ type: 'result', operation: 'export', wim: a.dest, images: dest.images });
    else process.stdout.write(`Exported to ${a.dest}: now ${dest.imageCount} image(s), ${formatBytes(dest.sizeBytes)}\n`);
  },
};

type InfoArgs = Global & { wim: string; image?: string; check: boolean };
const infoCommand: CommandModule<Global, InfoArgs> = {
  command: 'info <wim> [image]',
  describe: 'Show a WIM and its images: counts, sizes, times',
  builder: (y) =>
    y
      .positional('wim', { type: 'string', demandOption: true })
      .positional('image', { type: 'string', describe: 'Show only this image' })
      .option('check', { type: 'boolean', default: false, describe: 'Also verify the integrity table' }) as Argv<InfoArgs>,
  handler: async (a) => {
    const wim = await imaging.info(a.wim, { check: a.check });
    const images = a.image === undefined ? wim.images : [imaging.selectImage(wim, a.image)];
    if (a.json) {
      printJson({ ...wim, images });
      return;
    }
    const lines = [
      `${wim.path}`,
      `  ${wim.imageCount} image(s), ${formatBytes(wim.sizeBytes)}, ${wim.compression} compression, part ${wim.partNumber}/${wim.totalParts}${wim.hasIntegrityTable ? ', integrity table' : ''}${wim.bootIndex ? `, boot index ${wim.bootIndex}` : ''}`,
      '',
      table(
        ['Index', 'Name', 'Files', 'Dirs', 'Size', 'Created', 'Description'],
        images.map((i) => [String(i.index), i.name, String(i.fileCount), String(i.directoryCount), formatBytes(i.totalBytes), i.creationTime?.replace('T', ' ').replace(/\.\d+Z$/, 'Z') ?? '', i.description]),
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};

type DirArgs = Global & { wim: string; image?: string; path?: string; detailed: boolean };
const dirCommand: CommandModule<Global, DirArgs> = {
  command: 'dir <wim> [image]',
  describe: 'List the files of an image',
  builder: (y) =>
    y
      .positional('wim', { type: 'string', demandOption: true })
      .positional('image', { type: 'string', describe: 'Index or name (default 1 when the WIM holds one image)' })
      .option('path', { type: 'string', describe: 'List only below this path inside the image' })
      .option('detailed', { type: 'boolean', default: false, describe: 'Sizes, link counts, hashes and UNIX data of each entry' }) as Argv<DirArgs>,
  handler: async (a) => {
    const image = a.image ?? (await singleImage(a.wim));
    const entries = await imaging.dir(a.wim, image, { path: a.path, detailed: a.detailed || a.json });
    if (a.json) {
      for (const e of entries) printJson(e);
      return;
    }
    if (!a.detailed) {
      process.stdout.write(`${(entries as string[]).join('\n')}\n`);
      return;
    }
    process.stdout.write(
      `${table(
        ['Mode', 'Links', 'Size', 'Path'],
        (entries as WimDirEntry[]).map((e) => [e.unix ? e.unix.mode.toString(8).padStart(7, '0') : e.isDirectory ? 'dir' : 'file', String(e.linkCount), String(e.size), e.path]),
      )}\n`,
    );
  },
};

async function singleImage(wim: string): Promise<number> {
  const info = await imaging.info(wim);
  if (info.images.length !== 1) throw new ImagepeError('INVALID_INPUT', `${wim} holds ${info.images.length} images; name one`, { hint: 'imagepe info WIM lists them.' });
  return 1;
}

type MountArgs = Global & { wim: string; image: string; dir?: string; check: boolean; 'unix-data': boolean; 'staging-dir'?: string };
function mountCommand(verb: 'mount' | 'mountrw'): CommandModule<Global, MountArgs> {
  return {
    command: `${verb} <wim> <image> [dir]`,
    describe: verb === 'mount' ? 'Mount an image read-only on a directory (FUSE)' : 'Mount an image read-write (unmount --commit keeps changes)',
    builder: (y) => {
      const base = y
        .positional('wim', { type: 'string', demandOption: true })
        .positional('image', { type: 'string', demandOption: true, describe: 'Index or name (may be left out when the WIM holds one image)' })
        .positional('dir', { type: 'string' })
        .option('check', { type: 'boolean', default: false })
        .option('unix-data', { type: 'boolean', default: true, describe: 'Show stored Linux owners and modes' });
      return (verb === 'mountrw' ? base.option('staging-dir', { type: 'string', describe: 'Where changed files are kept until unmount' }) : base) as Argv<MountArgs>;
    },
    handler: async (a) => {
      let image: string | number = a.image;
      let dir = a.dir;
      if (dir === undefined) {
        dir = a.image;
        image = await singleImage(a.wim);
      }
      const opts = { check: a.check, unixData: a['unix-data'], stagingDir: a['staging-dir'] };
      const img = verb === 'mount' ? await imaging.mount(a.wim, image, dir, opts) : await imaging.mountrw(a.wim, image, dir, opts);
      if (a.json) printJson({ type: 'result', operation: verb, wim: a.wim, image: img, dir, readWrite: verb === 'mountrw' });
      else process.stdout.write(`Mounted image ${img.index} "${img.name}" of ${a.wim} on ${dir}${verb === 'mountrw' ? ' read-write (imagepe unmount --commit keeps changes)' : ' read-only'}\n`);
    },
  };
}

type UnmountArgs = Global & { dir: string; commit: boolean; check: boolean; rebuild: boolean; 'new-image': boolean; force: boolean };
const unmountCommand: CommandModule<Global, UnmountArgs> = {
  command: 'unmount <dir>',
  describe: 'Unmount an image; --commit writes changes, else discarded',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', demandOption: true })
      .option('commit', { type: 'boolean', default: false, describe: 'Keep the changes (read-write mounts)' })
      .option('check', { type: 'boolean', default: false, describe: 'Update the integrity table on commit' })
      .option('rebuild', { type: 'boolean', default: false, describe: 'Rebuild the WIM on commit to reclaim space' })
      .option('new-image', { type: 'boolean', default: false, describe: 'Commit the changes as a new image' })
      .option('force', { type: 'boolean', default: false, describe: 'Unmount even with files still open' }) as Argv<UnmountArgs>,
  handler: async (a) => {
    await withProgress(`Unmounting ${a.dir}${a.commit ? ' (commit)' : ''}`, a.json, (events) =>
      imaging.unmount(a.dir, { commit: a.commit, check: a.check, rebuild: a.rebuild, newImage: a['new-image'], force: a.force, events }),
    );
    if (a.json) printJson({ type: 'result', operation: 'unmount', dir: a.dir, committed: a.commit });
    else process.stdout.write(`Unmounted ${a.dir}${a.commit ? '; changes committed' : '; changes (if any) discarded'}\n`);
  },
};

type SplitArgs = Global & { wim: string; swm: string; size: number; check: boolean };
const splitCommand: CommandModule<Global, SplitArgs> = {
  command: 'split <wim> <swm> <size>',
  describe: 'Split a WIM into SWM parts of SIZE MiB (4095 for FAT32); apply, verify, dir, mount, export and deploy take the first part and find the rest beside it',
  builder: (y) =>
    y
      .positional('wim', { type: 'string', demandOption: true })
      .positional('swm', { type: 'string', demandOption: true, describe: 'Name of the first part: install.swm (then install2.swm, ...)' })
      .positional('size', { type: 'number', demandOption: true, describe: 'Largest part size in MiB' })
      .option('check', { type: 'boolean', default: false }) as Argv<SplitArgs>,
  handler: async (a) => {
    const parts = await withProgress(`Splitting ${a.wim}`, a.json, (events) => imaging.split(a.wim, a.swm, a.size, { check: a.check, events }));
    if (a.json) printJson({ type: 'result', operation: 'split', parts });
    else process.stdout.write(`Split ${a.wim} into ${parts.length} part(s): ${parts.join(', ')}\n`);
  },
};

type OptimizeArgs = Global & { wim: string; check: boolean; recompress: boolean; compress?: Compression; solid: boolean };
const optimizeCommand: CommandModule<Global, OptimizeArgs> = {
  command: 'optimize <wim>',
  describe: 'Rebuild a WIM to reclaim space of deleted data',
  builder: (y) =>
    y
      .positional('wim', { type: 'string', demandOption: true })
      .option('check', { type: 'boolean', default: false })
      .option('recompress', { type: 'boolean', default: false, describe: 'Recompress all data (slow, can shrink the file)' })
      .option('compress', { choices: COMPRESSIONS })
      .option('solid', { type: 'boolean', default: false }) as Argv<OptimizeArgs>,
  handler: async (a) => {
    const r = await withProgress(`Optimizing ${a.wim}`, a.json, (events) => imaging.optimize(a.wim, { check: a.check, recompress: a.recompress, compression: a.compress, solid: a.solid, events }));
    if (a.json) printJson({ type: 'result', operation: 'optimize', wim: a.wim, ...r });
    else process.stdout.write(`Optimized ${a.wim}: ${formatBytes(r.before)} → ${formatBytes(r.after)}\n`);
  },
};

type VerifyArgs = Global & { wim: string };
const verifyCommand: CommandModule<Global, VerifyArgs> = {
  command: 'verify <wim>',
  describe: 'Read every resource of a WIM and check its hashes',
  builder: (y) => y.positional('wim', { type: 'string', demandOption: true }) as Argv<VerifyArgs>,
  handler: async (a) => {
    await withProgress(`Verifying ${a.wim}`, a.json, (events) => imaging.verify(a.wim, { events }));
    if (a.json) printJson({ type: 'result', operation: 'verify', wim: a.wim, ok: true });
    else process.stdout.write(`${a.wim}: every resource checked, no damage found\n`);
  },
};

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

export const wimCommands = [
  captureCommand,
  appendCommand,
  applyCommand,
  deleteCommand,
  dirCommand,
  exportCommand,
  infoCommand,
  mountCommand('mount'),
  mountCommand('mountrw'),
  unmountCommand,
  splitCommand,
  optimizeCommand,
  verifyCommand,
];
