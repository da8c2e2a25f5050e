import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError, ImagepeError, ServiceExitedError, ToolMissingError, findTool, run, startService, toolInfo, type Service } from '../core/index.js';
import { parseWimHeader, WIM_HEADER_SIZE } from '../imaging/index.js';
import { parseUdpSenderLine, SenderTally, type SessionReceiver, type UdpSenderEvent } from './udpcast-log.js';

/**
 * Multicast sessions: udpcast's udp-sender sends one pipable WIM once to every machine that
 * joined, and each PE applies it as it arrives (agent/deploy/multicast.ts). udpcast is
 * reliable multicast: after each slice of blocks the sender asks every receiver what it
 * missed and sends that again, so the slowest receiver sets the pace and a receiver that stops
 * answering holds everyone until it is dropped (see DEFAULT_RETRIES_UNTIL_DROP).
 */

/**
 * How many unanswered acknowledgement requests drop a receiver. udp-sender sends the first ten
 * requests a few milliseconds apart and every later one at least a second after the previous,
 * so a lost machine (powered off, cable pulled, PE crashed) holds the others for about
 * (retries − 10) s: measured 22 s with 30, 11 s with 20 here. udpcast's own default, 200, holds
 * them for over three minutes. Thirty still lets a live receiver ride out a disk that stalls
 * for several seconds, which would otherwise be dropped and fail its deploy.
 */
export const DEFAULT_RETRIES_UNTIL_DROP = 30;

/** udp-sender finishes the slice it is on, and on SIGTERM even the whole transfer, before it exits; stop() does not wait for that. */
const STOP_GRACE_MS = 2_000;
/** Between two sessions of serveMulticastSessions, so a sender that exits at once cannot spin. */
const MIN_SESSION_INTERVAL_MS = 1_000;

export interface MulticastSessionOptions {
  /** A pipable WIM (wimlib-imagex capture --pipable, or imagepe export --pipable): receivers apply it as it arrives. */
  file: string;
  /** The interface on the deployment network; it needs an IPv4 address with a broadcast address (udpcast's rendezvous is a broadcast). */
  interface: string;
  /** Even, 1024..65534. udpcast uses this port (receivers) and the next (the sender): both must pass the firewalls. */
  portbase: number;
  /** Start as soon as this many receivers joined (≥ 1). */
  minReceivers: number;
  /**
   * Start this many seconds after the first receiver joined even when fewer than minReceivers
   * did; 0 waits for minReceivers however long it takes. udp-sender checks every 2 s, so the
   * start comes up to 2 s later than either.
   */
  maxWaitSeconds: number;
  /** udpcast's --max-bitrate: "600m", "80000k" (bits per second, IP and UDP headers included). Unset: as fast as the receivers acknowledge. */
  maxBitrate?: string;
  /** Unanswered acknowledgement requests before a receiver is dropped; default DEFAULT_RETRIES_UNTIL_DROP. */
  retriesUntilDrop?: number;
  /** Give up when no receiver joined within this many seconds (the session ends with outcome no-receivers). Unset: wait until stopped. */
  startTimeoutSeconds?: number;
  /**
   * Run udp-sender in this network namespace (`ip netns exec NS udp-sender ...`). For tests,
   * and for servers that keep the deployment network in a namespace of its own.
   */
  netns?: string;
  /** Aborting stops the session, as stop() does. */
  signal?: AbortSignal;
  /** Each line udp-sender prints, read, as it arrives. */
  onEvent?: (event: UdpSenderEvent) => void;
}

export type MulticastSessionState = 'waiting' | 'sending' | 'done' | 'failed';

