import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { defaultCacheDir, projectRoot } from '../../builder/index.js';
import { CommandFailedError, findTool, ImagepeError, OVMF_4M, pathKind, run, stderrTailOf, ToolMissingError, withFileLock, type EventSink } from '../../core/index.js';

/**
 * The image the container runtime runs QEMU in, built on this machine and never pulled (no
 * registry is reachable): a Debian 12 minbase root made by debootstrap and `docker import`ed as
 * imagepe-qemu-base:<hash>, then qemu-tests/container/Dockerfile on top of it, which installs
 * Debian's QEMU, OVMF, Samba and busybox from Debian's mirror. The tag is a hash of the
 * Dockerfile and of the base's recipe, so a changed recipe builds a new image and an unchanged
 * one is never rebuilt.
 */
export const QEMU_IMAGE_REPOSITORY = 'imagepe-qemu';
export const QEMU_BASE_REPOSITORY = 'imagepe-qemu-base';
/** The label every VM container carries; leftovers are found by it. */
export const VM_CONTAINER_LABEL = 'imagepe.vm';
/** `<pid>:<start time in clock ticks>` of the process that started a VM container, so a reused pid is not mistaken for its owner. */
export const VM_OWNER_LABEL = 'imagepe.owner';

const BASE_RECIPE = { suite: 'bookworm', mirror: 'http://deb.debian.org/debian', variant: 'minbase', recipe: 1 } as const;
/** Where the image keeps the firmware: Debian's ovmf, as on a host; the Dockerfile checks that these files exist. */
export const IMAGE_OVMF = OVMF_4M;
const PINNED_PACKAGES = ['qemu-system-x86', 'qemu-utils', 'ovmf', 'samba', 'busybox-static'] as const;
const DOCKER_HINT = 'Install a Docker engine with: apt-get install docker.io (scripts/setup does), and start it: systemctl start docker where systemd runs, else dockerd >/var/log/dockerd.log 2>&1 & (in a checkout, scripts/dockerd-ensure starts one when none answers).';

export interface QemuImage {
  /** imagepe-qemu:<16 hex digits>. */
  tag: string;
  /** Debian package versions inside the image, by package name (qemu-system-x86, ovmf, samba, ...). */
  versions: Record<(typeof PINNED_PACKAGES)[number], string>;
  /** Host copies of the image's OVMF variable templates, which each UEFI VM copies for itself. */
  ovmfVars: { plain: string; secureBoot: string };
  /** "QEMU 1:7.2+dfsg-7+deb12u18, OVMF 2022.11-6+deb12u2, Samba 2:4.17.12+dfsg-0+deb12u4". */
  summary: string;
}

/** No Docker client on PATH, or no engine answering it. The hint says how to get one. */
export class DockerUnavailableError extends ImagepeError {
  constructor(message: string, cause?: unknown) {
    super(cause instanceof ToolMissingError ? 'TOOL_MISSING' : 'COMMAND_FAILED', message, { hint: DOCKER_HINT, cause });
  }
}

