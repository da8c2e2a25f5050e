import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Transform, type Readable } from 'node:stream';
import { execa } from 'execa';
import { CancelledError, CommandFailedError, ImagepeError, ToolMissingError, findTool, formatBytes, run, searchPath, toolInfo } from '../../core/index.js';
// The parser alone, not serve/index.js: the PE bundle carries none of the server (express, dnsmasq).
import { parseUdpReceiverLine, type UdpReceiverEvent } from '../../serve/udpcast-log.js';

/**
 * The PE's side of a multicast session (serve/multicast.ts): udp-receiver joins the session
 * and writes the image to its stdout, which is handed on as a stream for imaging.applyStream,
 * so the image is applied as it arrives and never staged.
 */

export interface MulticastReceiveOptions {
  /** The interface to receive on. Default: the one with the route to `server`, or without `server` the one with the default route. */
  interface?: string;
  /** The imagepe server's IPv4 address, to choose the interface by. */
  server?: string;
  /** The session's portbase (even): udp-receiver listens on it and asks the sender on portbase+1. */
  portbase: number;
  /** Fail when no sender answers, or the transfer has not begun, within this many seconds. */
  startTimeoutSeconds: number;
  /** Fail when the sender sends nothing for this many seconds once the transfer has begun. */
  receiveTimeoutSeconds: number;
  /**
   * The socket's receive buffer in bytes (udp-receiver --rcvbuf); default
   * DEFAULT_RECEIVE_BUFFER_BYTES. The kernel caps it at net.core.rmem_max.
   */
  receiveBufferBytes?: number;
  /** Aborting stops the receiver, as stop() does. */
  signal?: AbortSignal;
  /**
   * Run udp-receiver in this network namespace (`ip netns exec NS udp-receiver ...`): for tests
   * that play several machines on one host, and for multi-homed hosts that keep the deployment
   * network in a namespace. `interface` is then required (the routes read to choose one are
   * this process's, not the namespace's).
   */
  netns?: string;
  /** Each line udp-receiver prints, read, as it arrives: progress every half second. */
  onEvent?: (event: UdpReceiverEvent) => void;
}

export interface MulticastReceived {
  /** Bytes that came out of the stream: the whole file. */
  bytes: number;
  durationMs: number;
  /** The sender's address. */
  sender: string | undefined;
}

export interface MulticastReception {
  /**
   * The file's bytes as they arrive, with backpressure (a receiver that cannot keep up slows the
   * session down for every machine, up to its drop). It ends only after udp-receiver exited
   * with success; when it fails, the stream is destroyed with the MulticastReceiveError that
   * `done` rejects with, so a reader such as applyStream fails too.
   */
  readonly stream: Readable;
  /**
   * Resolves once udp-receiver exited with success and the stream has ended. Rejects with a
   * MulticastReceiveError (COMMAND_FAILED, with `reason`, udp-receiver's stderr tail and a hint)
   * or, after stop() or the signal, a CancelledError.
   */
  readonly done: Promise<MulticastReceived>;
  /** udp-receiver's process id (in tests, to kill it as a crashed machine would lose it). */
  readonly pid: number | undefined;
  /** The interface it receives on. */
  readonly interface: string;
  /** Stops the receiver (SIGTERM, SIGKILL after 3 s); the stream fails with CancelledError. Resolves once it has exited. */
  stop(): Promise<void>;
}

/** Why a reception failed, in the order the checks apply. */
export type MulticastFailureReason = 'no-sender' | 'no-address' | 'no-broadcast' | 'sender-silent' | 'dropped' | 'killed' | 'failed';

/** udp-receiver failed; `reason` says how, the message what happened, the hint what to do. */
export class MulticastReceiveError extends CommandFailedError {
  constructor(
    readonly reason: MulticastFailureReason,
    command: string,
    args: readonly string[],
    exit: { exitCode: number | undefined; signal: string | undefined },
    stderrTail: string,
    what: string,
    hint: string,
  ) {
    super({ command: [command, ...args].join(' '), args, exitCode: exit.exitCode, signal: exit.signal, stderrTail }, what, { hint });
  }
}

/**
 * Packets that arrive while udp-receiver's buffer is full are lost and sent again to everyone.
 * With the kernel's usual 208 KiB, three receivers on a bridge had 6-20 % of the blocks sent
 * again; with 4 MiB, none. The kernel caps the request at net.core.rmem_max (208 KiB on a
 * stock kernel), so the PE raises that for it to take effect.
 */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

const STOP_GRACE_MS = 3_000;
const TAIL_LINES = 15;

