import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import { CancelledError, ImagepeError } from '../core/index.js';
import { selectImage } from './info.js';
import { applyFlags, applyInto, applyNeededBytes, checkApplyTarget, type ApplyOptions, type ApplyResult, type ImageSelector } from './wim.js';
import { PIPABLE_BLOB_HEADER_SIZE, WIM_HEADER_SIZE, parsePipableBlobHeader, parseWimHeader } from './wim-header.js';
import { parseWimXmlData, wimInfoFrom } from './wim-xml.js';
import { wimlib } from './wimlib.js';

export interface StreamApplyOptions extends ApplyOptions {
  /** The sha256 (64 hex digits) of the whole stream; a stream with another fails with VERIFY_FAILED. */
  expectedSha256?: string;
  /** Called with the number of bytes read from the stream so far, as they pass (the drain after wimlib included). */
  onBytes?: (bytesSoFar: number) => void;
  /** The stream's length in bytes when known (an HTTP Content-Length): a stream that ends short of it, or runs past it, fails. */
  totalBytes?: number;
  /** What the stream is, for messages: the URL it comes from (default "the WIM stream"). */
  from?: string;
}

export interface StreamApplyResult extends ApplyResult {
  /** Bytes read from the stream: all of it. */
  bytes: number;
  /** sha256 of the whole stream, lowercase hex. */
  sha256: string;
}

/**
 * Applies one image of a pipable WIM read from a stream (an HTTP response body), once from start
 * to end, as `wimlib-imagex apply - IMAGE TARGET` does; wimlib checks every file's SHA-1 as it
 * arrives. The XML data at the start of the stream is read first, so the image is chosen by
 * index or name and the target is checked exactly as apply() checks it (empty unless
 * allowNonEmpty, room for the image) before anything is written. ApplyOptions.check has no
 * effect: a stream has no integrity table to read.
 *
 * wimlib exits once it has the last file of the image, which is before the end of the stream
 * even for the last image (the blob table, XML data and header at the end of a pipable WIM are
 * for readers of a file). The rest of the stream is then read to its end and counted, so
 * `bytes` and `sha256` describe the whole stream, as a published checksum of the file does;
 * for the first image of a WIM with several that means downloading the others too.
 *
 * The stream is consumed, and destroyed on failure. When anything fails after the target was
 * checked, a directory target that was empty is emptied again. Throws INVALID_INPUT for a WIM
 * that is not pipable, IMAGE_NOT_FOUND, TARGET_NOT_EMPTY, NO_SPACE, WIM_CORRUPT for a stream that
 * is not a WIM or ends before the image does, UNSUPPORTED for a part of a split WIM (its parts
 * are separate files, never one stream), VERIFY_FAILED for a sha256 or length that differs
 * from the expected one, COMMAND_FAILED (with the stream's error as `cause`) when the stream
 * fails while wimlib reads it, CANCELLED, COMMAND_TIMEOUT.
 */
export async function applyStream(input: Readable, image: ImageSelector, target: string, options: StreamApplyOptions = {}): Promise<StreamApplyResult> {
  const started = Date.now();
  const where = options.from ?? 'the WIM stream';
  const expected = options.expectedSha256?.trim().toLowerCase();
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      options.onBytes?.(bytes);
      done(null, chunk);
    },
  });
  // The stream may fail while no one reads it (between the header and wimlib's start); its error
  // is read from input.errored and reaches wimlib through the pipeline instead.
  input.on('error', () => {});
  try {
    if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
      throw new ImagepeError('INVALID_INPUT', `"${options.expectedSha256}" is not a sha256 (64 hex digits)`, { hint: 'Give the checksum as sha256sum prints it.' });
    }
    const head = await readHead(input, where, options.signal);
    const chosen = selectImage(head.info, image);
    const checked = await checkApplyTarget(target, chosen, where, options, applyNeededBytes(chosen, head.properties.get(chosen.index)));
    // The bytes read for the header go to wimlib first, then the rest of the stream.
    tap.write(head.bytes);
    pipeline(input, tap, () => {});
    const args = ['apply', '-', String(chosen.index), target, ...applyFlags(checked, options)];
    const sha256 = await applyInto(checked, options, async () => {
      await wimlib(args, {
        operation: 'apply',
        what: `applying image ${chosen.index} of ${where} to ${target}`,
        events: options.events,
        signal: options.signal,
        timeoutMs: options.timeoutMs,
        idleTimeoutMs: options.idleTimeoutMs,
        stdin: tap,
      }).catch((e: unknown) => {
        throw input.readableEnded && exitCodeOf(e) === UNEXPECTED_END_OF_FILE ? endedEarly(where, bytes, options.totalBytes, chosen.index, e) : e;
      });
      await drain(tap, where, options);
      if (options.totalBytes !== undefined && bytes !== options.totalBytes) {
        throw new ImagepeError('VERIFY_FAILED', `${where} was ${bytes} bytes long, not the ${options.totalBytes} expected`, {
          hint: 'The file changed on the server, or the transfer was cut short: try again.',
        });
      }
      const actual = hash.digest('hex');
      if (expected !== undefined && actual !== expected) {
        throw new ImagepeError('VERIFY_FAILED', `${where} has sha256 ${actual}, not the expected ${expected}`, {
          hint: 'The file is not the one the checksum was made for: it was replaced or damaged on the server, or the checksum is out of date.',
        });
      }
      return actual;
    });
    return { image: chosen, target, targetKind: checked.kind, durationMs: Date.now() - started, bytes, sha256 };
  } catch (e) {
    tap.destroy();
    input.destroy();
    throw e;
  }
}

