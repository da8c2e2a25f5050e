import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { ImagepeError, removeQuietly, tail, type EventSink } from '../core/index.js';
import { parseEventLine, type AgentEvent } from '../agent/events/index.js';
import { detectAccelerator, kvmProbe, type AccelDecision, type AcceleratorChoice } from './accel.js';
import { qemuArgs, type GuestForward, type PortForward } from './args.js';
import { QmpClient } from './qmp.js';
import { qemuRuntime, type QemuProcess, type QemuRuntimeName, type VmExit } from './runtime.js';

export type { VmExit } from './runtime.js';

export interface VmDisk {
  path: string;
  /** Created blank (qcow2) when the file does not exist. */
  size?: string | number;
  format?: 'qcow2' | 'raw';
}

export interface StartVmOptions {
  iso?: string;
  /** How the ISO is attached: as a CD (default) or as a USB disk. */
  bootFrom?: 'cd' | 'usb';
  uefi?: boolean;
  /**
   * UEFI with Secure Boot enforced and Microsoft's keys enrolled; the VM becomes a q35 with SMM
   * (OVMF's Secure Boot build needs it, or the VM hangs before any output). Implies uefi.
   */
  secureBoot?: boolean;
  /**
   * Boot from the network: QEMU's DHCP offers `bootfile` (a file in `tftpDir` served by its TFTP
   * server, or an http:// URL for iPXE); on a tap, both are left out and the network's own DHCP
   * and TFTP servers answer.
   */
  netBoot?: { tftpDir?: string; bootfile?: string };
  /**
   * A tap device to join instead of QEMU's user networking, in the network namespace `netns`
   * (QEMU is started inside it with `ip netns exec`); the caller makes and removes both. Native
   * runtime only: the container runtime refuses it (UNSUPPORTED).
   */
  tap?: { name: string; netns: string };
  kernel?: { image: string; initrd: string; append: string };
  disks?: readonly (string | VmDisk)[];
  share?: string;
  forwards?: readonly PortForward[];
  /** The NIC's MAC address, so guests running side by side are told apart (hostname {mac}). */
  mac?: string;
  guestForwards?: readonly GuestForward[];
  memoryMiB?: number;
  cpus?: number;
  accel?: AcceleratorChoice;
  /** Where the serial log, OVMF vars copy and QMP socket go; a new temporary directory by default. */
  workDir?: string;
  /** Hard limit on the VM's whole life; QEMU is killed after it. Default 30 min. */
  lifetimeMs?: number;
  /**
   * Where QEMU runs: the host's own (native), or a container of the image imagepe builds
   * (qemu-tests/container/). Default: $IMAGEPE_QEMU, else native.
   */
  runtime?: QemuRuntimeName;
  /** Messages while the container runtime builds its image (a first build takes about 1.5 min). */
  events?: EventSink;
  signal?: AbortSignal;
  /** A guest reboot restarts the VM; by default QEMU exits instead (see VmSpec.reboot). */
  allowReboot?: boolean;
  onSerialLine?: (line: string) => void;
  /** The serial output as it arrives, prompts and escape sequences included (for a terminal). */
  onSerialData?: (chunk: Buffer) => void;
  onEvent?: (event: AgentEvent) => void;
}

/** A running QEMU guest; every wait has a timeout, and the serial log is kept on disk. */
export class Vm {
  readonly events: AgentEvent[] = [];
  private readonly lines: string[] = [];
  /** Everything the serial port printed, prompts without a newline included. */
  private transcript = '';
  /** Where expect() continues from in the transcript. */
  private cursor = 0;
  private listeners = new Set<() => void>();
  private exitInfo: VmExit | undefined;
  private qmp: QmpClient | undefined;
  private stderr = '';
  private panicked = false;

  constructor(
    private readonly qemu: QemuProcess,
    /** Where QEMU ran: "native /usr/bin/qemu-system-x86_64" or "container imagepe-qemu:... (QEMU ..., OVMF ..., Samba ...)". */
    readonly runtime: string,
    readonly logPath: string,
    readonly workDir: string,
    readonly accel: AccelDecision,
    readonly startedAt: number,
    private readonly qmpSocket: string,
    private readonly serialSocket: string | undefined,
    private readonly log: WriteStream,
    private readonly options: StartVmOptions,
  ) {
    const decoder = new StringDecoder('utf8');
    let pending = '';
    qemu.serial.on('data', (chunk: Buffer) => {
      log.write(chunk);
      options.onSerialData?.(chunk);
      const text = decoder.write(chunk);
      this.transcript += text;
      pending += text;
      const parts = pending.split(/\r?\n|\r/);
      pending = parts.pop() ?? '';
      for (const line of parts) this.onLine(line);
      // A prompt waits without a newline; whoever waits for one must hear of it.
      if (parts.length === 0) this.notify();
    });
    qemu.diagnostics.on('data', (chunk: Buffer | string) => {
      this.stderr += chunk.toString();
    });
    void qemu.exited.then((exit) => this.onExit(exit));
  }

