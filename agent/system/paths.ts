import { lstat, readdir, readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ImagepeError } from '../../core/index.js';

/**
 * The host path of `path` inside the tree at root. A symlink in an image is resolved relative to
 * the deployed system, never to this machine: an absolute link such as /etc/hosts -> /run/hosts
 * must land in root/run/hosts, not in the PE's /run.
 */
export async function pathInside(root: string, path: string, depth = 0): Promise<string> {
  if (depth > 20) throw new ImagepeError('INVALID_INPUT', `too many symlinks resolving ${path} in the image`);
  const parts = path.split('/').filter(Boolean);
  let resolved = '';
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '..') {
      resolved = dirname(resolved === '' ? '/' : resolved);
      if (resolved === '/') resolved = '';
      continue;
    }
    if (part === '.') continue;
    const candidate = `${resolved}/${part}`;
    const st = await lstat(join(root, candidate)).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      const target = await readlink(join(root, candidate));
      const rest = parts.slice(i + 1).join('/');
      const next = target.startsWith('/') ? target : `${resolved}/${target}`;
      return pathInside(root, `${next}/${rest}`, depth + 1);
    }
    resolved = candidate;
  }
  return join(root, resolved || '/');
}

/** The files of a directory inside the system at `root` (resolved there), as paths inside the system; none when it is missing. */
export async function filesInside(root: string, dir: string, suffix = ''): Promise<string[]> {
  const host = await pathInside(root, dir);
  const names = await readdir(host, { withFileTypes: true }).catch(() => []);
  return names
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.endsWith(suffix))
    .map((e) => `${dir.replace(/\/$/, '')}/${e.name}`)
    .sort();
}
