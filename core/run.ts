import { StringDecoder } from 'node:string_decoder';
import { execa } from 'execa';
import { CancelledError, CommandFailedError, CommandTimeoutError, ToolMissingError } from './errors.js';
import { findTool, searchPath, toolInfo } from './tools.js';

export interface RunOptions {
  /** Kill the program after this long. Every call has one; the default suits short queries. */
  timeoutMs?: number;
  signal?: AbortSignal;
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Bytes or text written to the program's standard input. */
  input?: string | Uint8Array;
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

  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  const child = execa(file, [...args], {
    reject: false,
    timeout: timeoutMs,
    cancelSignal: options.signal,
    forceKillAfterDelay: 5_000,
    cwd: options.cwd,
    env: { ...env, PATH: searchPath(env).join(':'), LC_ALL: 'C' },
    extendEnv: false,
    input: options.input,
    stdin: options.input === undefined ? 'ignore' : 'pipe',
    stripFinalNewline: false,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (options.onStdoutLine) splitLines(child.stdout, options.onStdoutLine);
  if (options.onStderrLine) splitLines(child.stderr, options.onStderrLine);
  const result = await child;
  const durationMs = Date.now() - started;
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');

  if (result.isCanceled || (options.signal?.aborted && result.failed)) throw new CancelledError(options.what ?? command);
  if (result.timedOut) throw new CommandTimeoutError(command, timeoutMs, tail(stderr));
  const ok = options.okExitCodes ?? [0];
  if (result.exitCode === undefined || !ok.includes(result.exitCode)) {
    throw new CommandFailedError(
      {
        command: [command, ...args].join(' '),
        args,
        exitCode: result.exitCode,
        signal: result.signal,
        stderrTail: tail(stderr || stdout),
      },
      options.what,
      { hint: options.hint },
    );
  }
  return { command, args, exitCode: result.exitCode, stdout, stderr, durationMs };
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
