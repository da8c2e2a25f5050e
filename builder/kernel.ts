import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ImagepeError } from '../core/index.js';
import type { BuildConfig } from './config.js';

export interface KernelChoice {
  /** The vmlinuz file. */
  image: string;
  /** Release, as uname -r prints it and /lib/modules names it. */
  version: string;
  modulesDir: string;
}

/** Orders kernel releases the way dpkg would for the usual "6.1.0-56-amd64" forms. */
export function compareKernelVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) {
      if (nx !== ny) return nx - ny;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The newest release among /boot file names like vmlinuz-6.1.0-56-amd64. */
export function newestKernel(fileNames: readonly string[]): string | undefined {
  const versions = fileNames.filter((n) => n.startsWith('vmlinuz-')).map((n) => n.slice('vmlinuz-'.length));
  return versions.sort(compareKernelVersions).at(-1);
}

export async function resolveKernel(config: BuildConfig['kernel'], bootDir = '/boot', modulesRoot = '/lib/modules'): Promise<KernelChoice> {
  let image = config.path;
  let version = config.version;
  if (!image) {
    if (!version) {
      const names = await readdir(bootDir).catch(() => [] as string[]);
      version = newestKernel(names);
      if (!version) {
        throw new ImagepeError('NOT_FOUND', `no kernel (vmlinuz-*) in ${bootDir}`, {
          hint: 'Install linux-image-amd64 (scripts/setup does), or set kernel.path in imagepe.yaml.',
        });
      }
    }
    image = join(bootDir, `vmlinuz-${version}`);
  } else if (!version) {
    const b = basename(image);
    if (!b.startsWith('vmlinuz-')) {
      throw new ImagepeError('INVALID_INPUT', `kernel.path ${image} does not name its version`, { hint: 'Set kernel.version too, e.g. 6.1.0-56-amd64.' });
    }
    version = b.slice('vmlinuz-'.length);
  }
  const modulesDir = join(modulesRoot, version);
  for (const [p, what] of [
    [image, 'kernel image'],
    [join(modulesDir, 'modules.dep'), 'module index'],
  ] as const) {
    if (!(await stat(p).catch(() => undefined))) {
      throw new ImagepeError('NOT_FOUND', `${what} ${p} does not exist`, {
        hint: `Install the kernel package for ${version} with its modules, or choose another kernel in imagepe.yaml.`,
      });
    }
  }
  return { image, version, modulesDir };
}
