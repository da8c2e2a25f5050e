import { createHash, randomBytes } from 'node:crypto';
import { appendFile, chmod, copyFile, constants, mkdir, readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  fileSignatureBytes,
  findSignedChain,
  findTool,
  ignoreEvents,
  ImagepeError,
  removeQuietly,
  run,
  SHIM_SECOND_STAGE,
  signedChainInstallHint,
  SIGNED_GRUB_PREFIX,
  type EventSink,
  type SignedChainPart,
} from '../core/index.js';
import {
  earlyGrubConfig,
  makeEspImage,
  makeGrubImage,
  renderGrubMenu,
  renderGrubNetConfig,
  renderIpxeScript,
  writeIso,
  type BootEntry,
  type EspFile,
  type MenuOptions,
} from '../iso/index.js';
import { bundleAgent } from './agent-bundle.js';
import type { BuildConfig } from './config.js';
import { writeCpio, type FileTree } from './cpio.js';
import { stripToLoadedBytes } from './elf.js';
import { AGENT_CODE_CACHE_PATH, AGENT_LOADER_PATH, AGENT_NODE_FLAGS, AGENT_PATH, PAYLOAD_PATH, composeInitramfs, splitPayload, type InitramfsManifest } from './initramfs.js';
import { resolveKernel, type KernelChoice } from './kernel.js';
import { defaultCacheDir, templatePath } from './paths.js';

// zstd's multi-threaded frames do not depend on the thread count, so -T2 stays reproducible.
/** Bumped whenever the builder changes what it makes from the same inputs. */
export const BUILDER_FORMAT = 1;

export interface BuildOptions {
  config: BuildConfig;
  /** Where imagepe.iso and pxe/ are written. */
  outputDir: string;
  cacheDir?: string;
  /** false: build even when the cache holds a build of the same inputs. */
  useCache?: boolean;
  /** Overrides SOURCE_DATE_EPOCH and the config. */
  sourceDateEpoch?: number;
  events?: EventSink;
  signal?: AbortSignal;
}

export interface PxeBundle {
  dir: string;
  kernel: string;
  initrd: string;
  ipxeScript: string;
  grubConfig: string;
  /**
   * The Secure Boot chain for UEFI network boot, when the build has one: the DHCP boot file is
   * `shim` (bootx64.efi), which loads `grub` (grubx64.efi, Debian's signed network GRUB) from the
   * same TFTP folder, which reads `grubConfig` (grub/grub.cfg) from the TFTP root: the bundle's
   * folder must be the TFTP root.
   */
  secureBoot?: { shim: string; grub: string; grubConfig: string };
}

export interface BuildResult {
  iso: string;
  pxe: PxeBundle;
  kernel: KernelChoice;
  volumeId: string;
  cacheKey: string;
  /** True when the outputs came from the cache. */
  cached: boolean;
  sourceDateEpoch: number;
  /** The PXE initrd (core and payload together). */
  initrdBytes: number;
  /** What GRUB loads from the ISO: the whole initramfs, or only the core with a squashfs payload. */
  coreInitrdBytes: number;
  /** The squashfs payload, 0 without one. */
  payloadBytes: number;
  isoBytes: number;
  durationMs: number;
  warnings: string[];
}

const PXE_FILES = ['vmlinuz', 'initrd.img', 'boot.ipxe', 'grub.cfg'] as const;
/** The signed network chain's files in the PXE bundle: shim, the name shim loads next, MokManager, the signed GRUB's config. */
const PXE_SIGNED = { shim: 'bootx64.efi', grub: SHIM_SECOND_STAGE, mokManager: 'mmx64.efi', grubConfig: `${SIGNED_GRUB_PREFIX.grubNet.slice(1)}/grub.cfg` } as const;
/** Parts of the signed chain a build needs; MokManager is taken when present. */
const SIGNED_PARTS_NEEDED: readonly SignedChainPart[] = ['shim', 'grubCd', 'grubNet', 'grubDisk'];

/** Text of /.disk/info, the file the signed CD GRUB searches for when its own prefix is not on the ESP. */
function diskInfo(volumeId: string): string {
  return `imagepe PE ${volumeId}\n`;
}

