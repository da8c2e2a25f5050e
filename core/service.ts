import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { CancelledError, CommandFailedError, ImagepeError, ToolMissingError } from './errors.js';
import { tail } from './run.js';
import { findTool, searchPath, toolInfo } from './tools.js';

/**
 * A long-running program (a server such as dnsmasq) beside run()'s one-shot calls, under the same
 * rules: arguments as an array (never a shell), a typed error when the tool is missing, every wait
 * bounded, and failures that carry the command, its exit status and the tail of its stderr.
 */
export interface ServiceOptions {
  /** What the service is for, the head of error messages: "the DHCP and TFTP server". */
  what?: string;
  /** Appended to the errors when the service fails to start or dies. */
  hint?: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Each line of output as it arrives (split on \n). */
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  /** Start check: the service counts as started once a line of either stream matches. */
  readyLine?: RegExp;
  /** Start check: polled every `readyIntervalMs` until it returns true (a port that answers). */
  readyCheck?: () => boolean | Promise<boolean>;
  /** Default 100 ms. */
  readyIntervalMs?: number;
  /** How long the start check may take before the service is stopped and startService throws; default 15 s. */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before it sends SIGKILL; default 5 s. */
  stopGraceMs?: number;
  /** Aborting stops the service (as stop() does); during the start, startService throws CancelledError. */
  signal?: AbortSignal;
  /** Called once if the service exits after it started without stop() having been called. */
  onUnexpectedExit?: (error: ServiceExitedError) => void;
}

export interface ServiceExit {
  /** Undefined when a signal ended it. */
  exitCode: number | undefined;
  signal: string | undefined;
}

export interface Service {
  readonly command: string;
  readonly args: readonly string[];
  readonly pid: number;
  /** False once the process has exited. */
  readonly running: boolean;
  /** Resolves when the process has exited, however it ended; never rejects. */
  readonly exited: Promise<ServiceExit>;
  /** The last lines of its stderr (or of stdout when stderr is empty). */
  outputTail(): string;
  /** SIGTERM to the service's process group, SIGKILL after the grace period; resolves once it has exited. */
  stop(): Promise<ServiceExit>;
}

/** A service that exited on its own: before its start check passed, or later while it ran. */
export class ServiceExitedError extends CommandFailedError {
  constructor(command: string, args: readonly string[], exit: ServiceExit, stderrTail: string, what: string | undefined, hint: string | undefined) {
    super({ command: [command, ...args].join(' '), args, exitCode: exit.exitCode, signal: exit.signal, stderrTail }, what, { hint });
  }
}

/** A service whose start check did not pass in time; it has been stopped. */
export class ServiceNotReadyError extends ImagepeError {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
    readonly stderrTail: string,
    what: string | undefined,
    hint: string | undefined,
  ) {
    const head = what ? `${what}: ` : '';
    super('COMMAND_TIMEOUT', `${head}${command} did not report that it started within ${Math.round(timeoutMs / 100) / 10} s and was stopped${stderrTail ? `\n${stderrTail.split('\n').map((l) => `  | ${l}`).join('\n')}` : ''}`, {
      hint: hint ?? 'Its output above may say why; a busy machine may need a longer start timeout.',
    });
  }
}

const TAIL_LINES = 15;
const DEFAULT_START_TIMEOUT_MS = 15_000;
const DEFAULT_STOP_GRACE_MS = 5_000;

// Services still running when Node exits (an uncaught error, process.exit) are sent SIGTERM, so
// a DHCP server never outlives the imagepe that started it. The children run in process groups
// of their own, which execa's own cleanup skips.
const live = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of live) signalGroup(pgid, 'SIGTERM');
  });
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

/**
 * Starts `command` and resolves once its start check passes (with neither check given, once the
 * process has been spawned). The program runs in a process group of its own, so a terminal's
 * Ctrl-C reaches imagepe alone and the caller decides when the service stops, and stop() reaches
 * any helper it started.
 *
 * Throws ToolMissingError when the program is not installed, ServiceExitedError when it exits
 * before the check passes (with its stderr tail), ServiceNotReadyError when the check does not
 * pass within `startTimeoutMs`, CancelledError when `signal` aborts during the start.
 */
