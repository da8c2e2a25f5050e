import { copyFile, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import { findTool, ImagepeError, OVMF_4M, parseSize, run, ToolMissingError, type EventSink } from '../core/index.js';

/**
 * Where QEMU runs. `native`: the host's qemu-system-x86_64, OVMF and Samba (Debian's packages).
 * `container`: the same Debian packages inside a locally built Docker image, started through
 * testcontainers (qemu-tests/container/), so the host needs only a Docker engine and the versions
 * are pinned by the image. Both feed the Vm the same QemuProcess.
 */
export type QemuRuntimeName = 'native' | 'container';
export const QEMU_RUNTIMES: readonly QemuRuntimeName[] = ['native', 'container'];

export interface VmExit {
  exitCode: number | undefined;
  signal: string | undefined;
}

/** A started QEMU, as the Vm sees it whatever runs it. */
export interface QemuProcess {
  /** The guest's serial console, bytes as they arrive. */
  readonly serial: Readable;
  /** QEMU's own diagnostics (its stderr; in a container, everything the container printed). */
  readonly diagnostics: Readable;
  /** Types bytes on the serial console. */
  writeSerial(text: string | Uint8Array): void;
  /**
   * Resolves once QEMU has exited and what ran it is gone (the container removed); never
   * rejects. A signal is reported as `signal` whichever runtime delivered it.
   */
  readonly exited: Promise<VmExit>;
  /** Ends QEMU at once (SIGKILL); `exited` resolves after. Safe to call after it exited. */
  kill(): void;
}

export interface LaunchSpec {
  args: readonly string[];
  /**
   * Every host path QEMU opens (ISO, disks, share, TFTP folder, kernel, initrd, the work folder);
   * the container runtime binds each at the same path, so `args` need no translation.
   */
  paths: readonly { path: string; writable: boolean }[];
  /** Set when the runtime's serial is 'socket': where QEMU listens for the console (args say so too). */
  serialSocket?: string;
  /** Whether QEMU binds ports on the host's 127.0.0.1 (hostfwd) or connects to them (guestfwd). */
  hostLoopback: boolean;
  /** The network namespace of a tap (native only). */
  netns?: string;
  /** KVM was chosen: the container gets /dev/kvm. */
  kvm: boolean;
  /** QEMU is stopped after this long (SIGTERM, SIGKILL 3 s later). */
  lifetimeMs: number;
  /** Aborting stops QEMU as the lifetime does. */
  signal?: AbortSignal;
}

export interface QemuRuntime {
  readonly name: QemuRuntimeName;
  /** For logs and the serial log's header: the binary, or the image and its pinned versions. */
  readonly description: string;
  /** How the serial console is reached: QEMU's stdio, or a unix socket in the work folder. */
  readonly serial: 'stdio' | 'socket';
  /** The busybox QEMU runs for per-connection guest forwards, as QEMU sees it. */
  readonly busybox: string;
  /** A blank disk image; qcow2 files take no space until written. Throws CommandFailedError with qemu-img's stderr. */
  createDisk(path: string, size: string | number, format: 'qcow2' | 'raw'): Promise<void>;
  /**
   * The OVMF code as QEMU sees it, and a private copy of the matching variable store written to
   * `varsCopy` (each VM writes its own; the packaged one must stay pristine).
   */
  firmware(secureBoot: boolean, varsCopy: string): Promise<{ code: string; vars: string }>;
  /** Starts QEMU; the caller owns the process until `exited` resolves. */
  launch(spec: LaunchSpec): Promise<QemuProcess>;
}

/** The plain OVMF code: Debian 12's 4 MiB build, else an older release's 2 MiB one. */
export const OVMF_CODE_CANDIDATES = [OVMF_4M.plain.code, '/usr/share/OVMF/OVMF_CODE.fd'];
/** OVMF with Secure Boot enforced and Microsoft's keys (core OVMF_4M). */
export const OVMF_SECURE_BOOT_CANDIDATES = [OVMF_4M.secureBoot];

/** The host's OVMF code and vars template: plain, or with Secure Boot enforced. Throws NOT_FOUND naming the package. */
export async function findOvmf(secureBoot = false): Promise<{ code: string; vars: string }> {
  const pairs = secureBoot ? OVMF_SECURE_BOOT_CANDIDATES : OVMF_CODE_CANDIDATES.map((code) => ({ code, vars: code.replace('OVMF_CODE', 'OVMF_VARS') }));
  for (const { code, vars } of pairs) {
    if ((await stat(code).catch(() => undefined)) && (await stat(vars).catch(() => undefined))) return { code, vars };
  }
  throw new ImagepeError('NOT_FOUND', `OVMF firmware${secureBoot ? ' with Secure Boot (OVMF_CODE_4M.ms.fd, OVMF_VARS_4M.ms.fd)' : ''} was not found in /usr/share/OVMF`, { hint: 'apt-get install ovmf' });
}

/** A blank virtual disk made by the host's qemu-img; qcow2 files take no space until written. */
export async function createDisk(path: string, size: string | number, format: 'qcow2' | 'raw' = 'qcow2'): Promise<void> {
  await run('qemu-img', qemuImgCreateArgs(path, size, format), { what: `creating the virtual disk ${path}`, timeoutMs: 30_000 });
}

/** qemu-img's arguments for a blank disk of `size` (bytes or a unit string: "2GiB"). */
export function qemuImgCreateArgs(path: string, size: string | number, format: 'qcow2' | 'raw'): string[] {
  return ['create', '-q', '-f', format, path, String(parseSize(size))];
}

/** The host's own QEMU, as imagepe has always run it. */
export function nativeRuntime(): QemuRuntime {
  const qemu = findTool('qemu-system-x86_64');
  if (!qemu) throw new ToolMissingError('qemu-system-x86_64', 'qemu-system-x86');
  return {
    name: 'native',
    description: `native ${qemu}`,
    serial: 'stdio',
    busybox: findTool('busybox') ?? 'busybox',
    createDisk,
    async firmware(secureBoot, varsCopy) {
      const found = await findOvmf(secureBoot);
      await copyFile(found.vars, varsCopy);
      return { code: found.code, vars: varsCopy };
    },
    async launch(spec) {
      // The one place QEMU runs outside run(): it is long-lived and its output is streamed.
      // `ip netns exec` execs QEMU in place, so the child is still QEMU for signals and exit status.
      const [file, argv] = spec.netns ? ['ip', ['netns', 'exec', spec.netns, qemu, ...spec.args]] : [qemu, [...spec.args]];
      const child = execa(file, argv, {
        reject: false,
        stdin: 'pipe',
        buffer: false,
        timeout: spec.lifetimeMs,
        cancelSignal: spec.signal,
        forceKillAfterDelay: 3_000,
        cleanup: true,
        encoding: 'buffer',
      });
      return {
        serial: child.stdout,
        diagnostics: child.stderr,
        writeSerial: (text) => void child.stdin.write(text),
        exited: child.then(
          (r) => ({ exitCode: r.exitCode, signal: r.signal }),
          (e: { exitCode?: number; signal?: string }) => ({ exitCode: e.exitCode, signal: e.signal }),
        ),
        kill: () => void child.kill('SIGKILL'),
      };
    },
  };
}

/**
 * The runtime `choice` names, else $IMAGEPE_QEMU, else native. Throws INVALID_INPUT for another
 * name. The container runtime is loaded only when chosen (testcontainers is a large import) and
 * makes sure its image exists first: see ensureQemuImage for what that may take and throw.
 */
export async function qemuRuntime(choice?: QemuRuntimeName, options: { events?: EventSink; signal?: AbortSignal } = {}): Promise<QemuRuntime> {
  const name = choice ?? runtimeFromEnv();
  if (name === 'native') return nativeRuntime();
  const { containerRuntime } = await import('./container/runtime.js');
  return containerRuntime(options);
}

function runtimeFromEnv(): QemuRuntimeName {
  const env = process.env.IMAGEPE_QEMU;
  if (env === undefined || env === '') return 'native';
  if ((QEMU_RUNTIMES as readonly string[]).includes(env)) return env as QemuRuntimeName;
  throw new ImagepeError('INVALID_INPUT', `IMAGEPE_QEMU=${env} names no QEMU runtime`, { hint: `Set it to one of: ${QEMU_RUNTIMES.join(', ')} (or leave it unset for native).` });
}
