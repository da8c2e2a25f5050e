import { CancelledError, ImagepeError } from '../core/index.js';
import type { WimInfo } from './info.js';
import { parseWimHeader, WIM_HEADER_SIZE, type WimHeader } from './wim-header.js';
import { parseWimXmlData, wimInfoFrom } from './wim-xml.js';

/** A WIM on an HTTP(S) server, described from its header and XML data alone. */
export interface RemoteWim {
  url: URL;
  /** The file's length in bytes, from the server's Content-Range. */
  sizeBytes: number;
  /** The complete header: for a pipable WIM the one at the end of the file (the one at offset 0 has no resource headers). */
  header: WimHeader;
  /** Whether applyStream can apply it as it downloads. */
  pipable: boolean;
  /** What imaging.info() would report for the file, with path = url.href. */
  info: WimInfo;
  /** One property of one image (see imaging.imageProperty), or undefined when the image has none by that name or no such image exists. */
  property(index: number, name: string): string | undefined;
}

export interface RemoteWimOptions {
  signal?: AbortSignal;
  /** Limit for all the requests together, in ms (default 60 s). */
  timeoutMs?: number;
}

// WIM XML data is a few KiB per image; more than this is a damaged header, not a big WIM.
const XML_LIMIT = 64 * 1024 * 1024;

/**
 * Reads a WIM's header and XML data over HTTP(S) with range requests (a few hundred KiB at most,
 * whatever the file's size): bytes 0-207, for a pipable WIM also the last 208, then the XML
 * data's range. Throws NOT_FOUND for a 404 or a server that cannot be reached, UNSUPPORTED
 * for a server that ignores Range (the body is dropped, not downloaded) or a split WIM,
 * WIM_CORRUPT for a file that is not a (complete) WIM, COMMAND_TIMEOUT after timeoutMs,
 * CANCELLED when the signal aborts, and REFUSED for any other HTTP error status.
 */
export async function readRemoteWim(url: URL, options: RemoteWimOptions = {}): Promise<RemoteWim> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ImagepeError('INVALID_INPUT', `${url.href} is not an http: or https: URL`, { hint: 'Name the WIM by its HTTP URL, or give a file path to imaging.info().' });
  }
  const where = url.href;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const get = (first: number, last: number) => readRange(url, first, last, signal).catch((e: unknown) => {
    if (options.signal?.aborted) throw new CancelledError(`reading ${where}`);
    if (timeout.aborted) throw new ImagepeError('COMMAND_TIMEOUT', `${where} did not answer within ${Math.round(timeoutMs / 1000)} s`, { hint: 'Check that the server responds; raise timeoutMs for a slow link.', cause: e });
    throw e;
  });

  const start = await get(0, WIM_HEADER_SIZE - 1);
  let header = parseWimHeader(start.bytes, where);
  const sizeBytes = start.total;
  if (header.totalParts > 1) {
    throw new ImagepeError('UNSUPPORTED', `${where} is part ${header.partNumber} of a split WIM (${header.totalParts} parts)`, {
      hint: 'Join the parts into one WIM on the server first: wimlib-imagex join WHOLE.wim PART.swm PART2.swm ...',
    });
  }
  if (header.pipable) {
    const tail = sizeBytes >= 2 * WIM_HEADER_SIZE ? (await get(sizeBytes - WIM_HEADER_SIZE, sizeBytes - 1)).bytes : new Uint8Array();
    const end = tail.length === WIM_HEADER_SIZE && tail.subarray(0, 8).every((b, i) => b === start.bytes[i]) ? parseWimHeader(tail, `the end of ${where}`) : undefined;
    // wimlib writes a pipable WIM's complete header last, so a file without it was cut short.
    if (!end || end.guid !== header.guid) {
      throw new ImagepeError('WIM_CORRUPT', `${where} is an incomplete pipable WIM: it does not end with its header`, {
        hint: 'It was cut short while it was written or copied: copy or capture it again.',
      });
    }
    header = end;
  }
  const xml = header.xmlData;
  if (xml.originalSize < 2 || xml.originalSize > XML_LIMIT || xml.offset + xml.originalSize > sizeBytes) {
    throw new ImagepeError('WIM_CORRUPT', `${where} is damaged: its header places the XML data at bytes ${xml.offset}+${xml.originalSize} of ${sizeBytes}`, {
      hint: 'Copy it again from a good source; imagepe verify WIM checks a local copy.',
    });
  }
  const data = parseWimXmlData((await get(xml.offset, xml.offset + xml.originalSize - 1)).bytes);
  return {
    url,
    sizeBytes,
    header,
    pipable: header.pipable,
    info: wimInfoFrom(where, header, data),
    property: (index, name) => data.properties.get(index)?.[name],
  };
}

/** Bytes first..last (inclusive) of the resource and its total length; fewer when the file ends sooner. */
async function readRange(url: URL, first: number, last: number, signal: AbortSignal): Promise<{ bytes: Uint8Array; total: number }> {
  const response = await fetch(url, { headers: { Range: `bytes=${first}-${last}` }, signal }).catch((e: unknown) => {
    if (signal.aborted) throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    // The message says what went wrong in words ("self-signed certificate"); the code alone does not.
    const why = [cause?.message, cause?.code && !cause.message?.includes(cause.code) ? `(${cause.code})` : undefined].filter(Boolean).join(' ') || (e as Error).message;
    throw new ImagepeError('NOT_FOUND', `${url.href} could not be reached: ${why}`, {
      hint: 'Check the URL, the network, that the server is running and, for https, that its certificate is valid.',
      cause: e,
    });
  });
  if (response.status !== 206) {
    // Dropping the body closes the connection, so a server that sends the whole file sends little of it.
    await response.body?.cancel().catch(() => {});
    throw statusError(url, response);
  }
  const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
  const total = Number(range?.[3]);
  if (!range || Number(range[1]) !== first || Number(range[2]) !== Math.min(last, total - 1)) {
    await response.body?.cancel().catch(() => {});
    throw new ImagepeError('UNSUPPORTED', `${url.href}: asked for bytes ${first}-${last}, the server answered with ${response.headers.get('content-range') ?? 'no Content-Range'}`, { hint: RANGE_HINT });
  }
  return { bytes: new Uint8Array(await response.arrayBuffer()), total };
}

const RANGE_HINT = 'Serve the image from a server that supports HTTP range requests (imagepe serve, nginx, Apache), or download it first.';

function statusError(url: URL, response: Response): ImagepeError {
  const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  if (response.status === 200) {
    return new ImagepeError('UNSUPPORTED', `${url.href}: the server ignores range requests (it answered a request for the header with the whole file)`, { hint: RANGE_HINT });
  }
  if (response.status === 404 || response.status === 410) {
    return new ImagepeError('NOT_FOUND', `${url.href} does not exist (${status})`, { hint: 'Check the URL: the image name and the path the server serves it under.' });
  }
  if (response.status === 416) {
    return new ImagepeError('WIM_CORRUPT', `${url.href} is too small to be a WIM (${status}: ${response.headers.get('content-range') ?? 'empty'})`, {
      hint: 'Check that the URL names a .wim file and that it was uploaded completely.',
    });
  }
  return new ImagepeError('REFUSED', `${url.href} could not be read: the server answered ${status}`, { hint: "Check the server's log and its access rules." });
}