export interface SessionResult {
  /**
   * sent: the transfer ended with at least one receiver that has the whole file;
   * all-dropped: it started but every receiver was dropped or left; no-receivers: udp-sender
   * gave up (startTimeoutSeconds) before anyone joined; stopped: stop() or the signal ended it.
   */
  outcome: 'sent' | 'all-dropped' | 'no-receivers' | 'stopped';
  receivers: SessionReceiver[];
  /** Receivers that had the whole file at the end. */
  finished: number;
  dropped: number;
  /** The WIM's size in bytes. */
  fileBytes: number;
  /** Bytes of the file every remaining receiver acknowledged, from udp-sender's statistics (fileBytes once the transfer completed). */
  bytesAcknowledged: number;
  /** Blocks (up to 1456 bytes of data each) sent again because a receiver missed them, from udp-sender's statistics. */
  retransmittedBlocks: number;
  /**
   * What the interface sent while udp-sender ran, in bytes: its tx_bytes counter
   * (/sys/class/net/IF/statistics) read before the start and after the exit. It counts what
   * went on the wire, headers and retransmissions and rendezvous included, but also anything
   * else the interface sent meanwhile (HTTP, DHCP), so it is an upper bound for the session.
   * Undefined when the counter could not be read.
   */
  interfaceTxBytes: number | undefined;
  /**
   * What the interface sent from "Starting transfer" to udp-sender's exit, in bytes: the data,
   * its retransmissions and headers, with little else (the machines are all waiting in the
   * session then). Undefined when the transfer never started or the counter could not be read.
   */
  transferTxBytes: number | undefined;
  /** From "Starting transfer" to udp-sender's exit, in ms; 0 when the transfer never started. */
  transferMs: number;
  /** From the start of udp-sender to its exit, in ms (the wait for receivers included). */
  durationMs: number;
}

export interface MulticastSession {
  readonly options: Readonly<MulticastSessionOptions>;
  readonly state: MulticastSessionState;
  /** The receivers that joined so far, with what became of each. */
  readonly receivers: SessionReceiver[];
  /** Bytes of the file every receiver acknowledged so far (udp-sender's statistics, every half second). */
  readonly bytesSent: number;
  /**
   * Resolves when udp-sender has exited: after the transfer, after startTimeoutSeconds with no
   * receiver, or after stop(). Rejects with a ServiceExitedError (COMMAND_FAILED, udp-sender's
   * stderr tail) when it fails, for one the port is taken ("Address already in use").
   */
  readonly done: Promise<SessionResult>;
  /** Ends the session now (SIGTERM, SIGKILL after 2 s): receivers in the middle of the transfer fail. Resolves when udp-sender has exited. */
  stop(): Promise<void>;
}

/**
 * Starts one multicast session: `udp-sender --file F --interface IF --portbase P
 * --min-receivers N --max-wait T --retries-until-drop R --nokbd [--max-bitrate B]
 * [--start-timeout S]`, run as a service (never through a shell). The session waits for
 * receivers, sends the file once to all that joined, and ends.
 *
 * Throws at once: INVALID_INPUT for options udpcast would refuse or misread (an odd portbase,
 * minReceivers < 1) or a WIM that is not pipable; NOT_FOUND when the file is missing;
 * WIM_CORRUPT when it is not a WIM; TOOL_MISSING when udp-sender (package udpcast) or, with
 * netns, ip is not installed. Later failures reject `done`.
 */
