import { copyFile, readFile, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { GenericContainer, getContainerRuntimeClient } from 'testcontainers';
import { CancelledError, ImagepeError, processAlive, run, type EventSink } from '../../core/index.js';
import { qemuImgCreateArgs, type LaunchSpec, type QemuProcess, type QemuRuntime, type VmExit } from '../runtime.js';
import { callerUser, ensureQemuImage, IMAGE_OVMF, userArgs, VM_CONTAINER_LABEL, VM_OWNER_LABEL, type QemuImage } from './image.js';

const SERIAL_CONNECT_TIMEOUT_MS = 30_000;
const CONTAINER_START_TIMEOUT_MS = 60_000;
/** QEMU's grace after SIGTERM (a clean quit takes well under a second) before SIGKILL. */
const STOP_GRACE_S = 3;
/** The in-container lifetime is a backstop: this process stops the VM first, as it does on an abort. */
const BACKSTOP_MARGIN_S = 5;

/**
 * The container's command, run by docker's init (PID 1, which also reaps the smbd processes
 * QEMU's SMB server forks): QEMU under `timeout` (its lifetime, so it ends even if nothing here
 * is left to stop it), SIGTERM and SIGINT passed on to it, and a watchdog on standard input.
 * This process holds the container's standard input open (attached with StdinOnce); when this
 * process ends in any way, SIGKILL included, the engine closes it, the watchdog stops QEMU, and
 * the engine removes the container (AutoRemove). The exit status is QEMU's (128 + N for signal N).
 */
const ENTRY = [
  'lifetime=$1; shift',
  'exec 3<&0',
  `timeout --kill-after=${STOP_GRACE_S} "$lifetime" qemu-system-x86_64 "$@" & q=$!`,
  "trap 'kill -TERM $q 2>/dev/null' TERM INT",
  // A background list's standard input is /dev/null unless redirected: the watchdog reads fd 3.
  '{ cat <&3 >/dev/null; kill -TERM $q 2>/dev/null; } &',
  // wait returns early when a trapped signal arrives; QEMU may still be quitting.
  'while :; do wait $q; s=$?; kill -0 $q 2>/dev/null || exit $s; done',
].join('\n');

/**
 * QEMU in a container of the image ensureQemuImage builds, started with testcontainers:
 * - the network is the host's when QEMU forwards ports on 127.0.0.1 (hostfwd, guestfwd), so they
 *   work exactly as natively; otherwise `none`. Never the default bridge: QEMU's user network
 *   (restrict=on) needs no route out, and a VM must not have one.
 * - every host path QEMU opens is bound at the same path, so QEMU's argv is the native one;
 *   OVMF's code is the image's, its variable templates copied out of the image once per image.
 * - the serial console is a unix socket in the bound work folder that QEMU waits on
 *   (server=on,wait=on) until this process connects, so no early output is lost.
 * - the container is removed whenever QEMU exits (quit, power-off, lifetime, abort, kill, this
 *   process ending: see ENTRY); containers created but never started by a process that died
 *   meanwhile are removed by the next container runtime started. testcontainers' reaper (Ryuk)
 *   is not used: its image cannot be pulled here, and the watchdog makes it unnecessary.
 *
 * Throws what ensureQemuImage throws (DockerUnavailableError with an install hint, build errors).
 */
export async function containerRuntime(options: { events?: EventSink; signal?: AbortSignal } = {}): Promise<QemuRuntime> {
  const image = await ensureQemuImage(options);
  await sweepOnce();
  return {
    name: 'container',
    description: `container ${image.tag} (${image.summary})`,
    serial: 'socket',
    busybox: '/bin/busybox',
    createDisk: (path, size, format) => createDiskInImage(image, path, size, format),
    async firmware(secureBoot, varsCopy) {
      await copyFile(secureBoot ? image.ovmfVars.secureBoot : image.ovmfVars.plain, varsCopy);
      return { code: secureBoot ? IMAGE_OVMF.secureBoot.code : IMAGE_OVMF.plain.code, vars: varsCopy };
    },
    launch: (spec) => launchInContainer(image, spec),
  };
}

/** qemu-img from the image, in a throwaway container with the disk's folder bound. */
async function createDiskInImage(image: QemuImage, path: string, size: string | number, format: 'qcow2' | 'raw'): Promise<void> {
  const dir = dirname(path);
  await run('docker', ['run', '--rm', '--network', 'none', ...userArgs(), '--volume', `${dir}:${dir}`, image.tag, 'qemu-img', ...qemuImgCreateArgs(path, size, format)], {
    what: `creating the virtual disk ${path} with the image's qemu-img`,
    timeoutMs: 60_000,
  });
}

export interface Bind {
  source: string;
  target: string;
  mode: 'rw' | 'ro';
}

/**
 * Bind mounts for the paths QEMU opens: each at its own path, read-only unless QEMU writes it,
 * and none under a folder already bound (docker refuses a mount point twice).
 */
export function bindMounts(paths: readonly { path: string; writable: boolean }[]): Bind[] {
  const byPath = new Map<string, boolean>();
  for (const p of paths) byPath.set(p.path, (byPath.get(p.path) ?? false) || p.writable);
  const sorted = [...byPath.keys()].sort((a, b) => a.length - b.length);
  const chosen: Bind[] = [];
  for (const path of sorted) {
    const parent = chosen.find((c) => path.startsWith(`${c.source}/`));
    if (parent) {
      // A writable path under a read-only bind would be read-only; make the parent writable.
      if (byPath.get(path) && parent.mode === 'ro') parent.mode = 'rw';
      continue;
    }
    chosen.push({ source: path, target: path, mode: byPath.get(path) ? 'rw' : 'ro' });
  }
  return chosen;
}

/**
 * What GenericContainer has no method for: docker's init, device nodes, binds as Mounts
 * (withBindMounts joins source:target:mode with colons, which a path may hold), AutoRemove, and
 * standard input held open by this process (see ENTRY), attached between create and start, as
 * `docker run -i` does, together with the wait for the container's removal, which reports QEMU's
 * exit status even though the container is gone by then.
 */
class QemuContainer extends GenericContainer {
  id: string | undefined;
  stdin: Duplex | undefined;
  removed: Promise<number | undefined> | undefined;

  constructor(image: string, binds: readonly Bind[], devices: readonly string[]) {
    super(image);
    this.createOpts.OpenStdin = true;
    this.createOpts.StdinOnce = true;
    this.createOpts.AttachStdin = true;
    this.hostConfig.Init = true;
    this.hostConfig.AutoRemove = true;
    this.hostConfig.Mounts = binds.map((b) => ({ Type: 'bind', Source: b.source, Target: b.target, ReadOnly: b.mode === 'ro' }));
    this.hostConfig.Devices = devices.map((d) => ({ PathOnHost: d, PathInContainer: d, CgroupPermissions: 'rwm' }));
  }

  protected override async containerCreated(id: string): Promise<void> {
    this.id = id;
    const handle = (await getContainerRuntimeClient()).container.getById(id);
    this.stdin = (await handle.attach({ stream: true, stdin: true, hijack: true })) as Duplex;
    // The engine closing the connection is how this ends; an error then is no news.
    this.stdin.on('error', () => {});
    this.removed = (handle.wait({ condition: 'removed' }) as Promise<{ StatusCode?: number }>).then(
      (r) => r.StatusCode,
      () => undefined,
    );
  }
}

async function launchInContainer(image: QemuImage, spec: LaunchSpec): Promise<QemuProcess> {
  if (spec.netns) throw new ImagepeError('UNSUPPORTED', 'a VM on a tap in a network namespace cannot run in the container runtime', { hint: 'Run it with the native runtime (IMAGEPE_QEMU=native or --runtime native).' });
  if (!spec.serialSocket) throw new Error('the container runtime needs a serial socket');
  if (spec.signal?.aborted) throw new CancelledError('starting QEMU in a container');
  const devices: string[] = [];
  if (spec.kvm && (await stat('/dev/kvm').catch(() => undefined))) devices.push('/dev/kvm');
  const binds: { path: string; writable: boolean }[] = [];
  for (const p of spec.paths) {
    // A raw disk that is a block device is a device node to the container, not a bind.
    if ((await stat(p.path).catch(() => undefined))?.isBlockDevice()) devices.push(p.path);
    else binds.push(p);
  }
  const user = callerUser();
  if (user) {
    // QEMU's SMB server names its user from the password database, which must know the host's uid.
    binds.push({ path: '/etc/passwd', writable: false }, { path: '/etc/group', writable: false });
  }
  const container = new QemuContainer(image.tag, bindMounts(binds), devices)
    .withNetworkMode(spec.hostLoopback ? 'host' : 'none')
    .withLabels({ [VM_CONTAINER_LABEL]: '1', [VM_OWNER_LABEL]: await ownerLabel(process.pid) })
    // The reaper container cannot be pulled; cleanup is the watchdog's (ENTRY).
    .withAutoCleanup(false)
    .withStartupTimeout(CONTAINER_START_TIMEOUT_MS)
    .withCommand(['sh', '-c', ENTRY, 'imagepe-qemu', `${Math.ceil(spec.lifetimeMs / 1000) + BACKSTOP_MARGIN_S}s`, ...spec.args]);
  // Files QEMU makes (the OVMF vars it writes, sockets) belong to the caller, as natively.
  if (user) container.withUser(user);
  let started;
  try {
    started = await container.start();
  } catch (e) {
    // A container created but not started has no watchdog, and AutoRemove does not apply to it.
    container.stdin?.destroy();
    if (container.id) await run('docker', ['rm', '--force', container.id], { what: 'removing the QEMU container that did not start', timeoutMs: 30_000 }).catch(() => undefined);
    throw new ImagepeError('COMMAND_FAILED', `the QEMU container did not start: ${(e as Error).message}`, { hint: `docker ps --all --filter label=${VM_CONTAINER_LABEL}=1 lists VM containers; the next container runtime removes those whose process has ended.`, cause: e });
  }
  const handle = (await getContainerRuntimeClient()).container.getById(started.getId());
  const diagnostics = new PassThrough();
  const logs = await started.logs();
  logs.pipe(diagnostics);
  const logsEnded = new Promise<void>((resolve) => {
    logs.once('end', resolve);
    logs.once('error', () => resolve());
  });

  let socket: Socket | undefined;
  const exited: Promise<VmExit> = (async () => {
    const status = await container.removed;
    // Everything QEMU printed has arrived once the log stream ends (it follows until the exit).
    await Promise.race([logsEnded, sleep(2_000, undefined, { ref: false })]);
    socket?.destroy();
    container.stdin?.destroy();
    return exitFromStatus(status);
  })();
  const stop = (how: 'stop' | 'kill') => {
    // docker stop: SIGTERM to init, passed on to QEMU (a clean quit), SIGKILL after the grace.
    void (how === 'stop' ? handle.stop({ t: STOP_GRACE_S + 2 }) : handle.kill()).catch(() => undefined);
  };
  const lifetime = setTimeout(() => stop('stop'), spec.lifetimeMs);
  const onAbort = () => stop('stop');
  spec.signal?.addEventListener('abort', onAbort, { once: true });
  void exited.then(() => {
    clearTimeout(lifetime);
    spec.signal?.removeEventListener('abort', onAbort);
  });

  try {
    socket = await connectSerial(spec.serialSocket, exited);
  } catch (e) {
    stop('kill');
    await exited;
    throw e;
  }
  const serialSocket = socket;
  return {
    serial: serialSocket as Readable,
    diagnostics,
    writeSerial: (text) => void serialSocket.write(text),
    exited,
    kill: () => stop('kill'),
  };
}

/** Connects to QEMU's serial socket, retrying until QEMU has made it; throws if QEMU exits first or after 30 s. */
async function connectSerial(path: string, exited: Promise<VmExit>): Promise<Socket> {
  let gone: VmExit | undefined;
  void exited.then((e) => (gone = e));
  const deadline = Date.now() + SERIAL_CONNECT_TIMEOUT_MS;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (gone) throw new ImagepeError('COMMAND_FAILED', `QEMU's container exited (status ${gone.exitCode ?? gone.signal}) before its serial console ${path} accepted a connection`);
      if (Date.now() > deadline) throw new ImagepeError('COMMAND_TIMEOUT', `QEMU's serial console ${path} did not accept a connection within ${SERIAL_CONNECT_TIMEOUT_MS / 1000} s: ${(e as Error).message}`);
      await sleep(50);
    }
  }
}