/**
 * The signed chain on this machine for a build that asks for it: every part's path, or NOT_FOUND
 * naming the packages. A kernel without a signature only warns: it still boots with Secure Boot off.
 */
export async function signedChainForBuild(kernelImage: string, root = '/'): Promise<{ files: Partial<Record<SignedChainPart, string>>; warnings: string[] }> {
  const { found, missing } = await findSignedChain(root, [...SIGNED_PARTS_NEEDED, 'mokManager']);
  const needed = missing.filter((m) => SIGNED_PARTS_NEEDED.includes(m));
  if (needed.length > 0) {
    throw new ImagepeError('NOT_FOUND', `the signed boot chain for Secure Boot is not installed on this machine (missing: ${needed.join(', ')})`, {
      hint: `${signedChainInstallHint(needed)} (scripts/setup does), or set secureBoot: false in imagepe.yaml for a PE that boots only with Secure Boot off.`,
    });
  }
  const warnings: string[] = [];
  if (missing.includes('mokManager')) warnings.push(`MokManager is not installed (${signedChainInstallHint(['mokManager'])}): a refused signature cannot be enrolled from the PE's boot`);
  const signature = await fileSignatureBytes(kernelImage).catch(() => 0);
  if (signature === 0) warnings.push(`the kernel ${kernelImage} carries no signature: with Secure Boot on, the signed GRUB refuses to start it`);
  return { files: found, warnings };
}
const SIZES_FILE = 'sizes.json';

/** The kernel command line of a menu entry. */
export function kernelArgs(config: BuildConfig, mode: string, entryArgs: readonly string[], volumeId: string | null): string[] {
  const consoles = [config.console.screen ? 'console=tty0' : undefined, config.console.serial ? `console=${config.console.serial},${config.console.speed}n8` : undefined];
  return [
    ...consoles.filter((c): c is string => c !== undefined),
    `imagepe.mode=${mode}`,
    ...(volumeId ? [`imagepe.medium=${volumeId}`] : []),
    ...config.kernelArgs,
    ...entryArgs,
  ];
}

export function bootEntries(config: BuildConfig, volumeId: string | null): BootEntry[] {
  return config.menu.entries.map((e) => ({ id: e.id, title: e.title, args: kernelArgs(config, e.mode, e.args, volumeId) }));
}

/**
 * Seconds the boot menu counts down. None when the boot needs no choice: a plan is embedded or
 * named on every entry's command line, so the PE deploys unattended (Shift held while GRUB
 * starts still brings the menu). `menu.countdown: always` keeps the configured countdown.
 */
export function menuTimeout(config: BuildConfig): number {
  if (config.menu.countdown === 'always') return config.menu.timeoutSeconds;
  const planNamed = (args: readonly string[]) => args.some((a) => a.startsWith('imagepe.plan='));
  const chosen = config.menu.entries.find((e) => e.id === config.menu.default);
  const unattended = config.plan !== undefined || planNamed(config.kernelArgs) || (chosen !== undefined && chosen.mode !== 'shell' && planNamed(chosen.args));
  return unattended ? 0 : config.menu.timeoutSeconds;
}

/** The ISO volume id: the configured name and part of the cache key, so each build is told apart. */
export function volumeIdFor(config: BuildConfig, cacheKey: string): string {
  return `${config.volumeId.slice(0, 23)}_${cacheKey.slice(0, 8).toUpperCase()}`;
}

/** SOURCE_DATE_EPOCH, else the config, else the kernel image's mtime: always from the inputs. */
export async function chooseSourceDateEpoch(config: BuildConfig, kernel: KernelChoice, override?: number, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (override !== undefined) return override;
  const fromEnv = env.SOURCE_DATE_EPOCH;
  if (fromEnv && /^\d+$/.test(fromEnv)) return Number(fromEnv);
  if (config.sourceDateEpoch !== undefined) return config.sourceDateEpoch;
  return Math.floor((await stat(kernel.image)).mtimeMs / 1000);
}

/**
 * A hash of the builder's and ISO writer's own code, so a changed builder never serves an
 * output that the old code made.
 */