/**
 * Joins the multicast session on `portbase` and returns its data as a stream: `udp-receiver
 * --interface IF --portbase P --nokbd --start-timeout S --receive-timeout R --rcvbuf B`, its
 * stdout the file, its stderr read for progress and for why it failed.
 *
 * Throws at once: TOOL_MISSING when udp-receiver (package udpcast) or, with netns, ip is not
 * installed; INVALID_INPUT for an odd portbase, timeouts that are not whole seconds ≥ 1, a
 * receive buffer under 64 KiB, a server that is not an IPv4 address, netns without interface,
 * or no interface to choose; NOT_FOUND when no route leads to `server`.
 */
export function receiveMulticast(options: MulticastReceiveOptions): MulticastReception {
  checkOptions(options);
  const file = findTool('udp-receiver');
  if (!file) throw new ToolMissingError('udp-receiver', toolInfo('udp-receiver')?.debianPackage);
  if (options.netns && !findTool('ip')) throw new ToolMissingError('ip', 'iproute2');
  const iface = options.interface ?? interfaceToward(readFileSync('/proc/net/route', 'utf8'), options.server);
  const args = udpReceiverArgs({ ...options, interface: iface });
  const [command, commandArgs] = options.netns ? ['ip', ['netns', 'exec', options.netns, file, ...args]] : [file, args];
  const where = `receiving the image by multicast on ${iface}, port ${options.portbase}`;

  // core/run.ts holds a program's whole output until it exits and core/service.ts reads stdout
  // as lines of text; the image is gigabytes of bytes, so udp-receiver runs here with
  // buffer: false and its stdout passed on as it comes, under the same rules otherwise.
  const started = Date.now();
  const child = execa(command, commandArgs, {
    reject: false,
    buffer: false,
    encoding: 'buffer',
    stdin: 'ignore',
    env: { ...process.env, PATH: searchPath(process.env).join(':'), LC_ALL: 'C' },
    extendEnv: false,
  });

  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  const seen = { connected: false, dropped: false, silent: false, sender: undefined as string | undefined };
  const lines: string[] = [];
  let lastProgress: string | undefined;
  let stderrDone = Promise.resolve();
  if (child.stderr) {
    const reader = createInterface({ input: child.stderr, crlfDelay: Infinity });
    // Its last lines ("Dropped by server") may be read after the exit is known; the failure is told from them.
    stderrDone = new Promise((resolve) => reader.once('close', resolve));
    reader.on('line', (line) => {
      const event = parseUdpReceiverLine(line);
      if (!event) return;
      if (event.kind === 'progress') lastProgress = line.trim();
      else {
        lines.push(line.trim());
        if (lines.length > TAIL_LINES) lines.shift();
      }
      if (event.kind === 'connected') {
        seen.connected = true;
        seen.sender = event.sender;
      }
      if (event.kind === 'dropped') seen.dropped = true;
      if (event.kind === 'sender-silent') seen.silent = true;
      options.onEvent?.(event);
    });
  }
  const stderrTail = () => [...lines.filter((l) => l !== 'Transfer complete.'), ...(lastProgress ? [lastProgress] : [])].join('\n');

  // The stream ends only once the exit status is known: udp-receiver closes its stdout before
  // it exits, and a reader that saw the end first would take a cut-off image for a whole one.
  const stdoutDone = new Promise<void>((resolve) => {
    if (!child.stdout) return resolve();
    child.stdout.once('end', resolve).once('close', resolve);
    child.stdout.pipe(stream, { end: false });
  });

  let stoppedBy: 'stop' | 'reader' | undefined;
  let settled = false;
  const kill = () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS).unref();
  };
  // A reader that gives up (applyStream failed on its own) leaves the session at once, rather
  // than after its drop timeout, and lets the others go on.
  stream.once('close', () => {
    if (!settled) {
      stoppedBy ??= 'reader';
      child.stdout?.unpipe(stream);
      child.stdout?.resume();
      kill();
    }
  });

  const done = (async (): Promise<MulticastReceived> => {
    const result = await child;
    await Promise.all([stdoutDone, stderrDone]);
    const exit = { exitCode: result.exitCode, signal: result.signal };
    if (stoppedBy) throw new CancelledError(stoppedBy === 'reader' ? `${where} (its reader stopped before the end)` : where);
    if (exit.exitCode === 0 && !result.signal) return { bytes, durationMs: Date.now() - started, sender: seen.sender };
    // Without a broadcast address udp-receiver asks 0.0.0.0 and times out as if no sender ran: only ip addr tells the two apart.
    const address = seen.connected ? undefined : await addressFacts(iface, options.netns);
    const failure = describeReceiveFailure({ ...exit, connected: seen.connected, dropped: seen.dropped, senderSilent: seen.silent, bytes, address }, { ...options, interface: iface });
    throw new MulticastReceiveError(failure.reason, command, commandArgs, exit, stderrTail(), `${where}: ${failure.message}`, failure.hint);
  })().then(
    (r) => {
      settled = true;
      stream.end();
      return r;
    },
    (e: unknown) => {
      settled = true;
      stream.destroy(e as Error);
      throw e;
    },
  );
  // A caller that reads only the stream learns of the failure from it; `done` must not crash the process as an unhandled rejection.
  done.catch(() => {});

  const stop = async () => {
    stoppedBy ??= 'stop';
    kill();
    await done.then(
      () => undefined,
      () => undefined,
    );
  };
  const onAbort = () => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  void done.finally(() => options.signal?.removeEventListener('abort', onAbort)).catch(() => {});
  if (options.signal?.aborted) void stop();

  return { stream, done, pid: child.pid, interface: iface, stop };
}