function dockerfilePath(): string {
  return join(projectRoot(), 'qemu-tests', 'container', 'Dockerfile');
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function baseTag(): string {
  return `${QEMU_BASE_REPOSITORY}:${hash(JSON.stringify(BASE_RECIPE))}`;
}

/** The tag of the image for the current Dockerfile and base recipe (whether or not it is built yet). */
export async function qemuImageTag(): Promise<string> {
  const dockerfile = await readFile(dockerfilePath(), 'utf8').catch((e: unknown) => {
    throw new ImagepeError('NOT_FOUND', `the QEMU image's Dockerfile ${dockerfilePath()} is missing`, { hint: 'Reinstall imagepe: its package ships qemu-tests/container/Dockerfile.', cause: e });
  });
  return `${QEMU_IMAGE_REPOSITORY}:${hash(`${dockerfile}\n${JSON.stringify(BASE_RECIPE)}`)}`;
}

/**
 * Throws DockerUnavailableError (TOOL_MISSING without a docker client, COMMAND_FAILED when the
 * engine does not answer within 15 s); resolves with the engine's version otherwise.
 */
export async function assertDocker(): Promise<string> {
  if (!findTool('docker')) throw new DockerUnavailableError('the docker command was not found on PATH', new ToolMissingError('docker', 'docker.io'));
  try {
    const r = await run('docker', ['version', '--format', '{{.Server.Version}}'], { what: 'asking the Docker engine for its version', timeoutMs: 15_000 });
    return r.stdout.trim();
  } catch (e) {
    const said = stderrTailOf(e).split('\n').at(-1) || (e as Error).message;
    throw new DockerUnavailableError(`no Docker engine answers: ${said}`, e);
  }
}

async function imageExists(tag: string): Promise<boolean> {
  try {
    await run('docker', ['image', 'inspect', '--format', '{{.Id}}', tag], { what: `looking for the image ${tag}`, timeoutMs: 30_000 });
    return true;
  } catch (e) {
    if (e instanceof CommandFailedError && /No such image/i.test(e.stderrTail)) return false;
    throw e;
  }
}

let pending: Promise<QemuImage> | undefined;

/**
 * The QEMU image, built when its tag does not exist yet (cold: debootstrap from Debian's mirror,
 * then apt-get in `docker build --network host`, about 75 s here; warm: one `docker image
 * inspect` and one short container reading the pinned versions, about 0.5 s), once per process.
 * Concurrent processes wait for one build under a lock file in the cache folder.
 *
 * Throws DockerUnavailableError when Docker is missing or not running, ToolMissingError when
 * debootstrap is missing for a first build, CommandFailedError or CommandTimeoutError (with
 * the tool's stderr tail) when debootstrap, `docker import` or `docker build` fail, and
 * CancelledError when `signal` aborts a build.
 */
export function ensureQemuImage(options: { events?: EventSink; signal?: AbortSignal } = {}): Promise<QemuImage> {
  pending ??= buildIfMissing(options).catch((e: unknown) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

async function buildIfMissing(options: { events?: EventSink; signal?: AbortSignal }): Promise<QemuImage> {
  await assertDocker();
  const tag = await qemuImageTag();
  const cache = join(defaultCacheDir(), 'qemu-image');
  // The tag as a file name: the lock, and the folder the OVMF variable templates are copied to.
  const slug = tag.replace(/[:/]/g, '-');
  if (!(await imageExists(tag))) {
    await mkdir(cache, { recursive: true });
    await withFileLock(join(cache, `${slug}.lock`), async () => {
      if (await imageExists(tag)) return;
      const say = (text: string) => options.events?.({ type: 'message', operation: 'qemu-image', level: 'info', text });
      const base = baseTag();
      if (!(await imageExists(base))) {
        const tarball = await baseTarball(cache, say, options.signal);
        say(`importing ${tarball} as ${base}`);
        await run('docker', ['import', tarball, base], { what: `importing the Debian base as ${base}`, timeoutMs: 5 * 60_000, signal: options.signal });
      }
      say(`building ${tag} from ${dockerfilePath()} (apt-get from Debian's mirror)`);
      // The Dockerfile goes on standard input with no build context: it copies nothing in.
      await run('docker', ['build', '--network', 'host', '--build-arg', `BASE=${base}`, '--tag', tag, '-'], {
        what: `building the QEMU image ${tag}`,
        input: await readFile(dockerfilePath()),
        timeoutMs: 30 * 60_000,
        idleTimeoutMs: 10 * 60_000,
        signal: options.signal,
        hint: 'docker build reaches Debian\'s mirror with --network host; check that deb.debian.org answers from this machine.',
      });
    });
  }
  return describeImage(tag, join(cache, slug));
}

/** The Debian minbase root as a tar, made by debootstrap once and kept in the cache (about 40 s, 175 MiB). */
async function baseTarball(cache: string, say: (text: string) => void, signal: AbortSignal | undefined): Promise<string> {
  const tarball = join(cache, `debian-${BASE_RECIPE.suite}-${BASE_RECIPE.variant}-${hash(JSON.stringify(BASE_RECIPE))}.tar`);
  if ((await pathKind(tarball)) === 'file') return tarball;
  if (!findTool('debootstrap')) throw new ToolMissingError('debootstrap', 'debootstrap');
  const work = join(cache, `base-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  try {
    say(`debootstrap ${BASE_RECIPE.variant} ${BASE_RECIPE.suite} into ${work}`);
    await run('debootstrap', [`--variant=${BASE_RECIPE.variant}`, '--components=main', BASE_RECIPE.suite, work, BASE_RECIPE.mirror], {
      what: 'making the Debian base of the QEMU image with debootstrap',
      timeoutMs: 20 * 60_000,
      idleTimeoutMs: 5 * 60_000,
      signal,
    });
    // The downloaded packages are installed already; an image does not need them twice.
    await rm(join(work, 'debootstrap'), { recursive: true, force: true });
    await run('find', [join(work, 'var/cache/apt/archives'), '-name', '*.deb', '-delete'], { what: 'dropping debootstrap\'s package files', timeoutMs: 60_000 });
    const temp = `${tarball}.${process.pid}.partial`;
    await run('tar', ['--numeric-owner', '--xattrs', '-C', work, '-cf', temp, '.'], { what: 'packing the Debian base', timeoutMs: 10 * 60_000, signal });
    await rename(temp, tarball);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return tarball;
}

/** The pinned versions and the OVMF variable templates, read from the image by one short container. */
async function describeImage(tag: string, dir: string): Promise<QemuImage> {
  await mkdir(dir, { recursive: true });
  const vars = { plain: join(dir, basename(IMAGE_OVMF.plain.vars)), secureBoot: join(dir, basename(IMAGE_OVMF.secureBoot.vars)) };
  // Copied under a name of this process's and renamed: another process may be copying from them.
  const script = [
    `dpkg-query -W -f '\${Package}\\t\${Version}\\n' ${PINNED_PACKAGES.join(' ')}`,
    `for f in ${IMAGE_OVMF.plain.vars} ${IMAGE_OVMF.secureBoot.vars}; do cp "$f" "$1/$2" && mv -f "$1/$2" "$1/\${f##*/}"; done`,
  ].join('\n');
  const r = await run('docker', ['run', '--rm', '--network', 'none', ...userArgs(), '--volume', `${dir}:${dir}`, tag, 'sh', '-ec', script, 'sh', dir, `copy-${process.pid}-${randomBytes(4).toString('hex')}`], {
    what: `reading the pinned versions from ${tag}`,
    timeoutMs: 60_000,
  });
  const versions = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('\t') as [string, string])) as QemuImage['versions'];
  for (const p of PINNED_PACKAGES) {
    if (!versions[p]) throw new ImagepeError('COMMAND_FAILED', `the QEMU image ${tag} has no ${p} installed`, { hint: `Remove the image (docker rmi ${tag}) so the next run builds it again.` });
  }
  for (const v of Object.values(vars)) await stat(v);
  return { tag, versions, ovmfVars: vars, summary: `QEMU ${versions['qemu-system-x86']}, OVMF ${versions.ovmf}, Samba ${versions.samba}` };
}

/**
 * "uid:gid" of this process when it is not root, the user its containers run as, so they write
 * files the caller owns, as a native QEMU would; undefined for root (containers' default).
 */
export function callerUser(): string | undefined {
  return process.getuid && process.getuid() !== 0 ? `${process.getuid()}:${process.getgid?.() ?? 0}` : undefined;
}

/** callerUser as `docker run` arguments. */
export function userArgs(): string[] {
  const user = callerUser();
  return user ? ['--user', user] : [];
}
