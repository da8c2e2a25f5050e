import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ImagepeError } from '../../core/index.js';

/** Where a raw image comes from: a local file, or an HTTP(S) URL (streamed, never staged). */
export type RawSource = { kind: 'file'; path: string } | { kind: 'url'; url: URL };

/** The source as a human reads it in messages. */
export function sourceName(s: RawSource): string {
  return s.kind === 'file' ? s.path : s.url.href;
}

const HTTP_HINT = 'Check the URL (the image name and the path the server serves it under) and that the server answers.';

function checkUrl(url: URL): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ImagepeError('INVALID_INPUT', `${url.href} is not an http: or https: URL`, { hint: 'Name the image by its HTTP(S) URL, or give a file path.' });
}

async function fetchOrFail(url: URL, init: { method?: string; headers?: Record<string, string>; signal?: AbortSignal | undefined }): Promise<Response> {
  checkUrl(url);
  try {
    return await fetch(url, { method: init.method ?? 'GET', ...(init.headers ? { headers: init.headers } : {}), ...(init.signal ? { signal: init.signal } : {}) });
  } catch (e) {
    if (init.signal?.aborted) throw new ImagepeError('CANCELLED', `reading ${url.href} was cancelled`, { cause: e });
    const why = (e as { cause?: { code?: string; message?: string } }).cause?.code ?? (e as Error).message;
    throw new ImagepeError('NOT_FOUND', `${url.href} could not be reached: ${why}`, { hint: HTTP_HINT, cause: e });
  }
}

function statusError(url: URL, status: number): ImagepeError {
  if (status === 404 || status === 410) return new ImagepeError('NOT_FOUND', `${url.href} does not exist (${status})`, { hint: HTTP_HINT });
  return new ImagepeError('REFUSED', `${url.href} could not be read: the server answered ${status}`, { hint: "Check the server's log and its access rules." });
}

/** An opened source: its bytes as a stream, and how many there are when known (Content-Length, file size). */
export interface OpenedSource {
  stream: Readable;
  bytes: number | undefined;
}

/**
 * Opens the source for streaming. Throws NOT_FOUND (no such file, a 404, an unreachable host),
 * REFUSED (another HTTP status), INVALID_INPUT (not a regular file, not an http(s) URL),
 * CANCELLED.
 */
export async function openSource(s: RawSource, signal?: AbortSignal): Promise<OpenedSource> {
  if (s.kind === 'file') {
    const bytes = await fileSize(s.path);
    return { stream: createReadStream(s.path, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) }), bytes };
  }
  const response = await fetchOrFail(s.url, { signal });
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => undefined);
    throw statusError(s.url, response.status);
  }
  const length = response.headers.get('content-length');
  const encoding = response.headers.get('content-encoding');
  // fetch undoes a Content-Encoding on its own, so the bytes read are no longer the bytes served.
  const bytes = length !== null && /^\d+$/.test(length) && (!encoding || encoding === 'identity') ? Number(length) : undefined;
  return { stream: Readable.fromWeb(response.body as Parameters<typeof Readable.fromWeb>[0]), bytes };
}

/** A regular file's size. Throws NOT_FOUND or INVALID_INPUT. */
export async function fileSize(path: string): Promise<number> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new ImagepeError(e.code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_INPUT', `image ${path} cannot be read: ${e.code ?? e.message}`, { hint: 'Name an existing image file.', cause: e });
  });
  if (!st.isFile()) throw new ImagepeError('INVALID_INPUT', `image ${path} is not a regular file`, { hint: 'Name a raw disk image file (.img, .raw, .zst, .xz, .gz, .qcow2).' });
  return st.size;
}

/** The source's size as stored or served (HEAD's Content-Length), or undefined when the server does not say. */
export async function sourceBytes(s: RawSource, signal?: AbortSignal): Promise<number | undefined> {
  if (s.kind === 'file') return fileSize(s.path);
  const response = await fetchOrFail(s.url, { method: 'HEAD', signal });
  if (!response.ok) throw statusError(s.url, response.status);
  const length = response.headers.get('content-length');
  return length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
}

/**
 * Bytes [first, last] of a URL by a range request; undefined when the server ignores ranges
 * (it answered 200) or refuses them, so callers treat "cheap" facts as unknown instead of failing.
 */
export async function fetchRange(url: URL, first: number, last: number, signal?: AbortSignal): Promise<Buffer | undefined> {
  const response = await fetchOrFail(url, { headers: { range: `bytes=${first}-${last}` }, signal });
  if (response.status !== 206) {
    await response.body?.cancel().catch(() => undefined);
    return undefined;
  }
  return Buffer.from(await response.arrayBuffer());
}

/** A small text file (a bmap) from a source; undefined when it does not exist (ENOENT, 404/410). Other failures throw. */
export async function readTextIfExists(s: RawSource, signal?: AbortSignal): Promise<string | undefined> {
  if (s.kind === 'file') {
    try {
      return await readFile(s.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ImagepeError('INVALID_INPUT', `${s.path} cannot be read: ${(e as Error).message}`, { cause: e });
    }
  }
  const response = await fetchOrFail(s.url, { signal });
  if (response.status === 404 || response.status === 410) {
    await response.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!response.ok) throw statusError(s.url, response.status);
  return response.text();
}
