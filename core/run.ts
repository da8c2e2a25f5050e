import { StringDecoder } from 'node:string_decoder';
import { readFile, readdir } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { execa } from 'execa';
import { CancelledError, CommandFailedError, CommandTimeoutError, ImagepeError, ToolMissingError } from './errors.js';
import { findTool, searchPath, toolInfo } from './tools.js';

export interface RunOptions {
  /** Kill the program after this long. Every call has one; the default suits short queries. */
  timeoutMs?: number;
  /**
   * Kill the program when it has printed nothing for this long. Long jobs (a 20 GB apply from
   * a share) set a generous total timeout and rely on this to notice a hang early.
   */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Bytes or text written to the program's standard input. */
  input?: string | Uint8Array;
  /**
   * A byte stream piped to the program's standard input, with backpressure. When the program
   * exits the stream is unpiped and left open, so the caller can read what the program did not
   * take (bytes already written into the pipe are gone). If the stream fails (a dropped
   * connection), the program's standard input is closed so it sees end of file (and is stopped if
   * it has not exited 3 s later), and run() throws a CommandFailedError whose `cause` is the
   * stream's error, whatever the program's exit status.
   */
  stdin?: NodeJS.ReadableStream | Readable;
  /** Called for each line (split on \n and on \r, which progress meters use) as it arrives. */
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  /** Exit statuses that count as success (default: only 0). */
  okExitCodes?: readonly number[];
  /** What the call was for, used as the head of the error message: "capturing /srv/ref". */
  what?: string;
  /** A hint appended to the error when the program fails. */
  hint?: string;
}

export interface RunResult {
  command: string;
  args: readonly string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export const DEFAULT_TIMEOUT_MS = 120_000;
const STDERR_TAIL_LINES = 15;
const INPUT_FAILURE_GRACE_MS = 3_000;

/**
 * The one way imagepe runs an external program: arguments as an array (never through a shell),
 * a timeout and optional cancellation on every call, and failures turned into typed errors
 * that carry the command, its exit status or signal, and the tail of its stderr.
 */
export async function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const env = { ...process.env, ...options.env };
  const file = findTool(command, env);
  if (!file) throw new ToolMissingError(command, toolInfo(command)?.debianPackage);
  if (options.signal?.aborted) throw new CancelledError(options.what ?? command);
  if (options.input !== undefined && options.stdin !== undefined) throw new ImagepeError('INVALID_INPUT', `${command}: give its standard input as input or as stdin, not both`);

  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  const child = execa(file, [...args], {
    reject: false,
    cwd: options.cwd,
    env: { ...env, PATH: searchPath(env).join(':'), LC_ALL: 'C' },
    extendEnv: false,
    input: options.input,
    stdin: options.input === undefined && options.stdin === undefined ? 'ignore' : 'pipe',
    stripFinalNewline: false,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (options.onStdoutLine) splitLines(child.stdout, options.onStdoutLine);
  if (options.onStderrLine) splitLines(child.stderr, options.onStderrLine);

  // Timeouts and cancellation stop the whole process tree: a helper the tool started (a shell's
  // child, a mount helper) would otherwise keep the output pipes open and the call would hang.
  let stoppedBy: 'timeout' | 'idle' | 'cancel' | 'input' | undefined;
  const stop = (why: 'timeout' | 'idle' | 'cancel' | 'input') => {
    if (stoppedBy) return;
    stoppedBy = why;
    if (child.pid !== undefined) void killTree(child.pid);
  };
  const timer = setTimeout(() => stop('timeout'), timeoutMs);
  const idleMs = options.idleTimeoutMs;
  let idleTimer: NodeJS.Timeout | undefined;
  if (idleMs !== undefined) {
    const arm = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => stop('idle'), idleMs);
    };
    arm();
    child.stdout?.on('data', arm);
    child.stderr?.on('data', arm);
  }
  const onAbort = () => stop('cancel');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let inputError: Error | undefined;
  let inputTimer: NodeJS.Timeout | undefined;
  const unpipe =
    options.stdin && child.stdin
      ? feed(options.stdin, child.stdin, (e) => {
          inputError = e;
          // A program that reads its input sees end of file and fails at once; one that does not read it is stopped.
          inputTimer = setTimeout(() => stop('input'), INPUT_FAILURE_GRACE_MS);
        })
      : undefined;
  const result = await child.finally(() => {
    unpipe?.();
    clearTimeout(inputTimer);
    clearTimeout(timer);
    clearTimeout(idleTimer);
    options.signal?.removeEventListener('abort', onAbort);
  });
  const durationMs = Date.now() - started;
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');