async function builderCodeHash(): Promise<string> {
  const h = createHash('sha256');
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [here, join(here, '..', 'iso')]) {
    for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
      if (!/\.(ts|js)$/.test(name) || /\.test\.(ts|js)$/.test(name)) continue;
      h.update(name).update(await readFile(join(dir, name)));
    }
  }
  return h.digest('hex');
}

async function statKey(path: string): Promise<string> {
  const s = await stat(path);
  return `${path}\0${s.size}\0${Math.floor(s.mtimeMs)}\0${s.ino}`;
}

/**
 * The cache key: host files by path, size, mtime and inode (package upgrades change them;
 * reading 300 MB on every build would not fit the 3 s budget), generated content by its hash.
 */
export async function cacheKeyFor(manifest: InitramfsManifest, config: BuildConfig, epoch: number, extraFiles: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  const add = (s: string) => h.update(s).update('\n');
  add(`format ${BUILDER_FORMAT} ${await builderCodeHash()}`);
  add(JSON.stringify(config));
  add(`epoch ${epoch}`);
  add(await statKey(manifest.kernel.image));
  for (const m of manifest.modules) add(await statKey(join(manifest.kernel.modulesDir, m)));
  for (const path of [...manifest.tree.keys()].sort()) {
    const e = manifest.tree.get(path)!;
    switch (e.kind) {
      case 'file':
        add(`${path} file ${e.mode} ${await statKey(e.source)}`);
        break;
      case 'data':
        add(`${path} data ${e.mode} ${createHash('sha256').update(e.data).digest('hex')}`);
        break;
      case 'symlink':
        add(`${path} -> ${e.target}`);
        break;
      case 'dir':
        add(`${path} dir ${e.mode ?? 0o755}`);
        break;
      case 'char':
        add(`${path} char ${e.major}:${e.minor} ${e.mode}`);
        break;
    }
  }
  for (const f of extraFiles) add(f.startsWith('/') ? await statKey(f) : f);
  return h.digest('hex');
}

/** Cached builds kept; each is the size of the ISO and the PXE bundle (about 150 MB). */
export const KEEP_CACHED_BUILDS = 3;
/** Entries used this recently are never pruned: another build running now may be copying from one. */
export const CACHE_IN_USE_MS = 30 * 60_000;

/**
 * Keeps the `keep` most recently used builds (an entry's mtime is refreshed each time a build
 * uses it) and every entry used within `inUseMs`, so concurrent builds (the tests start several
 * at once) never lose the entry they are about to copy from.
 */
export async function pruneCache(buildsDir: string, keep: number, o: { now?: number; inUseMs?: number } = {}): Promise<string[]> {
  const now = o.now ?? Date.now();
  const inUse = o.inUseMs ?? CACHE_IN_USE_MS;
  const entries = (
    await Promise.all(
      (await readdir(buildsDir)).map(async (name) => {
        // Another build may have removed it since readdir.
        const s = await stat(join(buildsDir, name)).catch(() => undefined);
        return s ? { name, mtime: s.mtimeMs } : undefined;
      }),
    )
  ).filter((e): e is { name: string; mtime: number } => e !== undefined);
  entries.sort((a, b) => b.mtime - a.mtime);
  const removed: string[] = [];
  for (const e of entries.slice(keep)) {
    if (now - e.mtime < inUse) continue;
    await removeQuietly(join(buildsDir, e.name));
    removed.push(e.name);
  }
  return removed;
}

/**
 * Moves a finished build into the cache under its key. A build of the same key that finished
 * first made the same bytes (the key covers every input), so its entry is kept: removing it
 * would pull the ISO from under that build while it copies it out. Only an entry without its
 * result.json (damaged by hand) is replaced.
 */
async function publishEntry(out: string, entry: string): Promise<void> {
  try {
    await rename(out, entry);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    if ((await stat(join(entry, 'result.json')).catch(() => undefined)) !== undefined) return;
    await removeQuietly(entry);
    await rename(out, entry);
  }
}

/**
 * Copies a cached output to its place under a temporary name, then renames it over the old one:
 * another process (a second jest worker) may be booting a VM from the file being replaced, and a
 * copy over it would truncate the ISO under that VM.
 */
