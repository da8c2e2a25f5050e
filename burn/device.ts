import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { ImagepeError, formatBytes, run, type ErrorCode } from '../core/index.js';
import type { Block } from './plan.js';

/**
 * The target opened for the burn: an O_DIRECT handle while the device takes direct I/O, and a
 * buffered one for what O_DIRECT cannot do (the image's last partial sector) or for everything
 * once the device has refused O_DIRECT.
 *
 * The direct handle is opened O_EXCL: on a block device Linux then refuses (EBUSY) while anyone
 * has it mounted or claimed, and refuses mounting it meanwhile, which closes the gap between
 * the refusals and the first write. The buffered handle is a plain open: the kernel lets the
 * holder of an exclusive open open it again.
 */
export class DeviceIo {
  private direct: FileHandle | undefined;
  private buffered: FileHandle | undefined;
  private wroteDirect = false;
  /** Why the burn is not using O_DIRECT, once it is not. */
  fallbackReason: string | undefined;

  private constructor(
    readonly path: string,
    readonly isBlockDevice: boolean,
  ) {}

  /**
   * Opens `path` for the burn, O_DIRECT unless the kernel refuses it (EINVAL: a driver or
   * filesystem without direct I/O), then buffered; exclusive either way. Throws the errors of
   * deviceError (DISK_IN_USE for EBUSY, REFUSED for a write-protected device, NOT_FOUND when the
   * device is gone).
   */
  static async open(path: string): Promise<DeviceIo> {
    const st = await stat(path).catch((e: unknown) => {
      throw deviceError('opening', path, undefined, e);
    });
    const io = new DeviceIo(path, st.isBlockDevice());
    try {
      io.direct = await open(path, EXCLUSIVE | constants.O_DIRECT);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw deviceError('opening', path, undefined, e);
      io.fallbackReason = `${path} refused O_DIRECT when opened (EINVAL); written through the page cache and fdatasync instead`;
      io.buffered = await openOrFail(path, EXCLUSIVE);
    }
    return io;
  }

  get directIo(): boolean {
    return this.direct !== undefined;
  }

  private async bufferedHandle(): Promise<FileHandle> {
    this.buffered ??= await openOrFail(this.path, constants.O_RDWR);
    return this.buffered;
  }

  /**
   * Writes a block (`data` is exactly its bytes). A device that takes O_DIRECT at open but
   * refuses the first direct write with EINVAL (some USB bridges, some drivers) is switched to
   * buffered writes for the whole burn, and the block goes again that way.
   */
  async write(b: Block, data: Uint8Array): Promise<void> {
    if (!this.direct || b.buffered) return writeAll(await this.bufferedHandle(), data, b.offset, this.path);
    try {
      await writeAll(this.direct, data, b.offset, this.path);
      this.wroteDirect = true;
    } catch (e) {
      const errno = ((e as ImagepeError).cause as NodeJS.ErrnoException | undefined)?.code;
      if (this.wroteDirect || errno !== 'EINVAL') throw e;
      // The exclusive claim goes with the direct handle, so the buffered one takes it over.
      await this.direct.close();
      this.direct = undefined;
      await this.buffered?.close();
      this.buffered = await openOrFail(this.path, EXCLUSIVE);
      this.fallbackReason = `${this.path} refused the first O_DIRECT write (EINVAL); written through the page cache and fdatasync instead`;
      await writeAll(this.buffered, data, b.offset, this.path);
    }
  }

  /**
   * Reads a block back into `into`, from the device itself: with O_DIRECT when the burn writes
   * that way (the image's partial last sector is read as its whole sector, of which the caller
   * compares the image's part), else through the page cache, which the caller has dropped.
   * Returns the bytes to compare, a view of `into`.
   */
  async read(b: Block, into: Buffer, sectorSize: number): Promise<Buffer> {
    if (!this.direct) return readAll(await this.bufferedHandle(), into, b.length, b.offset, this.path);
    const length = b.buffered ? sectorSize : b.length;
    return (await readAll(this.direct, into, length, b.offset, this.path)).subarray(0, b.length);
  }

  /** fdatasync on every open handle: the data reached the device (and its write cache was flushed). */
  async sync(): Promise<void> {
    for (const h of [this.direct, this.buffered]) {
      try {
        await h?.datasync();
      } catch (e) {
        throw deviceError('flushing', this.path, undefined, e);
      }
    }
  }

