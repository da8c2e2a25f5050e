import { readFile, readlink, readdir, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { filesInside, pathInside } from './paths.js';
import { rewriteCmdline, rewriteTableColumn, rewriteWord, type VolumeMap } from './references.js';
import { rewriteAssignments } from './shell.js';

/** One storage reference rewritten in the deployed system. */
export interface RemapChange {
  /** The file, as a path of the deployed system. */
  file: string;
  line?: number | undefined;
  from: string;
  to: string;
  /** Set when the file itself was renamed (a .swap unit, a link enabling it): its old path. */
  renamedFrom?: string | undefined;
}

/** Shell-syntax files whose values may name storage: GRUB's kernel arguments, initramfs-tools' and dracut's resume and devices. */
const SHELL_FILES: readonly { dir?: string; file?: string; suffix?: string }[] = [
  { file: '/etc/default/grub' },
  { dir: '/etc/default/grub.d', suffix: '.cfg' },
  { file: '/etc/initramfs-tools/initramfs.conf' },
  { dir: '/etc/initramfs-tools/conf.d' },
  { file: '/etc/uswsusp.conf' },
  { file: '/etc/dracut.conf' },
  { dir: '/etc/dracut.conf.d', suffix: '.conf' },
];

/**
 * Rewrites every reference the deployed system at `root` makes to the reference machine's
 * storage so it names the new machine's: /etc/fstab and /etc/crypttab, GRUB's and the
 * initramfs tools' shell configuration (read as shell, not by pattern), /etc/kernel/cmdline,
 * and systemd .mount and .swap units (a .swap unit is renamed with its device, and the links
 * that enable it follow). References the map does not know are left alone; verify judges them.
 */
export async function remapReferences(root: string, map: VolumeMap): Promise<RemapChange[]> {
  const changes: RemapChange[] = [];
  const edit = async (file: string, change: (text: string) => { text: string; changes: { line?: number; from: string; to: string }[] }) => {
    const host = await pathInside(root, file);
    const text = await readFile(host, 'utf8').catch(() => undefined);
    if (text === undefined) return;
    const r = change(text);
    if (r.changes.length === 0) return;
    // Writing in place keeps the file's owner and mode.
    await writeFile(host, r.text);
    for (const c of r.changes) changes.push({ file, line: c.line, from: c.from, to: c.to });
  };

  await edit('/etc/fstab', (t) => rewriteTableColumn(t, 0, map));
  await edit('/etc/crypttab', (t) => rewriteTableColumn(t, 1, map));
  for (const s of SHELL_FILES) {
    const files = s.file ? [s.file] : await filesInside(root, s.dir!, s.suffix);
    for (const f of files) await edit(f, (t) => rewriteAssignments(t, (word) => rewriteWord(word, map)));
  }
  await edit('/etc/kernel/cmdline', (t) => rewriteCmdline(t, map));
  changes.push(...(await remapUnits(root, map)));
  return changes;
}

/** `What=` of the administrator's .mount and .swap units; a .swap unit's name is its device's path, escaped. */
async function remapUnits(root: string, map: VolumeMap): Promise<RemapChange[]> {
  const dir = '/etc/systemd/system';
  const changes: RemapChange[] = [];
  const units = [...(await filesInside(root, dir, '.mount')), ...(await filesInside(root, dir, '.swap'))];
  for (const unit of units) {
    const host = await pathInside(root, unit);
    const text = await readFile(host, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    let newWhat: string | undefined;
    let oldWhat: string | undefined;
    const lines = text.split('\n').map((line, i) => {
      const m = /^(\s*What\s*=\s*)(\S+)(\s*)$/.exec(line);
      if (!m) return line;
      const to = map.rewrite(m[2]!);
      if (to === undefined) return line;
      oldWhat = m[2]!;
      newWhat = to;
      changes.push({ file: unit, line: i + 1, from: m[2]!, to });
      return `${m[1]}${to}${m[3]}`;
    });
    if (newWhat === undefined || oldWhat === undefined) continue;
    await writeFile(host, lines.join('\n'));
    if (unit.endsWith('.swap') && basename(unit) === `${unitPathName(oldWhat)}.swap` && newWhat.startsWith('/')) {
      const renamed = `${unitPathName(newWhat)}.swap`;
      await rename(host, join(dirname(host), renamed));
      changes.push({ file: unit, from: basename(unit), to: renamed, renamedFrom: unit });
      await relink(root, dir, basename(unit), renamed, changes);
    }
  }
  return changes;
}

/** Links in the units' .wants and .requires folders that enable `from` are made to enable `to`. */
async function relink(root: string, dir: string, from: string, to: string, changes: RemapChange[]): Promise<void> {
  const host = await pathInside(root, dir);
  for (const e of await readdir(host, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory() || !/\.(wants|requires)$/.test(e.name)) continue;
    const link = join(host, e.name, from);
    const target = await readlink(link).catch(() => undefined);
    if (target === undefined) continue;
    await unlink(link);
    await symlink(target.endsWith(`/${from}`) ? `${target.slice(0, -from.length)}${to}` : target, join(host, e.name, to));
    changes.push({ file: `${dir}/${e.name}/${from}`, from, to, renamedFrom: `${dir}/${e.name}/${from}` });
  }
}

/** systemd's path escaping for unit names (systemd-escape --path): /dev/disk/by-uuid/x-y → dev-disk-by\x2duuid-x\x2dy. */
export function unitPathName(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, '').replace(/\/+/g, '/');
  if (trimmed === '') return '-';
  return trimmed
    .split('/')
    .map((part) =>
      [...Buffer.from(part, 'utf8')]
        .map((b, i) => {
          const ch = String.fromCharCode(b);
          if (/[A-Za-z0-9:_.]/.test(ch) && !(i === 0 && ch === '.')) return ch;
          return `\\x${b.toString(16).padStart(2, '0')}`;
        })
        .join(''),
    )
    .join('-');
}
