import type { WriteRawResult } from './write.js';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { ImagepeError, RateMeter, ensureFreeSpace, formatBytes, run, type EventSink } from '../../core/index.js';
import { noSpace, type TargetGeometry } from './device.js';
import { openSource, sourceName, type RawSource } from './source.js';

export interface Qcow2Write {
  source: RawSource;
  device: string;
  geometry: TargetGeometry;
  imageBytes: number | undefined;
  expectedSha256: string | undefined;
  attempts: number;
  events: EventSink;
  signal: AbortSignal | undefined;
  scratchDir: string | undefined;
  afterWritten: ((offset: number, length: number) => Promise<void>) | undefined;
}

/** What a qcow2 write reports: writeRawImage's result less what writeRawImage adds itself. */
export type Qcow2Written = Omit<WriteRawResult, 'format' | 'bmapFrom' | 'durationMs'>;

const DAY_MS = 24 * 3600_000;
const IDLE_MS = 15 * 60_000;

/**
 * Writes a qcow2 image: `qemu-img convert -n -O raw -t none -W` straight onto the device (qemu-img
 * cannot write raw to a pipe: "Could not resize file"; this kernel has no nbd module for
 * qemu-nbd), then `qemu-img compare -T none` of the image against the device's first
 * imageBytes (a json: filename bounds the device, else compare would want the device's tail to
 * be zeros too). A difference reruns the whole convert, up to `attempts` times, then
 * VERIFY_FAILED naming the offset compare reported. -t none / -T none: O_DIRECT both ways, so
 * compare reads the device, not the page cache convert left behind.
 *
 * qemu-img needs a seekable file: a URL is downloaded to scratchDir first, hashed on the way,
 * and removed afterwards. The source's sha256 is known before anything is written (the file is
 * hashed first when a sha256 is expected, else while convert runs), so a mismatch leaves the disk
 * untouched.
 *
 * Counting: writtenBytes are the clusters holding data (qemu-img map), zeroedBytes the rest of
 * the image, which convert zeroes with write-zeroes requests (BLKZEROOUT) whatever the disk held;
 * skippedBytes is 0.
 */
export async function writeQcow2(w: Qcow2Write): Promise<Qcow2Written> {
  const name = sourceName(w.source);
  const opt = w.signal ? { signal: w.signal } : {};
  let downloaded: string | undefined;
  try {
    let path: string;
    let hashing: Promise<{ sha256: string; bytes: number }>;
    if (w.source.kind === 'url') {
      if (!w.scratchDir) throw new ImagepeError('INVALID_INPUT', `${name} is a qcow2 over HTTP, which qemu-img cannot read as a stream`, { hint: 'Give scratchDir: a directory with room for the qcow2 file, where it is downloaded first.' });
      const dir = await mkdtemp(join(w.scratchDir, 'imagepe-qcow2-'));
      downloaded = path = join(dir, 'image.qcow2');
      hashing = Promise.resolve(await download(w.source, path, w.scratchDir, w.events, w.signal));
    } else {
      path = w.source.path;
      hashing = hashFile(path, w.signal);
    }
    if (w.expectedSha256 || downloaded) {
      const h = await hashing;
      if (w.expectedSha256 && h.sha256 !== w.expectedSha256) {
        throw new ImagepeError('VERIFY_FAILED', `${name} has sha256 ${h.sha256}, not ${w.expectedSha256}: it is damaged or not the image meant. Nothing was written to ${w.device}.`, { hint: 'Fetch the image again (check its published checksum), then deploy again.' });
      }
    }
    hashing.catch(() => undefined);
    const info = await run('qemu-img', ['info', '--output=json', '-f', 'qcow2', path], { what: `reading the qcow2 header of ${name}`, timeoutMs: 120_000, ...opt });
    const imageBytes = (JSON.parse(info.stdout) as { 'virtual-size': number })['virtual-size'];
    if (imageBytes > w.geometry.bytes) throw noSpace(name, imageBytes, w.device, w.geometry.bytes);
    const map = await run('qemu-img', ['map', '--output=json', '-f', 'qcow2', path], { what: `mapping the clusters of ${name}`, timeoutMs: 600_000, ...opt });
    const dataBytes = (JSON.parse(map.stdout) as { length: number; data: boolean }[]).reduce((n, e) => n + (e.data ? e.length : 0), 0);

    const target = JSON.stringify({ driver: 'raw', size: imageBytes, file: { driver: w.geometry.isBlockDevice ? 'host_device' : 'file', filename: w.device } });
    const rewrites: Qcow2Written['rewrites'] = [];
    let difference: number | undefined;
    for (let attempt = 0; attempt <= w.attempts; attempt++) {
      await convert(path, w.device, imageBytes, w.events, w.signal, name);
      if (difference !== undefined) rewrites.push({ offset: difference, length: imageBytes - difference });
      await w.afterWritten?.(0, imageBytes);
      w.events({ type: 'progress', operation: 'raw', phase: 'compare', unit: 'bytes', done: 0, total: imageBytes });
      const cmp = await run('qemu-img', ['compare', '-T', 'none', '-f', 'qcow2', path, `json:${target}`], { what: `comparing ${w.device} with ${name}`, okExitCodes: [0, 1], timeoutMs: DAY_MS, ...opt });
      if (cmp.exitCode === 0) {
        w.events({ type: 'progress', operation: 'raw', phase: 'compare', unit: 'bytes', done: imageBytes, total: imageBytes });
        const h = await hashing;
        return { imageBytes, sourceBytes: h.bytes, sha256: h.sha256, writtenBytes: dataBytes * (attempt + 1), skippedBytes: 0, zeroedBytes: (imageBytes - dataBytes) * (attempt + 1), rewrites, warnings: [] };
      }
      difference = Number(/mismatch at offset (\d+)/.exec(cmp.stdout + cmp.stderr)?.[1] ?? 0);
      if (attempt < w.attempts) w.events({ type: 'message', operation: 'raw', level: 'warning', text: `${w.device} differs from ${name} at offset ${difference} after qemu-img convert; converting again (attempt ${attempt + 1} of ${w.attempts})` });
    }
    throw new ImagepeError('VERIFY_FAILED', `${w.device} does not hold ${name}: qemu-img compare still finds a difference at offset ${difference} (${formatBytes(difference ?? 0)}) after ${w.attempts} rewrite${w.attempts === 1 ? '' : 's'}; the disk must not be booted`, {
      hint: 'The disk is failing (check its SMART data and kernel log): replace it, then deploy again.',
    });
  } finally {
    if (downloaded) await rm(join(downloaded, '..'), { recursive: true, force: true });
  }
}