export function startMulticastSession(options: MulticastSessionOptions): MulticastSession {
  const args = udpSenderArgs(options);
  const fileBytes = checkPipableWim(options.file);
  for (const tool of options.netns ? ['udp-sender', 'ip'] : ['udp-sender']) {
    if (!findTool(tool)) throw new ToolMissingError(tool, toolInfo(tool)?.debianPackage ?? (tool === 'ip' ? 'iproute2' : undefined));
  }

  const tally = new SenderTally();
  let state: MulticastSessionState = 'waiting';
  let service: Service | undefined;
  let stopRequested = false;
  let transferStarted: number | undefined;
  let txAtTransfer: Promise<number | undefined> | undefined;
  const stopStart = new AbortController();
  const what = `the multicast session for ${options.file} on ${options.interface}, port ${options.portbase}`;
  const hint =
    'Check that no other session uses this portbase (each image needs its own even portbase, two ports apart), ' +
    `that ${options.interface} is up with an IPv4 and a broadcast address (ip addr show ${options.interface}: brd), and that udp-sender runs as root or may bind the ports.`;

  const onLine = (line: string) => {
    const event = parseUdpSenderLine(line);
    if (!event) return;
    tally.push(event);
    if (event.kind === 'started') {
      state = 'sending';
      transferStarted = Date.now();
      txAtTransfer = txBytes(options);
    }
    options.onEvent?.(event);
  };

  const stop = async (): Promise<void> => {
    stopRequested = true;
    stopStart.abort();
    await service?.stop();
    await done.then(
      () => undefined,
      () => undefined,
    );
  };
  const onAbort = () => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) {
    stopRequested = true;
    stopStart.abort();
  }

  const done = (async (): Promise<SessionResult> => {
    const started = Date.now();
    const txBefore = await txBytes(options);
    try {
      const [command, commandArgs] = options.netns ? ['ip', ['netns', 'exec', options.netns, 'udp-sender', ...args]] : ['udp-sender', args];
      try {
        service = await startService(command, commandArgs, {
          what,
          hint,
          // Printed once its sockets are bound; a port in use fails before it.
          readyLine: /^(?:Compressed )?UDP sender for |^Broadcasting control to /,
          startTimeoutMs: 15_000,
          stopGraceMs: STOP_GRACE_MS,
          signal: stopStart.signal,
          onStdoutLine: onLine,
          onStderrLine: onLine,
        });
      } catch (e) {
        if (e instanceof CancelledError && stopRequested) return result('stopped');
        throw e;
      }
      if (stopRequested) await service.stop();
      const exit = await service.exited;
      if (stopRequested) return result('stopped');
      if (exit.exitCode !== 0) throw new ServiceExitedError(command, commandArgs, exit, service.outputTail(), what, hint);
      if (!tally.started) return result('no-receivers');
      return result(tally.count('finished') > 0 ? 'sent' : 'all-dropped');
    } catch (e) {
      state = 'failed';
      throw e;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }

    async function result(outcome: SessionResult['outcome']): Promise<SessionResult> {
      const txAfter = await txBytes(options);
      state = 'done';
      return {
        outcome,
        receivers: tally.list(),
        finished: tally.count('finished'),
        dropped: tally.count('dropped'),
        fileBytes,
        bytesAcknowledged: tally.bytes,
        retransmittedBlocks: tally.retransmittedBlocks,
        interfaceTxBytes: txBefore !== undefined && txAfter !== undefined ? txAfter - txBefore : undefined,
        transferTxBytes: await txAtTransfer?.then((at) => (at !== undefined && txAfter !== undefined ? txAfter - at : undefined)),
        transferMs: transferStarted === undefined ? 0 : Date.now() - transferStarted,
        durationMs: Date.now() - started,
      };
    }
  })();
  // The caller may only ever call stop(); a failure it never awaits must not crash the process.
  done.catch(() => {});

  return {
    options,
    get state() {
      return state;
    },
    get receivers() {
      return tally.list();
    },
    get bytesSent() {
      return tally.bytes;
    },
    done,
    stop,
  };
}

/** udp-sender's arguments for these options (pure; validates them). Throws INVALID_INPUT. */
export function udpSenderArgs(options: MulticastSessionOptions): string[] {
  const retries = options.retriesUntilDrop ?? DEFAULT_RETRIES_UNTIL_DROP;
  checkPortbase(options.portbase);
  if (!/^[\w.:@-]{1,15}$/.test(options.interface)) throw invalid(`"${options.interface}" is not a network interface name`, 'Give the interface on the deployment network, as ip link lists it.');
  if (!Number.isInteger(options.minReceivers) || options.minReceivers < 1) throw invalid(`minReceivers must be a whole number ≥ 1, not ${options.minReceivers}`, 'Give how many machines the session waits for.');
  if (!Number.isInteger(options.maxWaitSeconds) || options.maxWaitSeconds < 0) throw invalid(`maxWaitSeconds must be a whole number of seconds ≥ 0, not ${options.maxWaitSeconds}`, '0 waits for minReceivers without limit.');
  // udp-sender counts the first ten requests in milliseconds: fewer than about 12 drops a receiver that merely paused.
  if (!Number.isInteger(retries) || retries < 12) throw invalid(`retriesUntilDrop must be a whole number ≥ 12, not ${retries}`, `The default, ${DEFAULT_RETRIES_UNTIL_DROP}, drops a lost receiver after about ${DEFAULT_RETRIES_UNTIL_DROP - 10} s.`);
  if (options.maxBitrate !== undefined && !/^\d+(?:\.\d+)?[kmg]?$/i.test(options.maxBitrate)) throw invalid(`"${options.maxBitrate}" is not a bit rate`, 'Write it as udpcast does: 600m, 80000k or 1000000 (bits per second).');
  const start = options.startTimeoutSeconds;
  if (start !== undefined && (!Number.isInteger(start) || start < 1)) throw invalid(`startTimeoutSeconds must be a whole number ≥ 1, not ${start}`, 'Leave it unset to wait until the session is stopped.');
  const args = ['--file', options.file, '--interface', options.interface, '--portbase', String(options.portbase)];
  args.push('--min-receivers', String(options.minReceivers), '--max-wait', String(options.maxWaitSeconds), '--retries-until-drop', String(retries), '--nokbd');
  if (options.maxBitrate !== undefined) args.push('--max-bitrate', options.maxBitrate);
  if (start !== undefined) args.push('--start-timeout', String(start));
  return args;
}