  private onLine(line: string): void {
    this.lines.push(line);
    if (line.includes('Kernel panic - not syncing')) this.panicked = true;
    this.options.onSerialLine?.(line);
    const event = parseEventLine(line);
    if (event) {
      this.events.push(event);
      this.options.onEvent?.(event);
    }
    this.notify();
  }

  private onExit(info: VmExit): void {
    this.exitInfo = info;
    this.log.end();
    this.notify();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  get exited(): VmExit | undefined {
    return this.exitInfo;
  }

  /** The serial output so far, one entry per line. */
  serialLines(): readonly string[] {
    return this.lines;
  }

  /** Seconds since QEMU was started. */
  elapsedSeconds(): number {
    return (Date.now() - this.startedAt) / 1000;
  }

  /**
   * Resolves with the first event (already seen or still to come) that matches; rejects when
   * the agent reports an error first, when QEMU exits, or after timeoutMs, naming the log.
   */
  waitForEvent<T extends AgentEvent['type']>(type: T, timeoutMs: number): Promise<Extract<AgentEvent, { type: T }>> {
    return this.waitFor(`the agent's "${type}" event`, timeoutMs, () => {
      const found = this.events.find((e) => e.type === type);
      if (found) return found as Extract<AgentEvent, { type: T }>;
      const error = type === 'error' ? undefined : this.events.find((e) => e.type === 'error');
      if (error && error.type === 'error') throw this.failure(`the agent reported an error (${error.code}): ${error.message}`);
      return undefined;
    });
  }

  /** Resolves with the first serial line matching the pattern. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    return this.waitFor(`a serial line matching ${pattern}`, timeoutMs, () => this.lines.find((l) => pattern.test(l)));
  }

  /**
   * Conversation on the serial port, as the classic `expect` does it: resolves with the first
   * match of the pattern in the output after the previous match (prompts that end without a
   * newline included), and moves past it, so the same prompt asked twice is awaited twice.
   */
  expect(pattern: RegExp, timeoutMs: number): Promise<{ match: RegExpExecArray; before: string }> {
    return this.waitFor(`serial output matching ${pattern}`, timeoutMs, () => {
      const rest = this.transcript.slice(this.cursor);
      const match = new RegExp(pattern.source, pattern.flags.replace('g', '')).exec(rest);
      if (!match) return undefined;
      this.cursor += match.index + match[0].length;
      // What came between the previous match and this one: the table a question follows.
      return { match, before: rest.slice(0, match.index) };
    });
  }

  /** Resolves when QEMU has exited. */
  waitForExit(timeoutMs: number): Promise<VmExit> {
    return this.waitFor('QEMU to exit', timeoutMs, () => this.exitInfo, true);
  }

  private waitFor<R>(what: string, timeoutMs: number, check: () => R | undefined, exitIsOk = false): Promise<R> {
    return new Promise<R>((resolvePromise, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        this.listeners.delete(listener);
        if (timer) clearTimeout(timer);
      };
      const listener = () => {
        try {
          const r = check();
          if (r !== undefined) {
            done();
            resolvePromise(r);
          } else if (!exitIsOk && this.panicked) {
            done();
            reject(this.failure(`the guest kernel panicked before ${what}`));
          } else if (this.exitInfo && !exitIsOk) {
            done();
            reject(this.failure(`QEMU exited (status ${this.exitInfo.exitCode ?? this.exitInfo.signal}) before ${what}`));
          }
        } catch (e) {
          done();
          reject(e);
        }
      };
      timer = setTimeout(() => {
        done();
        reject(this.failure(`no ${what} within ${Math.round(timeoutMs / 1000)} s`, 'COMMAND_TIMEOUT'));
      }, timeoutMs);
      this.listeners.add(listener);
      listener();
    });
  }

  private failure(message: string, code: 'COMMAND_TIMEOUT' | 'COMMAND_FAILED' = 'COMMAND_FAILED'): ImagepeError {
    const serial = this.lines.slice(-20).join('\n');
    const stderr = tail(this.stderr, 10);
    return new ImagepeError(code, `${message}\nserial log: ${this.logPath}\n--- last serial lines ---\n${serial}${stderr ? `\n--- qemu stderr ---\n${stderr}` : ''}`, {
      hint: `The whole serial console output is in ${this.logPath}.`,
    });
  }