  if (stoppedBy === 'cancel') throw new CancelledError(options.what ?? command);
  if (stoppedBy === 'timeout') throw new CommandTimeoutError(command, timeoutMs, tail(stderr));
  if (stoppedBy === 'idle') throw new CommandTimeoutError(command, idleMs ?? 0, tail(stderr), 'printed nothing for');
  const ok = options.okExitCodes ?? [0];
  if (inputError || result.exitCode === undefined || !ok.includes(result.exitCode)) {
    throw new CommandFailedError(
      {
        command: [command, ...args].join(' '),
        args,
        exitCode: result.exitCode,
        signal: result.signal,
        stderrTail: tail(stderr || stdout),
      },
      inputError ? `${options.what ?? command}: its input stream failed (${inputError.message})` : options.what,
      { hint: options.hint, cause: inputError },
    );
  }
  return { command, args, exitCode: result.exitCode, stdout, stderr, durationMs };
}

/** Pipes `input` into a program's standard input; returns the function that unpipes it once the program has exited. */
function feed(input: NodeJS.ReadableStream, stdin: Writable, onError: (e: Error) => void): () => void {
  // A program may exit without reading all of its input (wimlib stops after the image it
  // extracts); the write that follows fails with EPIPE, which is no error of the call.
  stdin.on('error', () => {});
  const fail = (e: Error) => {
    onError(e);
    input.unpipe(stdin);
    stdin.destroy();
  };
  input.once('error', fail);
  input.pipe(stdin);
  return () => {
    input.unpipe(stdin);
    input.off('error', fail);
  };
}

/** The last lines of a program's output, with progress-meter redraws collapsed. */
export function tail(text: string, lines = STDERR_TAIL_LINES): string {
  const all = text
    .split(/\r?\n/)
    .map((l) => {
      const parts = l.split('\r');
      return parts[parts.length - 1] ?? '';
    })
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
  return all.slice(-lines).join('\n');
}

function splitLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let pending = '';
  const decoder = new StringDecoder('utf8');
  stream.on('data', (chunk: string | Buffer) => {
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    const parts = pending.split(/\r\n|\r|\n/);
    pending = parts.pop() ?? '';
    for (const part of parts) if (part.length > 0) onLine(part);
  });
  stream.on('end', () => {
    pending += decoder.end();
    if (pending.length > 0) onLine(pending);
    pending = '';
  });
}

/** SIGTERM to a process and all its descendants (read from /proc), SIGKILL to survivors after 5 s. */
async function killTree(pid: number): Promise<void> {
  const pids = [...(await descendants(pid)), pid];
  const send = (sig: NodeJS.Signals) => {
    for (const p of pids) {
      try {
        process.kill(p, sig);
      } catch {
        // already gone
      }
    }
  };
  send('SIGTERM');
  setTimeout(() => send('SIGKILL'), 5_000).unref();
}

async function descendants(root: number): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // The command name is in parentheses and may hold spaces; the parent pid is the 2nd field after it.
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (after[1]) parentOf.set(Number(name), Number(after[1]));
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        walk(child);
        out.push(child);
      }
    }
  };
  walk(root);
  return out;
}
