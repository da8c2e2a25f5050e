import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImagepeError } from '../core/index.js';

/**
 * The project directory: the one above builder/ holding templates/ and agent/. From the
 * sources that is one level up; from the compiled dist/builder it is two.
 */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    dir = dirname(dir);
    if (existsSync(join(dir, 'templates', 'init')) && existsSync(join(dir, 'agent'))) return dir;
  }
  throw new ImagepeError('NOT_FOUND', 'the imagepe templates/ and agent/ directories were not found next to the builder', {
    hint: 'Run imagepe from its checkout or installed package, which ships templates/ and agent/.',
  });
}

export function templatePath(name: string): string {
  return join(projectRoot(), 'templates', name);
}

/** Where builds are cached: $XDG_CACHE_HOME/imagepe, else .cache/ in the project. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IMAGEPE_CACHE_DIR) return env.IMAGEPE_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'imagepe');
  return join(projectRoot(), '.cache');
}