const UNEXPECTED_END_OF_FILE = 65;

/** The header and XML data at the start of a pipable WIM, read (and kept, for wimlib) before the image is chosen. */
async function readHead(input: Readable, where: string, signal: AbortSignal | undefined) {
  const chunks: Buffer[] = [];
  const start = await readAtLeast(input, chunks, WIM_HEADER_SIZE + PIPABLE_BLOB_HEADER_SIZE, signal, where);
  const header = parseWimHeader(start, where);
  if (!header.pipable) {
    throw new ImagepeError('INVALID_INPUT', `${where} is not a pipable WIM, so it cannot be applied as it is read`, {
      hint: 'Capture it with --pipable, or make a pipable copy: imagepe export WIM all NEW.wim --pipable.',
    });
  }
  // wimlib reads a split WIM's parts as files side by side (--ref), never one stream.
  if (header.totalParts > 1) {
    throw new ImagepeError('UNSUPPORTED', `${where} is part ${header.partNumber} of a split WIM (${header.totalParts} parts), which cannot be applied from a stream`, {
      hint: 'Join the parts into one WIM first: imagepe export FIRST.swm all WHOLE.wim --pipable (the other parts are found beside the first).',
    });
  }
  const xmlStart = WIM_HEADER_SIZE + PIPABLE_BLOB_HEADER_SIZE;
  const { size } = parsePipableBlobHeader(start.subarray(WIM_HEADER_SIZE), where);
  const bytes = await readAtLeast(input, chunks, xmlStart + size, signal, where);
  if (bytes.length < xmlStart + size) throw new ImagepeError('WIM_CORRUPT', `${where} ended after ${bytes.length} bytes, inside its XML data`, { hint: 'The WIM is cut short: copy or capture it again.' });
  // The header at the start of a pipable WIM has no resource headers but counts the images right.
  const xml = parseWimXmlData(bytes.subarray(xmlStart, xmlStart + size));
  const info = wimInfoFrom(where, header, xml);
  return { bytes, info, properties: xml.properties };
}

/** Reads a paused stream until `chunks` hold at least `n` bytes or the stream ends; returns them joined. */
async function readAtLeast(input: Readable, chunks: Buffer[], n: number, signal: AbortSignal | undefined, where: string): Promise<Buffer> {
  let have = chunks.reduce((sum, c) => sum + c.length, 0);
  while (have < n) {
    if (signal?.aborted) throw new CancelledError(`reading ${where}`);
    const chunk = input.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(Buffer.from(chunk));
      have += chunk.length;
      continue;
    }
    if (input.errored) throw input.errored;
    if (input.readableEnded || input.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        input.off('readable', done).off('end', done).off('close', done).off('error', failed);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const failed = (e: Error) => {
        done();
        reject(e);
      };
      input.on('readable', done).on('end', done).on('close', done).on('error', failed);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
  return Buffer.concat(chunks);
}

/**
 * Reads what wimlib left of the stream, so the count and the hash cover all of it; the
 * Transform hashes each chunk on its way. Cancelled by the signal; stopped when nothing comes
 * for idleTimeoutMs (default 10 min), as wimlib is.
 */
async function drain(tap: Readable, where: string, options: StreamApplyOptions): Promise<void> {
  const idleMs = options.idleTimeoutMs ?? 10 * 60_000;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => tap.destroy(new ImagepeError('COMMAND_TIMEOUT', `${where} sent nothing for ${Math.round(idleMs / 1000)} s`, { hint: 'Check that the server still responds.' })), idleMs);
  };
  const onAbort = () => tap.destroy(new CancelledError(`reading ${where}`));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    arm();
    for await (const _chunk of tap) arm();
  } catch (e) {
    if (e instanceof ImagepeError) throw e;
    throw new ImagepeError('VERIFY_FAILED', `${where} failed after the image was applied, so its length and sha256 cannot be checked: ${(e as Error).message}`, {
      cause: e,
      hint: 'The transfer broke near its end: try again.',
    });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function exitCodeOf(e: unknown): number | undefined {
  for (let cur: unknown = e, i = 0; cur && i < 5; cur = (cur as { cause?: unknown }).cause, i++) {
    const code = (cur as { exitCode?: unknown }).exitCode;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

function endedEarly(where: string, bytes: number, total: number | undefined, index: number, cause: unknown): ImagepeError {
  return new ImagepeError('WIM_CORRUPT', `${where} ended after ${bytes}${total === undefined ? '' : ` of ${total}`} bytes, before the last file of image ${index}: the WIM is cut short`, {
    cause,
    hint: 'The download or copy was interrupted, or the file on the server is incomplete: try again, or copy the WIM anew.',
  });
}