/** udp-receiver's arguments (pure). */
export function udpReceiverArgs(options: MulticastReceiveOptions & { interface: string }): string[] {
  return [
    '--interface', options.interface,
    '--portbase', String(options.portbase),
    '--nokbd',
    '--start-timeout', String(options.startTimeoutSeconds),
    '--receive-timeout', String(options.receiveTimeoutSeconds),
    '--rcvbuf', String(options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES),
  ];
}

function checkOptions(options: MulticastReceiveOptions): void {
  const p = options.portbase;
  if (!Number.isInteger(p) || p < 1024 || p > 65534 || p % 2 !== 0) {
    throw new ImagepeError('INVALID_INPUT', `portbase must be an even port number from 1024 to 65534, not ${p}`, { hint: "Give the session's portbase, as the server announces it (udpcast's usual one is 9000)." });
  }
  for (const [name, value] of [
    ['startTimeoutSeconds', options.startTimeoutSeconds],
    ['receiveTimeoutSeconds', options.receiveTimeoutSeconds],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new ImagepeError('INVALID_INPUT', `${name} must be a whole number of seconds ≥ 1, not ${value}`, { hint: 'udp-receiver takes whole seconds.' });
  }
  const buffer = options.receiveBufferBytes;
  if (buffer !== undefined && (!Number.isInteger(buffer) || buffer < 65536)) {
    throw new ImagepeError('INVALID_INPUT', `receiveBufferBytes must be a whole number of bytes ≥ 65536, not ${buffer}`, { hint: `Leave it unset for ${DEFAULT_RECEIVE_BUFFER_BYTES} bytes.` });
  }
  if (options.server !== undefined && ipv4ToNumber(options.server) === undefined) {
    throw new ImagepeError('INVALID_INPUT', `"${options.server}" is not an IPv4 address`, { hint: "Give the server's address (resolve a host name first), or the interface." });
  }
  if (options.interface !== undefined && !/^[\w.:@-]{1,15}$/.test(options.interface)) {
    throw new ImagepeError('INVALID_INPUT', `"${options.interface}" is not a network interface name`, { hint: 'Give the interface as ip link lists it.' });
  }
  if (options.netns !== undefined && options.interface === undefined) {
    throw new ImagepeError('INVALID_INPUT', `receiving in network namespace ${options.netns} needs the interface named`, { hint: "The routes imagepe would choose it by are this process's, not the namespace's." });
  }
}

/** What `ip -4 addr show dev IF` (iproute2's or busybox's) says about the interface's IPv4 address. */
async function addressFacts(iface: string, netns: string | undefined): Promise<{ ipv4: boolean; broadcast: boolean } | undefined> {
  try {
    const args = ['-4', 'addr', 'show', 'dev', iface];
    const { stdout } = await run('ip', netns ? ['-n', netns, ...args] : args, { timeoutMs: 5_000 });
    return { ipv4: /\binet \d/.test(stdout), broadcast: /\binet \S+ (?:.* )?brd \d/.test(stdout) };
  } catch {
    return undefined;
  }
}

export interface ReceiveFacts {
  exitCode: number | undefined;
  signal: string | undefined;
  /** A sender answered ("Connected as #N"). */
  connected: boolean;
  /** udp-receiver printed "Dropped by server". */
  dropped: boolean;
  /** udp-receiver printed "Receiver timeout". */
  senderSilent: boolean;
  /** Bytes received before the failure. */
  bytes: number;
  /** From `ip addr`, read when it failed before any sender answered. */
  address?: { ipv4: boolean; broadcast: boolean } | undefined;
}

/** Why udp-receiver failed and what to do, from what it printed and how it ended (pure). */
export function describeReceiveFailure(facts: ReceiveFacts, options: Pick<MulticastReceiveOptions, 'portbase' | 'startTimeoutSeconds' | 'receiveTimeoutSeconds'> & { interface: string }): {
  reason: MulticastFailureReason;
  message: string;
  hint: string;
} {
  const { portbase: p, interface: iface } = options;
  const orHttp = 'or deploy over HTTP (an image URL) instead';
  const after = facts.bytes > 0 ? ` after ${formatBytes(facts.bytes)}` : '';
  if (facts.signal) {
    return {
      reason: 'killed',
      message: `udp-receiver was killed by ${facts.signal}${after}`,
      hint: `Something outside imagepe stopped it (the kernel's out-of-memory killer?). Deploy again, ${orHttp}.`,
    };
  }
  if (facts.dropped) {
    return {
      reason: 'dropped',
      message: `the server dropped this machine from the session${after}: it did not acknowledge the data in time`,
      hint: `It lost the network for a while or could not keep up (a slow or stalled disk); the other machines went on without it. Deploy it again (it joins the next session), ${orHttp}.`,
    };
  }
  if (facts.senderSilent) {
    return {
      reason: 'sender-silent',
      message: `the sender went silent for ${options.receiveTimeoutSeconds} s${after}`,
      hint: `The session was stopped on the server or the network between failed. Check imagepe serve on the server and deploy again, ${orHttp}.`,
    };
  }
  if (!facts.connected && facts.address && !facts.address.ipv4) {
    return { reason: 'no-address', message: `${iface} has no IPv4 address`, hint: `Check the cable and the DHCP server, ${orHttp}.` };
  }
  if (!facts.connected && facts.address && !facts.address.broadcast) {
    return {
      reason: 'no-broadcast',
      message: `${iface} has no IPv4 broadcast address, and udp-receiver finds the sender by broadcast`,
      hint: `The DHCP server sent no broadcast address (option 28): give ${iface} one (ip addr add ADDRESS/PREFIX brd + dev ${iface}), ${orHttp}.`,
    };
  }
  if (!facts.connected) {
    return {
      reason: 'no-sender',
      message: `no multicast session answered within ${options.startTimeoutSeconds} s`,
      hint:
        `Start the session on the server (portbase ${p}) before or soon after the machines, or raise the start timeout; ` +
        `check that ${iface} is on the deployment network and that UDP ports ${p} and ${p + 1} pass the firewalls; ${orHttp}.`,
    };
  }
  return {
    reason: 'failed',
    message: `udp-receiver failed${after}`,
    hint: `Its output below may say why. Deploy again, ${orHttp}.`,
  };
}

/**
 * The interface with the route to `server` in a /proc/net/route table (longest prefix, then
 * lowest metric), or without a server the interface of the default route, or the only one
 * with any route. The table's addresses are in host byte order, little-endian on x86 and arm64.
 * Throws NOT_FOUND when nothing routes to the server, INVALID_INPUT when no interface can be chosen.
 */
export function interfaceToward(routeTable: string, server?: string): string {
  const routes = routeTable
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && (parseInt(f[3]!, 16) & 0x1) !== 0)
    .map((f) => ({ iface: f[0]!, destination: hostOrder(f[1]!), mask: hostOrder(f[7]!), metric: Number(f[6]) }));
  const names = [...new Set(routes.map((r) => r.iface))];
  if (server !== undefined) {
    const ip = ipv4ToNumber(server);
    const matching = routes.filter((r) => ip !== undefined && ((ip & r.mask) >>> 0) === r.destination);
    matching.sort((a, b) => bits(b.mask) - bits(a.mask) || a.metric - b.metric);
    if (matching[0]) return matching[0].iface;
    throw new ImagepeError('NOT_FOUND', `no route leads to the server ${server}`, { hint: `Check that the network came up (the interfaces with routes: ${names.join(', ') || 'none'}), or name the interface.` });
  }
  const byDefault = routes.find((r) => r.mask === 0 && r.destination === 0);
  if (byDefault) return byDefault.iface;
  if (names.length === 1) return names[0]!;
  throw new ImagepeError('INVALID_INPUT', names.length === 0 ? 'no interface has a route, so none can receive the session' : `several interfaces could receive the session (${names.join(', ')}) and none has the default route`, {
    hint: "Name the interface, or give the server's address to choose it by.",
  });
}

/** A /proc/net/route hex field (host byte order, little-endian) as an unsigned 32-bit number in network order. */
function hostOrder(hex: string): number {
  const n = parseInt(hex, 16) >>> 0;
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
}

function ipv4ToNumber(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((n, p) => ((n << 8) | Number(p)) >>> 0, 0);
}

function bits(mask: number): number {
  let n = 0;
  for (let m = mask; m; m = (m << 1) >>> 0) n++;
  return n;
}