/** Throws INVALID_INPUT unless `portbase` is one udpcast can use (even, so the pair does not straddle another session's). */
export function checkPortbase(portbase: number): void {
  if (!Number.isInteger(portbase) || portbase < 1024 || portbase > 65534 || portbase % 2 !== 0) {
    throw invalid(`portbase must be an even port number from 1024 to 65534, not ${portbase}`, 'udpcast uses the portbase and the port after it; 9000 is its usual one.');
  }
}

/** The WIM's size; throws unless it is a pipable WIM (read from its first 208 bytes). */
function checkPipableWim(file: string): number {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new ImagepeError('NOT_FOUND', `${file} cannot be read: ${(e as Error).message}`, { hint: 'Give the path of the pipable WIM to send.', cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw invalid(`${file} is not a file`, 'Give the path of the pipable WIM to send.');
    const head = Buffer.alloc(WIM_HEADER_SIZE);
    readSync(fd, head, 0, WIM_HEADER_SIZE, 0);
    if (!parseWimHeader(head, file).pipable) {
      throw invalid(`${file} is not a pipable WIM, so receivers cannot apply it as it arrives`, `Make a pipable copy and send that: imagepe export ${file} all NEW.wim --pipable.`);
    }
    return st.size;
  } finally {
    closeSync(fd);
  }
}

/** The interface's tx_bytes counter, read in its namespace; undefined when it cannot be read. */
async function txBytes(options: MulticastSessionOptions): Promise<number | undefined> {
  const path = `/sys/class/net/${options.interface}/statistics/tx_bytes`;
  try {
    // `ip netns exec` mounts the namespace's own /sys for the command it runs.
    const text = options.netns ? (await run('ip', ['netns', 'exec', options.netns, 'cat', path], { timeoutMs: 10_000 })).stdout : await readFile(path, 'utf8');
    const n = Number(text.trim());
    return Number.isSafeInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function invalid(message: string, hint: string): ImagepeError {
  return new ImagepeError('INVALID_INPUT', message, { hint });
}

export interface MulticastSessionsOptions extends MulticastSessionOptions {
  /** Called as each session starts, with its number from 1. */
  onSession?: (session: MulticastSession, number: number) => void;
  /** Called as each session ends. */
  onResult?: (result: SessionResult, number: number) => void;
}

export interface MulticastSessions {
  /** The session that waits for receivers or sends; undefined between two sessions and once stopped. */
  readonly current: MulticastSession | undefined;
  /** The results of the sessions that ended, in order. */
  readonly results: readonly SessionResult[];
  /**
   * Resolves with every session's result once stop() was called (or the signal aborted) and the
   * current session ended. Rejects with the failing session's error when one fails (a port in
   * use, a missing interface): the same failure would only repeat.
   */
  readonly done: Promise<SessionResult[]>;
  /** Stops the current session and starts no other; resolves with `done`'s results. */
  stop(): Promise<SessionResult[]>;
}

/**
 * Serves one image by multicast session after session, as WDS does: each waits for
 * minReceivers machines (or maxWaitSeconds after the first), sends, and when it ends the next
 * one starts and waits for the next machines, until stop(). A machine that asks while a
 * transfer runs keeps asking (udp-receiver repeats its request until its start timeout) and
 * joins the next session. Validates the options as startMulticastSession does and throws the
 * same errors at once.
 */
export function serveMulticastSessions(options: MulticastSessionsOptions): MulticastSessions {
  udpSenderArgs(options);
  checkPipableWim(options.file);
  const results: SessionResult[] = [];
  let current: MulticastSession | undefined;
  const stopAll = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stopAll.signal]) : stopAll.signal;
  const { onSession, onResult, ...sessionOptions } = options;

  const done = (async () => {
    for (let n = 1; !signal.aborted; n++) {
      const began = Date.now();
      current = startMulticastSession({ ...sessionOptions, signal });
      onSession?.(current, n);
      try {
        const r = await current.done;
        results.push(r);
        onResult?.(r, n);
      } finally {
        current = undefined;
      }
      const rest = MIN_SESSION_INTERVAL_MS - (Date.now() - began);
      if (rest > 0 && !signal.aborted) await sleep(rest, undefined, { signal }).catch(() => undefined);
    }
    return results;
  })();
  done.catch(() => {});

  return {
    get current() {
      return current;
    },
    results,
    done,
    async stop() {
      stopAll.abort();
      return done;
    },
  };
}
