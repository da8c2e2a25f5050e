import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { ImagepeError, formatBytes } from '../../core/index.js';
import { findDataExtents, type Extent } from '../../burn/extents.js';
import { decompress } from './filter.js';
import type { RawFormat } from './format.js';
import { openSource, sourceName, type RawSource } from './source.js';

/**
 * The image's bytes, in order, block after block, and the sha256 of the source as stored (the
 * compressed bytes for zst, xz and gz: what a checksum published beside the file is of).
 */
export interface ImageReader {
  /** Fills `into` with the image's next bytes; fewer than `into.length` only at its end (0 after it). */
  fill(into: Buffer): Promise<number>;
  /** After the last fill: resolves once the source is known to be whole (the decompressor exited cleanly); throws why not. */
  finish(): Promise<void>;
  /** Stops reading (kills a decompressor); idempotent, never throws. */
  stop(): void;
  /** Source bytes read and hashed so far. */
  sourceBytes(): number;
  /** Hex sha256 of the source's bytes; call once, after finish(). */
  sha256(): string;
  /** Why holes are not known (xfs_io missing), for a warning. */
  warning?: string | undefined;
}

/**
 * Opens `source` as an ImageReader: a local raw file is read extent by extent (its holes, from
 * SEEK_DATA/SEEK_HOLE via findDataExtents, are never read, and are hashed as the zeros they
 * read as); anything else is streamed, hashed as it arrives, and decompressed (filter.ts).
 * Throws what openSource and findDataExtents throw.
 */
export async function openReader(format: Exclude<RawFormat, 'qcow2'>, source: RawSource, sizeBytes: number | undefined, sparse: boolean, signal?: AbortSignal): Promise<ImageReader> {
  const name = sourceName(source);
  if (format === 'raw' && source.kind === 'file' && sizeBytes !== undefined) {
    const found = sparse ? await findDataExtents(source.path, sizeBytes, signal) : { extents: sizeBytes > 0 ? [{ offset: 0, length: sizeBytes }] : [], warning: undefined };
    const fh = await open(source.path, 'r');
    return new FileReader(fh, name, sizeBytes, found.extents, found.warning);
  }
  const opened = await openSource(source, signal);
  const hash = createHash('sha256');
  let bytes = 0;
  const hashing = new Transform({
    transform(chunk: Uint8Array, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  opened.stream.once('error', (e) => hashing.destroy(e));
  opened.stream.pipe(hashing);
  const counters = { bytes: () => bytes, sha256: () => hash.digest('hex') };
  if (format === 'raw') {
    return new StreamReader(hashing, name, async () => undefined, () => opened.stream.destroy(), counters);
  }
  const d = decompress(format, hashing, `decompressing ${name} (${format})`, signal);
  return new StreamReader(d.output, name, () => d.done, () => d.stop(), counters);
}

class FileReader implements ImageReader {
  private pos = 0;
  private next = 0;
  private readonly hash = createHash('sha256');

  constructor(
    private readonly fh: FileHandle,
    private readonly name: string,
    private readonly size: number,
    private readonly extents: Extent[],
    readonly warning: string | undefined,
  ) {}

  async fill(into: Buffer): Promise<number> {
    const start = this.pos;
    const len = Math.min(into.length, this.size - start);
    const end = start + len;
    const view = into.subarray(0, len);
    while (this.next < this.extents.length && this.extents[this.next]!.offset + this.extents[this.next]!.length <= start) this.next++;
    let cursor = start;
    for (let i = this.next; i < this.extents.length && this.extents[i]!.offset < end; i++) {
      const e = this.extents[i]!;
      const s = Math.max(e.offset, start);
      const t = Math.min(e.offset + e.length, end);
      if (s > cursor) view.fill(0, cursor - start, s - start);
      await this.readFully(view, s - start, t - s, s);
      cursor = t;
    }
    if (cursor < end) view.fill(0, cursor - start, len);
    this.hash.update(view);
    this.pos = end;
    return len;
  }

  private async readFully(view: Buffer, at: number, length: number, position: number): Promise<void> {
    for (let done = 0; done < length; ) {
      let n: number;
      try {
        n = (await this.fh.read(view, at + done, length - done, position + done)).bytesRead;
      } catch (e) {
        throw new ImagepeError('INVALID_INPUT', `reading ${this.name} at offset ${position + done} failed: ${(e as Error).message}`, { hint: 'The disk holding the image may be failing; copy the image elsewhere and deploy again.', cause: e });
      }
      if (n === 0) throw new ImagepeError('INVALID_INPUT', `${this.name} changed while it was written: it ends at ${position + done} bytes, not ${this.size}`, { hint: 'Let whatever writes the image finish, then deploy again: the disk holds a mix and must not be booted.' });
      done += n;
    }
  }

  async finish(): Promise<void> {
    await this.fh.close();
  }

  stop(): void {
    void this.fh.close().catch(() => undefined);
  }

  sourceBytes(): number {
    return this.pos;
  }

  sha256(): string {
    return this.hash.digest('hex');
  }
}

class StreamReader implements ImageReader {
  private readonly it: AsyncIterator<Buffer>;
  private pending: Buffer | undefined;
  private ended = false;
  private read = 0;
  readonly warning = undefined;

  constructor(
    stream: Readable,
    private readonly name: string,
    private readonly finishFn: () => Promise<void>,
    private readonly stopFn: () => void,
    private readonly counters: { bytes: () => number; sha256: () => string },
  ) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async fill(into: Buffer): Promise<number> {
    let n = 0;
    while (n < into.length && !this.ended) {
      if (!this.pending || this.pending.length === 0) {
        let r: IteratorResult<Buffer>;
        try {
          r = await this.it.next();
        } catch (e) {
          // A failed decompressor explains a broken stream better than the stream's own error.
          await this.finishFn();
          if (e instanceof ImagepeError) throw e;
          throw new ImagepeError('INVALID_INPUT', `reading ${this.name} failed after ${formatBytes(this.read + n)} of image: ${(e as Error).message}`, { hint: 'The download or the disk holding the image failed: deploy again (the disk holds a partial image and must not be booted).', cause: e });
        }
        if (r.done) {
          this.ended = true;
          // Before the last window is written: a decompressor that failed must not pass for the image's end.
          await this.finishFn();
          break;
        }
        this.pending = r.value;
      }
      const k = Math.min(this.pending.length, into.length - n);
      this.pending.copy(into, n, 0, k);
      this.pending = this.pending.subarray(k);
      n += k;
    }
    this.read += n;
    return n;
  }

  finish(): Promise<void> {
    return this.finishFn();
  }

  stop(): void {
    try {
      this.stopFn();
    } catch {
      // already stopped
    }
  }

  sourceBytes(): number {
    return this.counters.bytes();
  }

  sha256(): string {
    return this.counters.sha256();
  }
}