async function copyOut(from: string, to: string): Promise<void> {
  const temp = `${to}.${process.pid}.tmp`;
  try {
    await copyFile(from, temp, constants.COPYFILE_FICLONE);
    await rename(temp, to);
  } finally {
    await removeQuietly(temp);
  }
}

async function addDirectory(tree: FileTree, hostDir: string, peDir: string): Promise<void> {
  for (const name of (await readdir(hostDir)).sort()) {
    const p = join(hostDir, name);
    const s = await stat(p);
    if (s.isDirectory()) await addDirectory(tree, p, `${peDir}/${name}`);
    else tree.set(`${peDir}/${name}`, { kind: 'file', source: p, size: s.size, mode: 0o644 });
  }
}

/** Copies the module closure to a staging tree and lets depmod index exactly those modules. */
async function stageModules(manifest: InitramfsManifest, work: string, tree: FileTree, signal?: AbortSignal): Promise<void> {
  const { version, modulesDir } = manifest.kernel;
  const root = join(work, 'modroot');
  const dir = join(root, 'lib', 'modules', version);
  for (const m of manifest.modules) {
    await mkdir(join(dir, m, '..'), { recursive: true });
    await copyFile(join(modulesDir, m), join(dir, m));
  }
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
    await copyFile(join(modulesDir, f), join(dir, f)).catch(() => undefined);
  }
  await run('depmod', ['-b', root, version], { what: 'indexing the PE kernel modules', timeoutMs: 60_000, signal });
  await addDirectory(tree, dir, `usr/lib/modules/${version}`);
}

/**
 * `imagepe build`: the PE initramfs, the hybrid ISO and the PXE bundle. A build whose inputs
 * all match a cached one copies the cached outputs instead.
 */
export async function buildPe(options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const events = options.events ?? ignoreEvents;
  const { config, signal } = options;
  const step = (s: string, status: 'started' | 'done' | 'skipped', detail?: string) =>
    events({ type: 'step', operation: 'build', step: s, status, ...(detail ? { detail } : {}) });

  step('manifest', 'started');
  const kernel = await resolveKernel(config.kernel);
  const signed = config.secureBoot ? await signedChainForBuild(kernel.image) : undefined;
  const agentBundle = await bundleAgent();
  const epoch = await chooseSourceDateEpoch(config, kernel, options.sourceDateEpoch);
  const carried = signed ? [signed.files.shim, signed.files.mokManager, signed.files.grubDisk].filter((f): f is string => f !== undefined) : [];
  const manifest = await composeInitramfs({ config, kernel, agentBundle, signedChain: carried, buildInfo: { builderFormat: BUILDER_FORMAT, kernel: kernel.version, sourceDateEpoch: epoch } });
  manifest.warnings.push(...(signed?.warnings ?? []));
  for (const w of manifest.warnings) events({ type: 'message', operation: 'build', level: 'warning', text: w });
  const grubTemplates = { grubCfg: await readFile(templatePath('grub.cfg'), 'utf8'), menuEntry: await readFile(templatePath('menuentry.cfg'), 'utf8') };
  const ipxeTemplate = await readFile(templatePath('boot.ipxe'), 'utf8');
  const tools = ['xorriso', 'grub-mkimage', 'mformat', 'zstd', 'depmod', 'mksquashfs'].map((t) => findTool(t) ?? t);
  const key = await cacheKeyFor(manifest, config, epoch, [...tools, grubTemplates.grubCfg, grubTemplates.menuEntry, ipxeTemplate, '/usr/lib/grub/i386-pc/boot_hybrid.img', ...Object.values(signed?.files ?? {}).sort()]);
  step('manifest', 'done', key.slice(0, 12));

  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const entry = join(cacheDir, 'builds', key);
  const volumeId = volumeIdFor(config, key);
  const haveCached = options.useCache !== false && (await stat(join(entry, 'result.json')).catch(() => undefined)) !== undefined;

  if (!haveCached) {
    const work = join(cacheDir, `tmp-${randomBytes(4).toString('hex')}`);
    await mkdir(work, { recursive: true });
    try {
      await buildInto(work, { config, manifest, epoch, volumeId, grubTemplates, ipxeTemplate, signed: signed?.files, signal, step });
      await writeFile(join(work, 'out', 'result.json'), JSON.stringify({ key, volumeId, kernel: kernel.version, epoch }));
      await mkdir(join(cacheDir, 'builds'), { recursive: true });
      await publishEntry(join(work, 'out'), entry);
    } finally {
      await removeQuietly(work);
    }
  } else step('build', 'skipped', 'cached');
  // Marks the entry as just used, so a concurrent build's prune spares it.
  const now = new Date();
  await utimes(entry, now, now);

  await mkdir(join(options.outputDir, 'pxe'), { recursive: true });
  const iso = join(options.outputDir, 'imagepe.iso');
  const pxeDir = join(options.outputDir, 'pxe');
  await copyOut(join(entry, 'imagepe.iso'), iso);
  for (const f of PXE_FILES) await copyOut(join(entry, f), join(pxeDir, f));
  for (const f of Object.values(PXE_SIGNED)) {
    // A bundle built without the signed chain must not keep an earlier build's; a build without
    // MokManager has none to copy.
    if (signed && (f !== PXE_SIGNED.mokManager || signed.files.mokManager)) {
      await mkdir(dirname(join(pxeDir, f)), { recursive: true });
      await copyOut(join(entry, f), join(pxeDir, f));
    } else await removeQuietly(join(pxeDir, f));
  }
  if (!haveCached) await pruneCache(join(cacheDir, 'builds'), KEEP_CACHED_BUILDS);
  return {
    iso,
    pxe: {
      dir: pxeDir,
      kernel: join(pxeDir, 'vmlinuz'),
      initrd: join(pxeDir, 'initrd.img'),
      ipxeScript: join(pxeDir, 'boot.ipxe'),
      grubConfig: join(pxeDir, 'grub.cfg'),
      ...(signed ? { secureBoot: { shim: join(pxeDir, PXE_SIGNED.shim), grub: join(pxeDir, PXE_SIGNED.grub), grubConfig: join(pxeDir, PXE_SIGNED.grubConfig) } } : {}),
    },
    kernel,
    volumeId,
    cacheKey: key,
    cached: haveCached,
    sourceDateEpoch: epoch,
    ...(JSON.parse(await readFile(join(entry, SIZES_FILE), 'utf8')) as { initrdBytes: number; coreInitrdBytes: number; payloadBytes: number }),
    isoBytes: (await stat(iso)).size,
    durationMs: Date.now() - started,
    warnings: manifest.warnings,
  };
}