  private async qmpClient(): Promise<QmpClient> {
    this.qmp ??= await QmpClient.connect(this.qmpSocket);
    return this.qmp;
  }

  /** Types text on the serial console, as a user at the PE's shell would. */
  sendSerial(text: string | Uint8Array): void {
    if (this.exitInfo) throw this.failure('QEMU has exited; nothing can be typed');
    this.qemu.writeSerial(text);
  }

  /** ACPI power button, as a user would press it. */
  async powerButton(): Promise<void> {
    await (await this.qmpClient()).execute('system_powerdown');
  }

  /** Plugs the network cable in or pulls it out (the guest sees the link go down). */
  async setLink(up: boolean): Promise<void> {
    await (await this.qmpClient()).execute('set_link', { name: 'nic0', up });
  }

  /** Runs a QEMU monitor (HMP) command, `info status` say, and resolves with what it printed. */
  async monitor(commandLine: string): Promise<string> {
    const out = await (await this.qmpClient()).execute('human-monitor-command', { 'command-line': commandLine });
    return typeof out === 'string' ? out : '';
  }

  async reset(): Promise<void> {
    await (await this.qmpClient()).execute('system_reset');
  }

  /**
   * Stops the VM now (QMP quit, then a kill if QEMU does not go) and, in the container runtime,
   * removes its container. The serial log stays.
   */
  async stop(): Promise<void> {
    if (!this.exitInfo) {
      try {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([(await this.qmpClient()).execute('quit'), new Promise((r) => (timer = setTimeout(r, 3_000)))]).finally(() => clearTimeout(timer));
      } catch {
        // QEMU may already be gone; the kill below covers every case.
      }
      await this.waitForExit(5_000).catch(() => {
        this.qemu.kill();
      });
      // A container's removal comes before its exit is reported: more time than a process's.
      await this.waitForExit(20_000).catch(() => undefined);
    }
    this.qmp?.close();
    await removeQuietly(this.qmpSocket);
    if (this.serialSocket) await removeQuietly(this.serialSocket);
  }
}

/**
 * Starts QEMU as the options describe, in the runtime they (or $IMAGEPE_QEMU) choose; the caller
 * must stop() the VM. Throws ToolMissingError (native: no qemu-system-x86_64), NOT_FOUND (a
 * missing ISO, network boot file or OVMF), UNSUPPORTED (a tap in the container runtime), and
 * what the container runtime throws: DockerUnavailableError, an image build's errors.
 */
