import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { execa } from 'execa';
import { CancelledError, CommandFailedError, ImagepeError, ToolMissingError, findTool, searchPath, tail, toolInfo } from '../../core/index.js';
import type { RawFormat } from './format.js';

/** A decompressor between the source's bytes and the image's: `output` ends only once `done` is known. */
export interface Decompressor {
  output: Readable;
  /** Resolves when the decompressor exited cleanly; rejects with why it did not. Never unhandled. */
  done: Promise<void>;
  /** Kills it (and stops reading the input); idempotent. */
  stop(): void;
}

const STOP_GRACE_MS = 3_000;

const COMMANDS: Partial<Record<RawFormat, [string, string[]]>> = {
  zst: ['zstd', ['-dc', '-q']],
  xz: ['xz', ['-dc', '-q', '-T0']],
};

/**
 * Decompresses `input` as a stream: zst with `zstd -dc`, xz with `xz -dc`, gz with Node's zlib
 * (in the thread pool; no process to start). `what` heads error messages.
 *
 * core's run() keeps a program's whole stdout until it exits, which an image of gigabytes cannot
 * be; so, as agent/deploy/multicast.ts does for udp-receiver, the program runs here through
 * execa with buffer: false under run()'s rules otherwise: arguments as an array, the tool
 * looked up on the same path (TOOL_MISSING with its package when absent), LC_ALL=C, a typed
 * error with the command, its status and its stderr's tail (COMMAND_FAILED; its cause is the
 * input stream's error when the input failed first), CANCELLED when `signal` aborts.
 */
export function decompress(format: 'zst' | 'xz' | 'gz', input: Readable, what: string, signal?: AbortSignal): Decompressor {
  if (format === 'gz') return gunzip(input, what, signal);
  const [command, args] = COMMANDS[format]!;
  const file = findTool(command);
  if (!file) throw new ToolMissingError(command, toolInfo(command)?.debianPackage ?? command);
  const child = execa(file, args, {
    reject: false,
    buffer: false,
    encoding: 'buffer',
    stdin: 'pipe',
    env: { ...process.env, PATH: searchPath(process.env).join(':'), LC_ALL: 'C' },
    extendEnv: false,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-8192);
  });
  let inputError: Error | undefined;
  let stopped = false;
  const kill = () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS).unref();
  };
  // The program may stop reading (it failed); the write that follows fails with EPIPE, which its exit status explains.
  child.stdin?.on('error', () => {});
  input.once('error', (e) => {
    inputError = e;
    input.unpipe(child.stdin!);
    child.stdin?.destroy();
  });
  input.pipe(child.stdin!);
  // Piped at once into a stream of our own: execa reads a subprocess's stdout itself when nobody
  // has by the next turn of the event loop (measured: a reader that started 300 ms late got no
  // bytes at all), and the image's first window may be read later than that.
  const output = new PassThrough({ highWaterMark: 1024 * 1024 });
  child.stdout!.pipe(output);
  const done = (async () => {
    const result = await child;
    if (stopped || signal?.aborted) throw new CancelledError(what);
    if (inputError || result.exitCode !== 0) {
      throw new CommandFailedError(
        { command: [command, ...args].join(' '), args, exitCode: result.exitCode, signal: result.signal, stderrTail: tail(stderr) },
        inputError ? `${what}: its input failed (${inputError.message})` : what,
        { hint: inputError ? 'The download or the disk holding the image failed: deploy again.' : `The image is not a valid ${format} stream, or is truncated: fetch it again.`, cause: inputError },
      );
    }
  })();
  done.catch(() => {});
  const stop = () => {
    stopped = true;
    input.unpipe(child.stdin!);
    input.destroy();
    kill();
  };
  const onAbort = () => stop();
  signal?.addEventListener('abort', onAbort, { once: true });
  void done.finally(() => signal?.removeEventListener('abort', onAbort)).catch(() => {});
  return { output, done, stop };
}

function gunzip(input: Readable, what: string, signal?: AbortSignal): Decompressor {
  const z = createGunzip({ chunkSize: 1024 * 1024 });
  let failure: Error | undefined;
  const done = new Promise<void>((resolve, reject) => {
    z.once('end', () => resolve());
    const fail = (e: Error, from: string) => {
      failure ??= e;
      reject(signal?.aborted ? new CancelledError(what) : new ImagepeError('INVALID_INPUT', `${what}: ${from} failed: ${e.message}`, { hint: 'The image is not a valid gzip stream, is truncated, or its download failed: fetch it again.', cause: e }));
    };
    z.once('error', (e) => fail(e, 'gunzip'));
    input.once('error', (e) => {
      fail(e, 'reading the image');
      z.destroy(e);
    });
  });
  done.catch(() => {});
  input.pipe(z);
  return {
    output: z,
    done,
    stop: () => {
      input.unpipe(z);
      input.destroy();
      if (!failure) z.destroy();
    },
  };
}