  /**
   * Drops the device's page cache (`blockdev --flushbufs`: sync, then the clean pages go), so
   * that a read-back comes from the device and not from memory the writes left behind. A
   * regular file (the engine's own tests) has no such cache to drop.
   */
  async dropCache(signal?: AbortSignal): Promise<void> {
    if (!this.isBlockDevice) return;
    await run('blockdev', ['--flushbufs', this.path], { what: `dropping the page cache of ${this.path}`, timeoutMs: 300_000, ...(signal ? { signal } : {}) });
  }

  /** Closes both handles (the kernel lets go of the exclusive claim). Never throws. */
  async close(): Promise<void> {
    for (const h of [this.direct, this.buffered]) await h?.close().catch(() => undefined);
    this.direct = this.buffered = undefined;
  }
}

const EXCLUSIVE = constants.O_RDWR | constants.O_EXCL;

async function openOrFail(path: string, flags: number): Promise<FileHandle> {
  try {
    return await open(path, flags);
  } catch (e) {
    throw deviceError('opening', path, undefined, e);
  }
}

async function writeAll(fh: FileHandle, data: Uint8Array, offset: number, path: string): Promise<void> {
  for (let done = 0; done < data.length; ) {
    let n: number;
    try {
      n = (await fh.write(data, done, data.length - done, offset + done)).bytesWritten;
    } catch (e) {
      throw deviceError('writing', path, offset + done, e);
    }
    if (n === 0) throw new ImagepeError('NO_SPACE', `${path} took no more bytes at offset ${offset + done}`, { hint: 'The device is smaller than it said, or was replaced: check it with lsblk and burn again.' });
    done += n;
  }
}

async function readAll(fh: FileHandle, into: Buffer, length: number, offset: number, path: string): Promise<Buffer> {
  for (let done = 0; done < length; ) {
    let n: number;
    try {
      n = (await fh.read(into, done, length - done, offset + done)).bytesRead;
    } catch (e) {
      throw deviceError('reading back', path, offset + done, e);
    }
    if (n === 0) throw new ImagepeError('VERIFY_FAILED', `${path} ended at offset ${offset + done} while reading back`, { hint: 'The device is smaller than it said, or was pulled out: burn again.' });
    done += n;
  }
  return into.subarray(0, length);
}

const ERRNO_CODES: Record<string, [ErrorCode, string]> = {
  EBUSY: ['DISK_IN_USE', 'Something has it open or mounted (a desktop automounter?): unmount it and burn again.'],
  EROFS: ['REFUSED', "It is write-protected: slide the stick's lock switch off, or use another stick."],
  EACCES: ['REFUSED', 'Run imagepe burn as root (or as a user allowed to write the device).'],
  EPERM: ['REFUSED', 'Run imagepe burn as root (or as a user allowed to write the device).'],
  ENOSPC: ['NO_SPACE', 'The device is smaller than it said: use another stick.'],
  ENOENT: ['NOT_FOUND', 'The stick was pulled out or renamed: plug it in again and burn again.'],
  ENXIO: ['NOT_FOUND', 'The stick was pulled out or renamed: plug it in again and burn again.'],
  ENODEV: ['NOT_FOUND', 'The stick was pulled out or renamed: plug it in again and burn again.'],
  ENOMEDIUM: ['NOT_FOUND', 'There is no medium in the reader: insert it and burn again.'],
};

/**
 * A failed system call on the device as an ImagepeError: what was done, where, the errno, and
 * what to do. I/O errors (EIO and anything unlisted) are VERIFY_FAILED: the medium could not
 * take or give back the image, which is what a burn verifies.
 */
export function deviceError(doing: string, path: string, offset: number | undefined, e: unknown): ImagepeError {
  if (e instanceof ImagepeError) return e;
  const errno = (e as NodeJS.ErrnoException).code ?? 'unknown error';
  const [code, hint] = ERRNO_CODES[errno] ?? ['VERIFY_FAILED', 'The stick reported an I/O error: it may be failing or loose. Try another port or another stick.'];
  const where = offset === undefined ? '' : ` at offset ${offset} (${formatBytes(offset)})`;
  return new ImagepeError(code, `${doing} ${path}${where} failed: ${errno} (${(e as Error).message})`, { hint, cause: e });
}