export async function startVm(options: StartVmOptions): Promise<Vm> {
  const runtime = await qemuRuntime(options.runtime, { ...(options.events ? { events: options.events } : {}), ...(options.signal ? { signal: options.signal } : {}) });
  if (options.tap && runtime.name === 'container') {
    throw new ImagepeError('UNSUPPORTED', 'a VM on a tap in a network namespace cannot run in the container runtime', { hint: 'Run it with the native runtime: IMAGEPE_QEMU=native, or runtime: "native".' });
  }
  const workDir = resolve(options.workDir ?? (await mkdtemp(join(tmpdir(), 'imagepe-vm-'))));
  await mkdir(workDir, { recursive: true });
  const accel = await detectAccelerator(options.accel ?? 'auto', () => kvmProbe());
  const disks: { path: string; format: 'qcow2' | 'raw' }[] = [];
  for (const d of options.disks ?? []) {
    const disk: VmDisk = typeof d === 'string' ? { path: d } : d;
    const format = disk.format ?? (disk.path.endsWith('.raw') || disk.path.endsWith('.img') ? 'raw' : 'qcow2');
    if (!(await stat(disk.path).catch(() => undefined))) await runtime.createDisk(resolve(disk.path), disk.size ?? '8GiB', format);
    disks.push({ path: resolve(disk.path), format });
  }
  const uefi = options.uefi === true || options.secureBoot === true;
  const ovmf = uefi ? await runtime.firmware(options.secureBoot === true, join(workDir, 'OVMF_VARS.fd')) : undefined;
  const { tftpDir, bootfile } = options.netBoot ?? {};
  if (tftpDir && bootfile && !/^https?:/.test(bootfile) && !(await stat(join(tftpDir, bootfile)).catch(() => undefined))) {
    throw new ImagepeError('NOT_FOUND', `the network boot file ${join(tftpDir, bootfile)} does not exist`, { hint: 'Build the PXE bundle with: imagepe build (bootx64.efi needs secureBoot: true and shim-signed)' });
  }
  if (options.iso && !(await stat(options.iso).catch(() => undefined))) throw new ImagepeError('NOT_FOUND', `ISO ${options.iso} does not exist`, { hint: 'Build one with: imagepe build' });
  const qmpSocket = join(workDir, 'qmp.sock');
  const serialSocket = runtime.serial === 'socket' ? join(workDir, 'serial.sock') : undefined;
  const logPath = join(workDir, 'serial.log');
  const iso = options.iso ? resolve(options.iso) : undefined;
  const share = options.share ? resolve(options.share) : undefined;
  const kernel = options.kernel ? { ...options.kernel, image: resolve(options.kernel.image), initrd: resolve(options.kernel.initrd) } : undefined;
  const args = qemuArgs({
    accel: accel.accel,
    firmware: uefi ? 'uefi' : 'bios',
    ovmf,
    ...(options.secureBoot ? { secureBoot: true } : {}),
    ...(options.netBoot ? { netBoot: { ...(tftpDir ? { tftpDir: resolve(tftpDir) } : {}), ...(bootfile ? { bootfile } : {}) } } : {}),
    ...(options.tap ? { tap: options.tap.name } : {}),
    memoryMiB: options.memoryMiB ?? 1536,
    cpus: options.cpus ?? 1,
    iso: iso ? { path: iso, as: options.bootFrom ?? 'cd' } : undefined,
    kernel,
    disks,
    share,
    forwards: options.forwards ?? [],
    ...(options.mac ? { mac: options.mac } : {}),
    ...(options.guestForwards ? { guestForwards: options.guestForwards } : {}),
    ...(options.guestForwards?.some((g) => g.perConnection) ? { busybox: runtime.busybox } : {}),
    qmpSocket,
    ...(serialSocket ? { serialSocket } : {}),
    ...(options.allowReboot ? { reboot: true } : {}),
  });
  // Every host path QEMU opens; the container runtime binds them (OVMF's vars copy is in workDir).
  const paths = [
    { path: workDir, writable: true },
    ...(iso ? [{ path: iso, writable: false }] : []),
    ...disks.map((d) => ({ path: d.path, writable: true })),
    ...(share ? [{ path: share, writable: true }] : []),
    ...(tftpDir ? [{ path: resolve(tftpDir), writable: false }] : []),
    ...(kernel ? [{ path: kernel.image, writable: false }, { path: kernel.initrd, writable: false }] : []),
  ];
  const log = createWriteStream(logPath);
  log.write(`# qemu-system-x86_64 ${args.join(' ')}\n# runtime: ${runtime.description}\n# accelerator: ${accel.accel} (${accel.reason})\n`);
  if (options.secureBoot) log.write(`# secure boot: enforced, Microsoft's keys (${ovmf!.code}); machine q35 with SMM, which OVMF's Secure Boot build needs (without it the VM hangs with no output)\n`);
  const startedAt = Date.now();
  let qemu: QemuProcess;
  try {
    qemu = await runtime.launch({
      args,
      paths,
      ...(serialSocket ? { serialSocket } : {}),
      hostLoopback: (options.forwards?.length ?? 0) > 0 || (options.guestForwards?.length ?? 0) > 0,
      ...(options.tap ? { netns: options.tap.netns } : {}),
      kvm: accel.accel === 'kvm',
      lifetimeMs: options.lifetimeMs ?? 30 * 60_000,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (e) {
    log.end();
    throw e;
  }
  return new Vm(qemu, runtime.description, logPath, workDir, accel, startedAt, qmpSocket, serialSocket, log, options);
}

/**
 * Runs `body` on a VM and always stops it; when the body fails, the serial log's path is
 * printed to stderr (the log stays on disk), so a failed test says where to look.
 */
export async function withVm<T>(name: string, vmPromise: Promise<Vm>, body: (vm: Vm) => Promise<T>): Promise<T> {
  const vm = await vmPromise;
  let ok = false;
  try {
    const r = await body(vm);
    ok = true;
    return r;
  } finally {
    await vm.stop();
    if (!ok) process.stderr.write(`${name}: serial log kept at ${vm.logPath}\n`);
  }
}

/** Ctrl-A, the escape key of an interactive console, as in QEMU's own `-serial mon:stdio`. */
export const CONSOLE_ESCAPE = 0x01;

export const CONSOLE_ESCAPE_HELP = [
  'Ctrl-A x    quit: stop the VM',
  'Ctrl-A c    one QEMU monitor command (info status, system_reset, ...)',
  'Ctrl-A h    this help',
  'Ctrl-A Ctrl-A  type Ctrl-A in the guest',
];

/** What keys typed at an interactive console mean: bytes for the guest, or a command for us. */
export type ConsoleInput = { kind: 'guest'; bytes: Buffer } | { kind: 'quit' } | { kind: 'monitor' } | { kind: 'help' };

/**
 * Splits what a terminal in raw mode sends into bytes for the guest (Ctrl-C included) and the
 * Ctrl-A commands; an escape split across two reads still counts. A key Ctrl-A does not
 * define is dropped, as QEMU's mux does.
 */
export class ConsoleEscapes {
  private escaped = false;

  feed(chunk: Uint8Array): ConsoleInput[] {
    const out: ConsoleInput[] = [];
    let start = 0;
    const flush = (end: number) => {
      if (end > start) out.push({ kind: 'guest', bytes: Buffer.from(chunk.subarray(start, end)) });
    };
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (this.escaped) {
        this.escaped = false;
        start = i + 1;
        const key = String.fromCharCode(byte).toLowerCase();
        if (byte === CONSOLE_ESCAPE) out.push({ kind: 'guest', bytes: Buffer.from([CONSOLE_ESCAPE]) });
        else if (key === 'x') out.push({ kind: 'quit' });
        else if (key === 'c') out.push({ kind: 'monitor' });
        else if (key === 'h' || key === '?') out.push({ kind: 'help' });
      } else if (byte === CONSOLE_ESCAPE) {
        flush(i);
        this.escaped = true;
        start = i + 1;
      }
    }
    if (!this.escaped) flush(chunk.length);
    return out;
  }
}

/** A terminal connected to a VM's serial console by attachTerminal. */
export interface AttachedTerminal {
  /** Resolves when the user asks to quit (Ctrl-A x); the caller stops the VM. */
  readonly quitRequested: Promise<void>;
  /** Gives the terminal back as it was (cooked mode, input paused). */
  detach(): void;
}

/**
 * Puts the terminal `input` in raw mode and types everything from it on the VM's serial console
 * (the caller shows the console's output, through onSerialData), so keys such as Ctrl-C reach
 * the guest; Ctrl-A starts the commands of CONSOLE_ESCAPE_HELP. Messages go to `messages`.
 */
export function attachTerminal(vm: Vm, input: NodeJS.ReadStream, messages: NodeJS.WritableStream): AttachedTerminal {
  const escapes = new ConsoleEscapes();
  let requestQuit!: () => void;
  const quitRequested = new Promise<void>((r) => (requestQuit = r));
  // A monitor command line being typed, or undefined while keys go to the guest.
  let monitorLine: string | undefined;
  const say = (text: string) => messages.write(`\r\nimagepe vm: ${text}\r\n`);
  const runMonitor = (line: string) => {
    vm.monitor(line).then(
      (out) => messages.write(out.replace(/\r?\n/g, '\r\n')),
      (e: unknown) => say(`the monitor command failed: ${(e as Error).message}`),
    );
  };
  const onMonitorKeys = (bytes: Buffer) => {
    for (const byte of bytes) {
      if (monitorLine === undefined) break;
      if (byte === 0x0d || byte === 0x0a) {
        const line = monitorLine.trim();
        monitorLine = undefined;
        messages.write('\r\n');
        if (line) runMonitor(line);
      } else if (byte === 0x7f || byte === 0x08) {
        if (monitorLine.length > 0) {
          monitorLine = monitorLine.slice(0, -1);
          messages.write('\b \b');
        }
      } else if (byte === 0x03) {
        monitorLine = undefined;
        messages.write('^C\r\n');
      } else if (byte >= 0x20 && byte < 0x7f) {
        monitorLine += String.fromCharCode(byte);
        messages.write(String.fromCharCode(byte));
      }
    }
  };
  const onData = (chunk: Buffer) => {
    for (const action of escapes.feed(chunk)) {
      if (action.kind === 'quit') requestQuit();
      else if (action.kind === 'help') say(`the serial console is this terminal.\r\n${CONSOLE_ESCAPE_HELP.join('\r\n')}`);
      else if (action.kind === 'monitor') {
        monitorLine = '';
        messages.write('\r\n(qemu) ');
      } else if (monitorLine !== undefined) onMonitorKeys(action.bytes);
      else if (!vm.exited) vm.sendSerial(action.bytes);
    }
  };
  input.setRawMode(true);
  input.on('data', onData);
  input.resume();
  // Whatever ends the process, the terminal must not be left in raw mode.
  const restore = () => {
    if (input.isRaw) input.setRawMode(false);
  };
  process.once('exit', restore);
  return {
    quitRequested,
    detach: () => {
      input.off('data', onData);
      input.pause();
      restore();
      process.off('exit', restore);
    },
  };
}
