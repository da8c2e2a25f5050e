import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findTool, TOOLS } from '../../core/index.js';

// Every program the agent starts goes through core/run.ts, which finds it on PATH at each call.
// Putting a directory of pass-through wrappers first on PATH therefore shows the exact argv of
// every command a deploy runs, however short-lived (a failing mount takes 5 ms, too quick to
// catch by sampling ps). Each wrapper writes its arguments to a file of its own and execs the
// real program with them unchanged, so the tools behave exactly as without it.

/** Programs the agent runs that are not in the TOOLS table. */
const EXTRA = ['mdir', 'mtype', 'mkfs.fat', 'tune2fs', 'e2label', 'udevadm', 'grub-probe'];

export interface ArgvRecorder {
  /** The argv of every wrapped program started since the recorder was made (or cleared), program name first; in no particular order. */
  calls(): Promise<string[][]>;
  /** Runs fn with the wrappers first on PATH, and puts PATH back afterwards. */
  around<T>(fn: () => Promise<T>): Promise<T>;
  clear(): Promise<void>;
  remove(): Promise<void>;
}

export async function argvRecorder(dir: string): Promise<ArgvRecorder> {
  const bin = join(dir, 'bin');
  const log = join(dir, 'calls');
  await mkdir(bin, { recursive: true });
  await mkdir(log, { recursive: true });
  const mktemp = findTool('mktemp');
  if (!mktemp) throw new Error('mktemp is not installed');
  for (const name of [...new Set([...TOOLS.map((t) => t.name), ...EXTRA])]) {
    const real = findTool(name);
    if (!real) continue;
    for (const p of [real, log, mktemp]) if (/['\\\n]/.test(p)) throw new Error(`cannot quote ${p} in a wrapper`);
    // printf '%s\0' keeps every argument exactly, spaces and newlines included.
    await writeFile(join(bin, name), `#!/bin/sh\nf=$('${mktemp}' '${log}/call.XXXXXXXXXX') && printf '%s\\0' '${name}' "$@" > "$f"\nexec '${real}' "$@"\n`);
    await chmod(join(bin, name), 0o755);
  }
  return {
    async calls() {
      const out: string[][] = [];
      for (const f of (await readdir(log)).sort()) {
        const text = await readFile(join(log, f), 'utf8');
        out.push(text.split('\0').slice(0, -1));
      }
      return out;
    },
    async around(fn) {
      const before = process.env.PATH;
      process.env.PATH = `${bin}:${before ?? ''}`;
      try {
        return await fn();
      } finally {
        if (before === undefined) delete process.env.PATH;
        else process.env.PATH = before;
      }
    },
    async clear() {
      await rm(log, { recursive: true, force: true });
      await mkdir(log, { recursive: true });
    },
    async remove() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
