import { realpath, stat } from 'node:fs/promises';
import { dirname, posix } from 'node:path';
import { ImagepeError } from '../core/index.js';
import { fileIsElf, readElfFile, type ElfDynamicInfo } from './elf.js';

/** Where glibc's loader looks when a binary carries no RUNPATH, in its order on Debian amd64. */
export const DEFAULT_LIBRARY_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'];

/** The host operations the closure needs, so tests can give it a made-up filesystem. */
export interface ClosureHost {
  exists(path: string): Promise<boolean>;
  isElf(path: string): Promise<boolean>;
  readElf(path: string): Promise<ElfDynamicInfo>;
}

export const realHost: ClosureHost = {
  exists: async (p) => stat(p).then((s) => s.isFile(), () => false),
  isElf: (p) => fileIsElf(p),
  readElf: (p) => readElfFile(p),
};

export interface LibraryClosure {
  /** Every ELF file to copy (the roots, their interpreters and libraries), by the path the loader opens. */
  files: string[];
  /** Sonames that no directory held; a non-empty list means a binary cannot start. */
  unresolved: { soname: string; neededBy: string }[];
}

/** Expands $ORIGIN in a RUNPATH entry the way ld.so does. */
export function expandOrigin(entry: string, binary: string): string {
  return entry.replace(/\$(ORIGIN|\{ORIGIN\})/g, dirname(binary));
}

/**
 * The shared-library closure of some binaries, read from their DT_NEEDED entries and
 * interpreters (never by running ldd, which executes the binary's loader). Non-ELF roots
 * (scripts) are kept as they are.
 */
export async function libraryClosure(roots: readonly string[], host: ClosureHost = realHost, libraryDirs = DEFAULT_LIBRARY_DIRS): Promise<LibraryClosure> {
  const files = new Set<string>();
  const unresolved: { soname: string; neededBy: string }[] = [];
  const queue = [...roots];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (files.has(file)) continue;
    files.add(file);
    if (!(await host.isElf(file))) continue;
    const info = await host.readElf(file);
    if (info.interpreter && !files.has(info.interpreter)) queue.push(info.interpreter);
    const dirs = [...info.runpath.map((r) => expandOrigin(r, file)), ...libraryDirs];
    for (const soname of info.needed) {
      const found = await findLibrary(soname, dirs, host);
      if (found) {
        if (!files.has(found)) queue.push(found);
      } else unresolved.push({ soname, neededBy: file });
    }
  }
  return { files: [...files].sort(), unresolved };
}

async function findLibrary(soname: string, dirs: readonly string[], host: ClosureHost): Promise<string | undefined> {
  if (soname.includes('/')) return (await host.exists(soname)) ? soname : undefined;
  for (const dir of dirs) {
    const candidate = posix.join(dir, soname);
    if (await host.exists(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The path a host file takes inside the PE, which has a merged /usr like Debian 12:
 * /bin, /sbin, /lib and /lib64 are symlinks into /usr there.
 */
export function peLocation(hostPath: string): string {
  const p = posix.normalize(hostPath).replace(/^\/+/, '');
  for (const top of ['bin', 'sbin', 'lib', 'lib64']) {
    if (p === top || p.startsWith(`${top}/`)) return `usr/${p}`;
  }
  return p;
}

/** realpath, turned into an ImagepeError that says which tool was looked for. */
export async function resolveHostFile(path: string, what: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    throw new ImagepeError('NOT_FOUND', `${what} ${path} does not exist on this build host`, {
      hint: 'Install the package that ships it, or remove it from the build config.',
    });
  }
}

