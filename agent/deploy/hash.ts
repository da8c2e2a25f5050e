import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CancelledError, ImagepeError, RateMeter, temporarySibling, removeQuietly, type Progress } from '../../core/index.js';

export interface HashOptions {
  /** Every chunk's progress, in bytes; the consumer decides how often to pass it on (core's ProgressGate). */
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** A pass-through that hashes and counts what flows by. */
function meter(phase: string, total: number | undefined, options: HashOptions): { stream: Transform; digest: () => string; bytes: () => number } {
  const hash = createHash('sha256');
  const rate = new RateMeter();
  let done = 0;
  const report = () => options.onProgress?.({ phase, unit: 'bytes', done, ...(total !== undefined ? { total } : {}), ...rate.sample(done, total) });
  rate.sample(0, total);
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      done += chunk.length;
      report();
      cb(null, chunk);
    },
    flush(cb) {
      // The last report says done == total even when the final chunk was reported already.
      report();
      cb();
    },
  });
  return { stream, digest: () => hash.digest('hex'), bytes: () => done };
}

/** SHA-256 of a file, read once as a stream. */
export async function sha256File(path: string, options: HashOptions = {}): Promise<string> {
  const size = (await stat(path)).size;
  const m = meter('Hashing image', size, options);
  try {
    await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), m.stream, async function* (source) {
      for await (const _ of source) {
        // drain: only the hash is wanted
      }
    }, options.signal ? { signal: options.signal } : {});
  } catch (e) {
    if (options.signal?.aborted) throw new CancelledError('hashing the image');
    throw e;
  }
  return m.digest();
}

/**
 * Streams an http(s) image to `dest`, hashing it on the way so the file is read only once. The
 * file appears under its name only when complete; certificate checks stay on (Node's default).
 */
export async function download(url: URL, dest: string, options: HashOptions & { timeoutMs?: number } = {}): Promise<{ sha256: string; bytes: number }> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  options.signal?.addEventListener('abort', abort, { once: true });
  const temp = temporarySibling(dest);
  try {
    let response: Response;
    try {
      response = await fetch(url, { signal: controller.signal, redirect: 'follow' });
    } catch (e) {
      if (options.signal?.aborted) throw new CancelledError(`downloading ${url.href}`);
      // fetch says only "fetch failed"; the reason (a certificate, a refused connection) is its cause.
      // Read by shape, not instanceof: the cause comes from undici's realm, which may not be ours (jest's vm).
      const cause = (e as { cause?: { message?: unknown } }).cause;
      throw new ImagepeError('NOT_FOUND', `cannot download ${url.href}: ${typeof cause?.message === 'string' ? cause.message : (e as Error).message}`, {
        hint: 'Check the URL, the network and, for https, that the server certificate is valid.',
      });
    }
    if (!response.ok || !response.body) throw new ImagepeError('NOT_FOUND', `downloading ${url.href} failed: HTTP ${response.status} ${response.statusText}`);
    const lengthHeader = response.headers.get('content-length');
    const total = lengthHeader ? Number(lengthHeader) : undefined;
    const m = meter('Downloading image', total, options);
    try {
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), m.stream, createWriteStream(temp));
    } catch (e) {
      if (options.signal?.aborted) throw new CancelledError(`downloading ${url.href}`);
      throw new ImagepeError('COMMAND_FAILED', `downloading ${url.href} broke off after ${m.bytes()} bytes: ${(e as Error).message}`);
    }
    if (total !== undefined && m.bytes() !== total) throw new ImagepeError('COMMAND_FAILED', `downloading ${url.href} ended after ${m.bytes()} of ${total} bytes`);
    await rename(temp, dest);
    return { sha256: m.digest(), bytes: m.bytes() };
  } finally {
    options.signal?.removeEventListener('abort', abort);
    await removeQuietly(temp);
  }
}

export function assertSha256(actual: string, expected: string, what: string): void {
  if (actual.toLowerCase() !== expected.toLowerCase()) {
    throw new ImagepeError('WIM_CORRUPT', `${what} has SHA-256 ${actual}, but the plan expects ${expected.toLowerCase()}`, {
      hint: 'The image on the share is not the one the plan was written for: copy it again, or correct source.sha256. The disk was not touched.',
    });
  }
}