/** Docker reports a process killed by a signal as 128 + its number; the native runtime reports the signal. */
export function exitFromStatus(status: number | undefined): VmExit {
  if (status === undefined) return { exitCode: undefined, signal: undefined };
  if (status > 128) {
    const name = Object.entries(osConstants.signals).find(([, n]) => n === status - 128)?.[0];
    if (name) return { exitCode: undefined, signal: name };
  }
  return { exitCode: status, signal: undefined };
}

/** "<pid>:<start time>", the process's start time in clock ticks since boot (from /proc), so a reused pid is not its owner. */
export async function ownerLabel(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // The command name is in parentheses and may hold spaces; start time is the 20th field after it.
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  return `${pid}:${start}`;
}

let swept: Promise<string[]> | undefined;
function sweepOnce(): Promise<string[]> {
  swept ??= removeLeftoverVmContainers().catch((e: unknown) => {
    swept = undefined;
    throw e;
  });
  return swept;
}

/**
 * Removes VM containers (label imagepe.vm=1) whose owning process has ended. A started one
 * removes itself when its process ends (see ENTRY); this finds those created by a process that
 * died before starting them, and any the engine failed to remove. Containers of live processes
 * (another test worker's VMs) are kept. Resolves with the short ids removed; throws
 * CommandFailedError when docker fails.
 */
export async function removeLeftoverVmContainers(): Promise<string[]> {
  const r = await run('docker', ['ps', '--all', '--filter', `label=${VM_CONTAINER_LABEL}=1`, '--format', `{{.ID}}\t{{.Label "${VM_OWNER_LABEL}"}}`], {
    what: 'listing VM containers',
    timeoutMs: 30_000,
  });
  const leftovers: string[] = [];
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [id = '', owner = ''] = line.split('\t');
    const pid = Number(owner.split(':')[0]);
    const alive = pid > 0 && processAlive(pid) && (await ownerLabel(pid)) === owner;
    if (!alive) leftovers.push(id);
  }
  if (leftovers.length > 0) await run('docker', ['rm', '--force', ...leftovers], { what: 'removing VM containers left by ended processes', timeoutMs: 60_000 });
  return leftovers;
}