async function writeCompressedCpio(tree: FileTree, work: string, output: string, epoch: number, level: number, signal?: AbortSignal): Promise<void> {
  const cpio = join(work, 'initrd.cpio');
  await writeCpio(tree, cpio, epoch);
  await run('zstd', [`-${level}`, '-T2', '-q', '-f', '--no-progress', '-o', output, cpio], { what: 'compressing the initramfs', timeoutMs: 300_000, signal });
  await removeQuietly(cpio);
}

/**
 * The payload as squashfs (zstd): one owner, one timestamp, files in mksquashfs's sorted
 * order, so it is reproducible. Node.js goes in without its section table and debug info.
 */
async function makeSquashfs(payload: FileTree, strip: ReadonlySet<string>, stage: string, output: string, epoch: number, signal?: AbortSignal): Promise<void> {
  for (const [path, entry] of payload) {
    if (entry.kind !== 'file') continue;
    const target = join(stage, path);
    await mkdir(dirname(target), { recursive: true });
    const stripped = strip.has(path) ? stripToLoadedBytes(await readFile(entry.source)) : undefined;
    if (stripped) await writeFile(target, stripped);
    else await copyFile(entry.source, target, constants.COPYFILE_FICLONE);
    await chmod(target, entry.mode);
  }
  const e = String(epoch);
  await run(
    'mksquashfs',
    [stage, output, '-noappend', '-comp', 'zstd', '-Xcompression-level', '9', '-b', '1M', '-all-root', '-no-xattrs', '-mkfs-time', e, '-all-time', e, '-processors', '2', '-no-progress', '-quiet'],
    { what: 'building the payload image', timeoutMs: 300_000, signal },
  );
  await removeQuietly(stage);
}