async function convert(path: string, device: string, imageBytes: number, events: EventSink, signal: AbortSignal | undefined, name: string): Promise<void> {
  const meter = new RateMeter();
  const report = (done: number) => events({ type: 'progress', operation: 'raw', phase: 'convert', unit: 'bytes', done, total: imageBytes, ...meter.sample(done, imageBytes) });
  report(0);
  await run('qemu-img', ['convert', '-p', '-n', '-f', 'qcow2', '-O', 'raw', '-t', 'none', '-W', path, device], {
    what: `writing ${name} to ${device} (qemu-img convert)`,
    hint: 'A damaged qcow2 (qemu-img check tells), or a disk that refused the writes (see the kernel log).',
    timeoutMs: DAY_MS,
    idleTimeoutMs: IDLE_MS,
    onStdoutLine: (line) => {
      const m = /\((\d+(?:\.\d+)?)\/100%\)/.exec(line);
      if (m) report(Math.round((Number(m[1]) / 100) * imageBytes));
    },
    ...(signal ? { signal } : {}),
  });
}

async function hashFile(path: string, signal: AbortSignal | undefined): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024, ...(signal ? { signal } : {}) })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Downloads `source` to `path`, hashing it on the way. Throws NO_SPACE when the server's Content-Length does not fit in `dir`. */
async function download(source: RawSource, path: string, dir: string, events: EventSink, signal: AbortSignal | undefined): Promise<{ sha256: string; bytes: number }> {
  const opened = await openSource(source, signal);
  if (opened.bytes !== undefined) await ensureFreeSpace(dir, opened.bytes, `downloading ${sourceName(source)}`);
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new RateMeter();
  const total = opened.bytes;
  await pipeline(
    opened.stream,
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        bytes += chunk.length;
        events({ type: 'progress', operation: 'raw', phase: 'download', unit: 'bytes', done: bytes, ...(total !== undefined ? { total } : {}), ...meter.sample(bytes, total) });
        cb(null, chunk);
      },
    }),
    createWriteStream(path),
    { signal },
  ).catch((e: unknown) => {
    if (signal?.aborted) throw new ImagepeError('CANCELLED', `downloading ${sourceName(source)} was cancelled`, { cause: e });
    if (e instanceof ImagepeError) throw e;
    throw new ImagepeError('INVALID_INPUT', `downloading ${sourceName(source)} to ${path} failed: ${(e as Error).message}`, { hint: 'Check the connection and the room in scratchDir, then deploy again.', cause: e });
  });
  return { sha256: hash.digest('hex'), bytes };
}
