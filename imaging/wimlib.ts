import { CommandFailedError, ImagepeError, RateMeter, run, type EventSink, type RunResult } from '../core/index.js';
import { parseProgressLine } from './progress.js';

export interface WimlibCall {
  /** The imagepe operation this serves, stamped on every event: "capture", "apply", ... */
  operation: string;
  /** What the call is for, the head of an error message: `applying image 2 of base.wim`. */
  what: string;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  idleTimeoutMs?: number | undefined;
  /** A WIM streamed to wimlib's standard input (`-` as the WIM path); see RunOptions.stdin. */
  stdin?: NodeJS.ReadableStream | undefined;
}

// Capture and apply of a large image take hours on slow media; a hang is caught by the idle
// timeout, since wimlib redraws its meter at least every few seconds while it works.
const LONG_JOB_TIMEOUT_MS = 24 * 3600_000;
const LONG_JOB_IDLE_MS = 10 * 60_000;

// wimlib-imagex exits with wimlib's own error code; these mean the file itself is damaged.
const CORRUPT_CODES = new Set([
  2, // DECOMPRESSION
  13, // INTEGRITY
  28, // INVALID_RESOURCE_HASH
  65, // UNEXPECTED_END_OF_FILE
]);
const CORRUPT_TEXT = /not a WIM file|invalid .*header|corrupt|integrity check|message digest|end of the file|decompress|metadata resource|lookup table|blob table|XML data/i;
const INVALID_IMAGE = 18;
const NOT_PIPABLE = 44;
const NOT_A_MOUNTPOINT = 80;
const UNSUPPORTED = 68;

/** Runs wimlib-imagex, turning its progress meter into events and its failures into typed errors. */
export async function wimlib(args: readonly string[], call: WimlibCall): Promise<RunResult> {
  const meter = new RateMeter();
  let lastPhase = '';
  const onLine = (line: string) => {
    const p = parseProgressLine(line);
    if (!call.events) return;
    if (!p) {
      const text = line.trim();
      if (/^\[WARNING\]/.test(text)) call.events({ type: 'message', operation: call.operation, level: 'warning', text: text.replace(/^\[WARNING\]\s*/, '') });
      return;
    }
    if (p.phase !== lastPhase) {
      lastPhase = p.phase;
      meter.sample(0, p.total);
    }
    call.events({ type: 'progress', operation: call.operation, ...p, ...meter.sample(p.done, p.total) });
  };
  try {
    return await run('wimlib-imagex', args, {
      what: call.what,
      timeoutMs: call.timeoutMs ?? LONG_JOB_TIMEOUT_MS,
      idleTimeoutMs: call.idleTimeoutMs ?? LONG_JOB_IDLE_MS,
      signal: call.signal,
      stdin: call.stdin,
      onStdoutLine: onLine,
      onStderrLine: onLine,
    });
  } catch (e) {
    throw classify(e);
  }
}

function classify(e: unknown): unknown {
  // A stream that broke (a dropped connection) cut wimlib's input short: the WIM is not to blame.
  if (!(e instanceof CommandFailedError) || e.cause !== undefined) return e;
  const code = e.exitCode ?? -1;
  const why = wimlibReason(e.stderrTail);
  if (CORRUPT_CODES.has(code) || CORRUPT_TEXT.test(why)) {
    return new ImagepeError('WIM_CORRUPT', `${e.message}`, {
      cause: e,
      hint: 'The WIM file is damaged or incomplete (an interrupted copy?). Copy it again from a good source; imagepe verify WIM checks every resource.',
    });
  }
  if (code === NOT_PIPABLE) {
    return new ImagepeError('INVALID_INPUT', `${e.message}`, {
      cause: e,
      hint: 'Only a pipable WIM can be applied from a stream: capture it with --pipable, or convert it with imagepe export WIM all NEW.wim --pipable.',
    });
  }
  if (code === INVALID_IMAGE) return new ImagepeError('IMAGE_NOT_FOUND', e.message, { cause: e, hint: 'imagepe info WIM lists the images it holds.' });
  if (code === UNSUPPORTED) return new ImagepeError('UNSUPPORTED', e.message, { cause: e, hint: 'wimlib cannot do this with this WIM (its stderr above says why); imagepe export can rewrite it in another form (--compress, without --solid).' });
  if (code === NOT_A_MOUNTPOINT) return new ImagepeError('NOT_MOUNTED', e.message, { cause: e, hint: 'imagepe unmount takes the directory a WIM image is mounted on.' });
  return e;
}

/** wimlib's last "Exiting with error code N:" explanation, which follows on the next line. */
function wimlibReason(stderrTail: string): string {
  const m = /Exiting with error code \d+:\s*\n?\s*(.+)/.exec(stderrTail);
  return m ? m[1]!.trim() : stderrTail;
}