/**
 * The V8 code cache of the agent, made by the Node.js binary the PE carries running the PE's own
 * loader with the PE's flags: it loads the agent's top level (the agent itself held back) and
 * writes what V8 compiled. The key of the build covers the bundle and that binary, so the cache
 * is not part of it. Throws COMMAND_FAILED with node's stderr when the agent cannot load.
 */
async function makeAgentCodeCache(manifest: InitramfsManifest, dir: string, signal?: AbortSignal): Promise<Buffer> {
  await mkdir(dir, { recursive: true });
  for (const path of [AGENT_PATH, AGENT_LOADER_PATH]) {
    const entry = manifest.tree.get(path);
    if (entry?.kind !== 'data') throw new Error(`${path} is not in the PE`);
    await writeFile(join(dir, path.split('/').pop()!), entry.data);
  }
  const out = join(dir, 'agent.cache');
  await run(manifest.node, [...AGENT_NODE_FLAGS, join(dir, 'agent-loader.cjs')], {
    what: "making the agent's code cache",
    env: { IMAGEPE_MAKE_CODE_CACHE: out },
    timeoutMs: 60_000,
    ...(signal ? { signal } : {}),
  });
  const cache = await readFile(out);
  await removeQuietly(dir);
  return cache;
}

interface BuildIntoArgs {
  config: BuildConfig;
  manifest: InitramfsManifest;
  epoch: number;
  volumeId: string;
  grubTemplates: { grubCfg: string; menuEntry: string };
  ipxeTemplate: string;
  /** The signed chain's files, or undefined for the unsigned GRUB. */
  signed: Partial<Record<SignedChainPart, string>> | undefined;
  signal: AbortSignal | undefined;
  step: (s: string, status: 'started' | 'done' | 'skipped', detail?: string) => void;
}

