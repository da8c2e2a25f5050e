import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImagepeError } from '../core/index.js';

/**
 * The project directory: the one holding package.json and templates/. From the sources (a
 * checkout) that is one level above builder/; from the compiled dist/builder, in a checkout or an
 * installed package, it is two.
 */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    dir = dirname(dir);
    if (existsSync(join(dir, 'templates', 'init')) && existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new ImagepeError('NOT_FOUND', 'the imagepe templates/ directory was not found next to the builder', {
    hint: 'Run imagepe from its checkout or from an installed package (npm install -g imagepe), which ships templates/.',
  });
}

/** True when imagepe runs from an npm installation (under node_modules), not from a checkout. */
export function isInstalledPackage(root = projectRoot()): boolean {
  return root.split(sep).includes('node_modules');
}

export function templatePath(name: string): string {
  return join(projectRoot(), 'templates', name);
}

/**
 * Where builds are cached: $IMAGEPE_CACHE_DIR, else $XDG_CACHE_HOME/imagepe, else .cache/ in a
 * checkout, else ~/.cache/imagepe for an installed package (whose folder under node_modules is
 * replaced by every upgrade and may not be writable).
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IMAGEPE_CACHE_DIR) return env.IMAGEPE_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'imagepe');
  const root = projectRoot();
  return isInstalledPackage(root) ? join(homedir(), '.cache', 'imagepe') : join(root, '.cache');
}