export async function startService(command: string, args: readonly string[], options: ServiceOptions = {}): Promise<Service> {
  const env = { ...process.env, ...options.env };
  const file = findTool(command, env);
  if (!file) throw new ToolMissingError(command, toolInfo(command)?.debianPackage);
  if (options.signal?.aborted) throw new CancelledError(options.what ?? command);

  const child = execa(file, [...args], {
    reject: false,
    buffer: false,
    detached: true,
    cwd: options.cwd,
    env: { ...env, PATH: searchPath(env).join(':'), LC_ALL: 'C' },
    extendEnv: false,
    stdin: 'ignore',
    encoding: 'utf8',
  });
  const pid = child.pid;
  if (pid === undefined) {
    const r = await child;
    throw new ServiceExitedError(command, args, { exitCode: r.exitCode, signal: r.signal }, tail(String(r.stderr ?? '')), options.what, options.hint ?? 'The program could not be started.');
  }
  installExitHook();
  live.add(pid);

  const stderrLines: string[] = [];
  const stdoutLines: string[] = [];
  const keep = (store: string[], line: string) => {
    store.push(line);
    if (store.length > TAIL_LINES) store.shift();
  };
  const outputTail = () => (stderrLines.length > 0 ? stderrLines : stdoutLines).join('\n');
  let onReadyLine: ((line: string) => void) | undefined;
  const follow = (stream: NodeJS.ReadableStream | null, store: string[], callback: ((line: string) => void) | undefined) => {
    if (!stream) return;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      keep(store, line);
      callback?.(line);
      onReadyLine?.(line);
    });
  };
  follow(child.stdout, stdoutLines, options.onStdoutLine);
  follow(child.stderr, stderrLines, options.onStderrLine);

  let running = true;
  let stopping = false;
  const exited: Promise<ServiceExit> = child.then((r) => {
    running = false;
    live.delete(pid);
    // The leader is gone; helpers it left in its group go with it.
    signalGroup(pid, 'SIGKILL');
    return { exitCode: r.exitCode, signal: r.signal };
  });

  const stop = async (): Promise<ServiceExit> => {
    if (!running) return exited;
    stopping = true;
    signalGroup(pid, 'SIGTERM');
    const grace = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), grace);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  const onAbort = () => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  void exited.then(() => options.signal?.removeEventListener('abort', onAbort));

  // The start: whichever comes first of the check passing, the process exiting, the timeout, an abort.
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const ready = new Promise<'ready'>((resolve) => {
    if (!options.readyLine && !options.readyCheck) return resolve('ready');
    if (options.readyLine) {
      const pattern = options.readyLine;
      onReadyLine = (line) => {
        if (pattern.test(line)) resolve('ready');
      };
    }
    if (options.readyCheck) {
      const check = options.readyCheck;
      void (async () => {
        while (running) {
          if (await Promise.resolve(check()).catch(() => false)) return resolve('ready');
          await sleep(options.readyIntervalMs ?? 100);
        }
      })();
    }
  });
  const abort = new AbortController();
  const timeout = sleep(startTimeoutMs, 'timeout' as const, { signal: abort.signal }).catch(() => 'ready' as const);
  const cancelled = new Promise<'cancelled'>((resolve) => {
    if (options.signal) options.signal.addEventListener('abort', () => resolve('cancelled'), { once: true });
  });
  const outcome = await Promise.race([ready, exited.then(() => 'exited' as const), timeout, cancelled]);
  abort.abort();
  onReadyLine = undefined;

  if (outcome === 'exited' || (outcome === 'ready' && !running)) {
    throw new ServiceExitedError(command, args, await exited, outputTail(), options.what, options.hint);
  }
  if (outcome === 'timeout') {
    await stop();
    throw new ServiceNotReadyError([command, ...args].join(' '), startTimeoutMs, outputTail(), options.what, options.hint);
  }
  if (outcome === 'cancelled') {
    await stop();
    throw new CancelledError(options.what ?? command);
  }

  void exited.then((exit) => {
    if (!stopping) options.onUnexpectedExit?.(new ServiceExitedError(command, args, exit, outputTail(), options.what, options.hint));
  });

  return {
    command,
    args,
    pid,
    get running() {
      return running;
    },
    exited,
    outputTail,
    stop,
  };
}