async function buildInto(work: string, a: BuildIntoArgs): Promise<void> {
  const { config, manifest, epoch, volumeId, signal, step } = a;
  const out = join(work, 'out');
  const isoTree = join(work, 'iso');
  await mkdir(out, { recursive: true });
  await mkdir(join(isoTree, 'boot', 'grub'), { recursive: true });

  step('initramfs', 'started');
  const tree: FileTree = new Map(manifest.tree);
  const codeCache = await makeAgentCodeCache(manifest, join(work, 'agent-cache'), signal);
  tree.set(AGENT_CODE_CACHE_PATH, { kind: 'data', data: codeCache, mode: 0o644 });
  await stageModules(manifest, work, tree, signal);
  let core = tree;
  let payloadImage: string | undefined;
  if (config.payload === 'squashfs') {
    const split = splitPayload(tree, manifest.earlyModules);
    core = split.core;
    payloadImage = join(work, 'pe.sqfs');
    await makeSquashfs(split.payload, new Set(manifest.strip), join(work, 'payload'), payloadImage, epoch, signal);
  }
  const coreInitrd = join(work, 'initrd-core.img');
  await writeCompressedCpio(core, work, coreInitrd, epoch, config.compressionLevel, signal);
  await copyFile(manifest.kernel.image, join(out, 'vmlinuz'));
  if (payloadImage) {
    // PXE has no medium to read the payload from: it rides along as a second, uncompressed
    // archive that the kernel unpacks after the first (zero padding between them is skipped).
    const pxeInitrd = join(out, 'initrd.img');
    await copyFile(coreInitrd, pxeInitrd);
    const size = (await stat(pxeInitrd)).size;
    await appendFile(pxeInitrd, Buffer.alloc((4 - (size % 4)) % 4));
    const second = join(work, 'payload.cpio');
    await writeCpio(new Map([[PAYLOAD_PATH, { kind: 'file', source: payloadImage, size: (await stat(payloadImage)).size, mode: 0o644 }]]), second, epoch);
    await appendFile(pxeInitrd, await readFile(second));
    await removeQuietly(second);
  } else await copyFile(coreInitrd, join(out, 'initrd.img'));
  await writeFile(
    join(out, SIZES_FILE),
    JSON.stringify({
      initrdBytes: (await stat(join(out, 'initrd.img'))).size,
      coreInitrdBytes: (await stat(coreInitrd)).size,
      payloadBytes: payloadImage ? (await stat(payloadImage)).size : 0,
    }),
  );
  step('initramfs', 'done', `${tree.size} entries`);

  step('iso', 'started');
  const marker = `imagepe-${volumeId.toLowerCase()}`;
  const serialUnit = config.console.serial ? Number(config.console.serial.slice(4)) : undefined;
  const menu: MenuOptions = {
    entries: bootEntries(config, volumeId),
    defaultId: config.menu.default,
    timeoutSeconds: menuTimeout(config),
    serial: serialUnit === undefined ? null : { unit: serialUnit, speed: config.console.speed },
    marker,
  };
  await writeFile(join(isoTree, 'boot', 'grub', 'grub.cfg'), renderGrubMenu(menu, a.grubTemplates));
  await writeFile(join(isoTree, marker), `${volumeId}\n`);
  await copyFile(join(out, 'vmlinuz'), join(isoTree, 'boot', 'vmlinuz'));
  await copyFile(coreInitrd, join(isoTree, 'boot', 'initrd.img'));
  if (payloadImage) {
    await mkdir(join(isoTree, dirname(PAYLOAD_PATH)), { recursive: true });
    await copyFile(payloadImage, join(isoTree, PAYLOAD_PATH));
  }
  const early = join(work, 'early.cfg');
  await writeFile(early, earlyGrubConfig(marker));
  await makeGrubImage({ format: 'i386-pc-eltorito', output: join(isoTree, 'boot', 'grub', 'bios.img'), configFile: early, signal });
  const esp = join(work, 'esp.img');
  let espFiles: EspFile[];
  if (a.signed) {
    // shim is the removable path and starts grubx64.efi beside it; the signed CD GRUB reads
    // /boot/grub/grub.cfg on the device it came from (this ESP, which sends it on to the ISO by
    // the marker) and otherwise searches for /.disk/info.
    espFiles = [
      { target: 'EFI/BOOT/BOOTX64.EFI', source: a.signed.shim! },
      { target: `EFI/BOOT/${SHIM_SECOND_STAGE}`, source: a.signed.grubCd! },
      ...(a.signed.mokManager ? [{ target: 'EFI/BOOT/mmx64.efi', source: a.signed.mokManager }] : []),
      { target: `${SIGNED_GRUB_PREFIX.grubCd.slice(1)}/grub.cfg`, data: earlyGrubConfig(marker) },
    ];
    await mkdir(join(isoTree, '.disk'), { recursive: true });
    await writeFile(join(isoTree, '.disk', 'info'), diskInfo(volumeId));
  } else {
    const bootx64 = join(work, 'BOOTX64.EFI');
    await makeGrubImage({ format: 'x86_64-efi', output: bootx64, configFile: early, signal });
    espFiles = [{ target: 'EFI/BOOT/BOOTX64.EFI', source: bootx64 }];
  }
  await makeEspImage({ output: esp, files: espFiles, sourceDateEpoch: epoch, signal });
  await writeIso({
    tree: isoTree,
    output: join(out, 'imagepe.iso'),
    volumeId,
    biosImage: 'boot/grub/bios.img',
    espImage: esp,
    hybridMbr: '/usr/lib/grub/i386-pc/boot_hybrid.img',
    sourceDateEpoch: epoch,
    signal,
  });
  step('iso', 'done');

  const pxeMenu = { ...menu, entries: bootEntries(config, null) };
  await writeFile(join(out, 'boot.ipxe'), renderIpxeScript(pxeMenu, a.ipxeTemplate));
  await writeFile(join(out, 'grub.cfg'), renderGrubNetConfig(pxeMenu, 'config-folder'));
  if (a.signed) {
    await copyFile(a.signed.shim!, join(out, PXE_SIGNED.shim));
    await copyFile(a.signed.grubNet!, join(out, PXE_SIGNED.grub));
    if (a.signed.mokManager) await copyFile(a.signed.mokManager, join(out, PXE_SIGNED.mokManager));
    await mkdir(join(out, dirname(PXE_SIGNED.grubConfig)), { recursive: true });
    await writeFile(join(out, PXE_SIGNED.grubConfig), renderGrubNetConfig(pxeMenu, 'prefix-parent'));
  }
}
