import { ImagepeError } from '../core/index.js';
import type { Compression } from '../imaging/index.js';

/**
 * The parts of the bench, in the order they run. boot, deploy, network and debian boot QEMU; apply
 * (which also gives the memory figures), wim, reliability and burn (a 1 GiB image to a loop device
 * against dd and dd + cmp) do not, so `--only wim,apply,reliability,burn` is the run without
 * QEMU. network (PXE boots, a fleet deploying at once, a big streamed image) takes about half an
 * hour and debian (a real Debian 12 captured, deployed and booted through the PE) about twenty
 * minutes under software emulation, so --quick leaves them out unless --only names them.
 */
export const SECTIONS = ['wim', 'build', 'boot', 'deploy', 'network', 'apply', 'reliability', 'burn', 'raw', 'debian'] as const;
export const SLOW_SECTIONS: readonly Section[] = ['network', 'debian'];
export type Section = (typeof SECTIONS)[number];

// The memory figures come from the apply runs; the name is accepted so nobody has to know that.
const ALIASES: Record<string, Section> = { memory: 'apply' };
const COMPRESSIONS: readonly Compression[] = ['none', 'xpress', 'lzx', 'lzms'];

export interface BenchArgs {
  quick: boolean;
  /** Samples per figure; the median is reported. */
  runs: number;
  sizeMiB: number;
  compression: Compression;
  /** The sections asked for, in run order. */
  only: Section[];
}

export function parseArgs(argv: readonly string[]): BenchArgs {
  const quick = argv.includes('--quick');
  const value = (name: string) => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw invalid(`${name} needs a value`);
    return v;
  };
  const known = new Set(['--quick', '--runs', '--size-mib', '--compression', '--only']);
  for (const [i, a] of argv.entries()) {
    if (a.startsWith('--') && !known.has(a)) throw invalid(`unknown option ${a}`);
    if (!a.startsWith('--') && !['--runs', '--size-mib', '--compression', '--only'].includes(argv[i - 1] ?? '')) throw invalid(`unexpected argument ${a}`);
  }
  const runs = Number(value('--runs') ?? (quick ? 1 : 3));
  if (!Number.isInteger(runs) || runs < 1) throw invalid('--runs takes a whole number of at least 1');
  const sizeMiB = Number(value('--size-mib') ?? (quick ? 200 : 600));
  if (!Number.isFinite(sizeMiB) || sizeMiB <= 0) throw invalid('--size-mib takes a positive number');
  const compression = (value('--compression') ?? 'xpress') as Compression;
  if (!COMPRESSIONS.includes(compression)) throw invalid(`--compression takes one of ${COMPRESSIONS.join(', ')}`);
  const onlyText = value('--only');
  let only: Section[] = SECTIONS.filter((s) => !quick || !SLOW_SECTIONS.includes(s));
  if (onlyText !== undefined) {
    const asked = new Set<Section>();
    for (const name of onlyText.split(',').map((s) => s.trim()).filter(Boolean)) {
      const section = ALIASES[name] ?? (SECTIONS as readonly string[]).find((s) => s === name);
      if (!section) throw invalid(`--only takes a comma-separated list of ${[...SECTIONS, ...Object.keys(ALIASES)].join(', ')}; not ${name}`);
      asked.add(section as Section);
    }
    if (!asked.size) throw invalid('--only needs at least one section');
    only = SECTIONS.filter((s) => asked.has(s));
  }
  return { quick, runs, sizeMiB, compression, only };
}

function invalid(message: string): ImagepeError {
  return new ImagepeError('INVALID_INPUT', `bench: ${message}`, { hint: `npm run bench -- [--quick] [--runs N] [--size-mib N] [--compression none|xpress|lzx|lzms] [--only ${SECTIONS.join(',')}]` });
}
