import { mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CommandFailedError, ImagepeError, pathKind, run, type RunOptions } from '../../core/index.js';
import { explainCifsMountError, isTransientCifsMountError } from './mount-errors.js';
import { resolveCredentials, writeCredentialsFile, type CredentialsSpec } from './credentials.js';
import { httpImageUrl, parseSourceUrl, uncOf, type ShareLocation } from './url.js';

const MOUNT_ATTEMPTS = 3;
const MOUNT_RETRY_DELAY_MS = 2_000;

export * from './url.js';
export * from './credentials.js';

export interface MapOptions {
  signal?: AbortSignal;
  /** Mount read-write so the log can be written to logs/ (default: read-only). */
  writable?: boolean;
  /** Where the boot medium is mounted already (media: sources). */
  mediaRoot?: string;
  /** The boot medium's device, mounted read-only when mediaRoot is not given. */
  mediaDevice?: string;
  /** Where to create mount points (default: the system temp dir). */
  mountBase?: string;
  mountTimeoutMs?: number;
}

export interface MappedShare {
  location: ShareLocation;
  /** The folder the url names, as a local directory; undefined for http(s). */
  root: string | undefined;
  /** The image as a local file; undefined for http(s), which is fetched by the check. */
  imagePath: string | undefined;
  /** The image's URL for http(s) sources. */
  imageUrl: URL | undefined;
  /** What the user sees in messages: the url, never credentials. */
  display: string;
  release(): Promise<void>;
}

/**
 * Makes the plan's source reachable as a local directory: mounts smb (kernel CIFS client) and
 * nfs shares and the boot medium; file:// is used in place; http(s) is streamed later. The
 * caller must call release() on every path, which unmounts what this mounted.
 */
export async function mapShare(source: { url: string; image: string; credentials?: CredentialsSpec | undefined }, options: MapOptions = {}): Promise<MappedShare> {
  const location = parseSourceUrl(source.url);
  const runOpts = (what: string): RunOptions => ({ what, timeoutMs: options.mountTimeoutMs ?? 90_000, ...(options.signal ? { signal: options.signal } : {}) });
  const base = { location, display: source.url, imageUrl: undefined as URL | undefined };
  switch (location.kind) {
    case 'file': {
      if ((await pathKind(location.path)) !== 'directory') throw new ImagepeError('NOT_FOUND', `share folder ${location.path} does not exist`);
      return { ...base, root: location.path, imagePath: join(location.path, source.image), release: async () => {} };
    }
    case 'http':
      return { ...base, root: undefined, imagePath: undefined, imageUrl: httpImageUrl(location.url, source.image), release: async () => {} };
    case 'media': {
      if (options.mediaRoot) {
        const root = join(options.mediaRoot, location.path);
        return { ...base, root, imagePath: join(root, source.image), release: async () => {} };
      }
      if (!options.mediaDevice) throw new ImagepeError('NOT_FOUND', 'the source is the boot medium, but no boot medium was found', { hint: 'Boot from the medium that holds the image, or use an smb://, nfs:// or http:// source.' });
      const dir = await mountPoint(options.mountBase, 'media');
      try {
        await run('mount', ['-o', 'ro', options.mediaDevice, dir], runOpts(`mounting the boot medium ${options.mediaDevice}`));
      } catch (e) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
      const root = join(dir, location.path);
      return { ...base, root, imagePath: join(root, source.image), release: () => unmount(dir) };
    }
    case 'smb': {
      const creds = await resolveCredentials(source.credentials);
      const credFile = await writeCredentialsFile(creds);
      const dir = await mountPoint(options.mountBase, 'smb');
      // nobrl: SMB byte-range locks are mandatory and per handle, so wimlib's flock() on the WIM
      // would make its own header write through a second handle fail with EACCES, and an append
      // to a WIM on the share could never work. Two machines appending to one WIM at once are
      // therefore not kept apart; the capture docs say so.
      // echo_interval=10: the kernel gives up on a silent server after three echo intervals, so a
      // share that goes away mid-apply fails the read in under a minute instead of after three
      // (soft, the default, makes that an I/O error rather than a wait forever).
      const opts = [`credentials=${credFile.path}`, 'vers=3.0', options.writable ? 'rw' : 'ro', 'soft', 'nobrl', 'echo_interval=10', 'iocharset=utf8', ...(location.port ? [`port=${location.port}`] : [])];
      try {
        // A server that is still starting, or a network that came up a moment ago, fails the
        // first mount with errors that the next try does not see (EREMOTEIO from a Samba that
        // was slow to answer the negotiation, seen here under load); wrong credentials or a
        // missing share fail the same way every time and are not retried.
        for (let attempt = 1; ; attempt++) {
          try {
            await run('mount', ['-t', 'cifs', uncOf(location), dir, '-o', opts.join(',')], {
              ...runOpts(`mounting ${uncOf(location)}`),
              hint: 'Check the server name, the share name and the credentials; the PE needs the cifs kernel module.',
            });
            break;
          } catch (e) {
            if (attempt >= MOUNT_ATTEMPTS || !(e instanceof CommandFailedError) || !isTransientCifsMountError(e.stderrTail)) throw e;
            await sleep(MOUNT_RETRY_DELAY_MS * attempt, undefined, options.signal ? { signal: options.signal } : {});
          }
        }
      } catch (e) {
        await rm(dir, { recursive: true, force: true });
        const problem = e instanceof CommandFailedError ? explainCifsMountError(e.stderrTail) : undefined;
        // The command failure stays the cause, so its stderr tail still reaches the failed event.
        if (problem) throw new ImagepeError(problem.code, `cannot mount ${uncOf(location)}: ${problem.reason}`, { hint: problem.hint, cause: e });
        throw e;
      } finally {
        // mount.cifs has read the file; nothing needs it any more.
        await credFile.remove();
      }
      const root = join(dir, location.path);
      // The folder after the share name is part of the address: a wrong one is a share problem,
      // said here, not an image that seems to be missing later.
      if (location.path && (await pathKind(root)) !== 'directory') {
        await unmount(dir);
        throw new ImagepeError('NOT_FOUND', `cannot use ${source.url}: //${location.server}/${location.share} has no such share or folder ${location.path}`, { hint: 'Check the folder after the share name in the URL (smb://server/share/folder).' });
      }
      return { ...base, root, imagePath: join(root, source.image), release: () => unmount(dir) };
    }
    case 'nfs': {
      const dir = await mountPoint(options.mountBase, 'nfs');
      try {
        // nolock: the PE runs no rpc.statd, and the image is only read.
        await run('mount', ['-t', 'nfs', `${location.server}:${location.export}`, dir, '-o', `${options.writable ? 'rw' : 'ro'},nolock`], runOpts(`mounting ${location.server}:${location.export}`));
      } catch (e) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
      return { ...base, root: dir, imagePath: join(dir, source.image), release: () => unmount(dir) };
    }
  }
}

async function mountPoint(baseDir: string | undefined, kind: string): Promise<string> {
  return mkdtemp(join(baseDir ?? tmpdir(), `imagepe-${kind}-`));
}

// Unmounting runs after a cancel too, so it never takes the caller's signal.
async function unmount(dir: string): Promise<void> {
  const opts = { what: `unmounting ${dir}`, timeoutMs: 60_000 };
  try {
    await run('umount', [dir], opts);
  } catch {
    // A share that went away cannot be unmounted cleanly; lazy unmount still frees the mount point.
    await run('umount', ['-l', dir], opts).catch(() => undefined);
  }
  await rmdir(dir).catch(() => undefined);
}
