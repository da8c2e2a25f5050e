import type { Argv, CommandModule } from 'yargs';
import { ImagepeError } from '../../core/index.js';
import { attachTerminal, CONSOLE_ESCAPE_HELP, QEMU_RUNTIMES, startVm, type AttachedTerminal, type PortForward, type QemuRuntimeName } from '../../qemu-tests/index.js';
import { printJson } from '../output.js';

interface VmArgs {
  json: boolean;
  iso?: string;
  pxe?: string;
  disk: string[];
  'disk-size': string;
  share?: string;
  uefi: boolean;
  'secure-boot': boolean;
  usb: boolean;
  memory: number;
  accel: 'auto' | 'kvm' | 'tcg';
  runtime?: QemuRuntimeName;
  forward: string[];
  'wait-for'?: string;
  timeout?: number;
  interactive?: boolean;
  reboot: boolean;
}

/** Without --timeout: 10 minutes for a script, a day for a person at the terminal. */
const DEFAULT_TIMEOUT_S = 600;
const INTERACTIVE_TIMEOUT_S = 24 * 3600;

/** "tcp:2222:22" → host port 2222 on 127.0.0.1 to guest port 22. */
export function parseForward(text: string): PortForward {
  const m = /^(tcp|udp):(\d{1,5}):(\d{1,5})$/.exec(text);
  if (!m) throw new ImagepeError('INVALID_INPUT', `--forward ${text} is not PROTOCOL:HOSTPORT:GUESTPORT`, { hint: 'For example --forward tcp:2222:22' });
  return { protocol: m[1] as 'tcp' | 'udp', hostPort: Number(m[2]), guestPort: Number(m[3]) };
}

export const vmCommand: CommandModule<{ json: boolean }, VmArgs> = {
  command: 'vm',
  describe: 'Boot an imagepe ISO in QEMU with blank disks and an SMB share, for tests',
  builder: (y) =>
    (y as Argv<{ json: boolean }>)
      .option('iso', { type: 'string', describe: 'The ISO to boot (imagepe build writes out/imagepe.iso)' })
      .option('pxe', {
        type: 'string',
        describe: "Boot from the network instead: QEMU's DHCP and TFTP serve this PXE bundle (imagepe build writes out/pxe); UEFI gets bootx64.efi (shim, signed GRUB), BIOS boot.ipxe through the NIC's iPXE",
      })
      .conflicts('iso', 'pxe')
      .check((a) => {
        if (!a.iso && !a.pxe) throw new Error('give --iso FILE or --pxe DIR');
        return true;
      })
      .option('disk', { type: 'string', array: true, default: [] as string[], describe: 'A target disk file (repeatable); created blank as qcow2 if missing' })
      .option('disk-size', { type: 'string', default: '16GiB', describe: 'Size of disks that are created' })
      .option('share', { type: 'string', describe: 'Directory the guest sees as //10.0.2.4/qemu (SMB)' })
      .option('uefi', { type: 'boolean', default: false, describe: 'Boot with UEFI firmware (OVMF) instead of BIOS' })
      .option('secure-boot', {
        type: 'boolean',
        default: false,
        describe: "UEFI with Secure Boot enforced and Microsoft's keys (OVMF_CODE_4M.ms.fd); the VM is a q35 with SMM, without which this firmware hangs silently. Implies --uefi",
      })
      .option('usb', { type: 'boolean', default: false, describe: 'Attach the ISO as a USB disk instead of a CD' })
      .option('memory', { type: 'number', default: 1536, describe: 'Guest memory in MiB' })
      .option('accel', { choices: ['auto', 'kvm', 'tcg'] as const, default: 'auto' as const, describe: 'KVM, software emulation, or KVM when it works' })
      .option('runtime', {
        choices: QEMU_RUNTIMES,
        describe:
          "Where QEMU runs: native (this host's qemu-system-x86, ovmf and samba) or container (the same Debian packages in a Docker image imagepe builds locally on first use with debootstrap and docker build, about 1.5 min, tagged by its recipe; then a running Docker engine is all it needs). Default: $IMAGEPE_QEMU, else native",
      })
      .option('forward', { type: 'string', array: true, default: [] as string[], describe: 'Forward 127.0.0.1:HOSTPORT to the guest: tcp:2222:22 (repeatable)' })
      .option('wait-for', { type: 'string', describe: 'Stop the VM and exit 0 once the agent sends this event type (ready, ...)' })
      .option('timeout', { type: 'number', describe: `Seconds before the VM is stopped and the command fails (default ${DEFAULT_TIMEOUT_S}; in terminal mode a day)` })
      .option('interactive', {
        type: 'boolean',
        describe:
          'Terminal mode: this terminal becomes the serial console (raw mode; Ctrl-C goes to the guest; Ctrl-A x quits, Ctrl-A c runs a QEMU monitor command, Ctrl-A h lists the keys). Default: on when standard input is a terminal and --json is not given',
      })
      .option('reboot', { type: 'boolean', default: false, describe: 'A guest reboot restarts the VM; without it QEMU exits, as a deploy test expects' })
      .example('$0 vm --iso out/imagepe.iso --disk target.qcow2 --share ./images --uefi', 'boot the PE with a target disk and an image share')
      .example('$0 vm --iso out/imagepe.iso --disk t.qcow2 --secure-boot --wait-for ready', 'check that the PE starts with Secure Boot on')
      .example('$0 vm --iso out/imagepe.iso --disk t.qcow2 --reboot', 'answer the technician console yourself (Ctrl-A x quits)')
      .example('$0 vm --iso out/imagepe.iso --disk t.qcow2 --wait-for ready --json', 'check that the PE boots, from a script')
      .example('$0 vm --iso out/imagepe.iso --disk t.qcow2 --runtime container', 'the same with QEMU, OVMF and Samba from the pinned image') as Argv<VmArgs>,
  handler: async (a) => {
    const forwards = a.forward.map(parseForward);
    const interactive = a.interactive ?? (process.stdin.isTTY === true && !a.json);
    if (interactive && !process.stdin.isTTY) throw new ImagepeError('INVALID_INPUT', '--interactive needs a terminal on standard input', { hint: 'Run it in a terminal, or leave --interactive out.' });
    if (interactive && a.json) throw new ImagepeError('INVALID_INPUT', '--interactive and --json do not go together: the console and the JSON lines would share standard output', { hint: 'Leave one of them out.' });
    const timeout = a.timeout ?? (interactive ? INTERACTIVE_TIMEOUT_S : DEFAULT_TIMEOUT_S);
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const uefi = a.uefi || a['secure-boot'];
    const vm = await startVm({
      ...(a.iso ? { iso: a.iso } : {}),
      ...(a.pxe ? { netBoot: { tftpDir: a.pxe, bootfile: uefi ? 'bootx64.efi' : 'boot.ipxe' } } : {}),
      bootFrom: a.usb ? 'usb' : 'cd',
      uefi,
      secureBoot: a['secure-boot'],
      disks: a.disk.map((path) => ({ path, size: a['disk-size'] })),
      share: a.share,
      forwards,
      memoryMiB: a.memory,
      accel: a.accel,
      allowReboot: a.reboot,
      ...(a.runtime ? { runtime: a.runtime } : {}),
      // A first container run builds the image: say so, it takes a while.
      events: (e) => {
        if (e.type === 'message' && !a.json) process.stderr.write(`imagepe vm: ${e.text}\n`);
      },
      lifetimeMs: timeout * 1000 + 10_000,
      signal: abort.signal,
      // A terminal gets the console byte for byte: prompts end without a newline.
      ...(interactive ? { onSerialData: (chunk: Buffer) => void process.stdout.write(chunk) } : {}),
      onSerialLine: a.json || interactive ? undefined : (line) => process.stdout.write(`${line}\n`),
      onEvent: a.json ? (event) => printJson(event) : undefined,
    });
    if (!a.json) {
      process.stderr.write(`imagepe vm: ${vm.runtime}; ${vm.accel.accel} (${vm.accel.reason}); serial log ${vm.logPath}\n`);
      if (a['secure-boot']) process.stderr.write("imagepe vm: Secure Boot enforced with Microsoft's keys; machine q35 with SMM (OVMF's Secure Boot build hangs without it)\n");
    }
    let terminal: AttachedTerminal | undefined;
    if (interactive) {
      process.stderr.write(`imagepe vm: this terminal is the serial console; Ctrl-C goes to the guest.\n${CONSOLE_ESCAPE_HELP.map((l) => `imagepe vm:   ${l}\n`).join('')}`);
      terminal = attachTerminal(vm, process.stdin, process.stderr);
    }
    const quit = terminal?.quitRequested.then(() => 'quit' as const);
    try {
      const waiting = a['wait-for'] ? vm.waitForEvent(a['wait-for'] as 'ready', timeout * 1000) : vm.waitForExit(timeout * 1000);
      const outcome = await (quit ? Promise.race([waiting, quit]) : waiting);
      if (outcome === 'quit') {
        // Stopping the VM ends the wait too; its failure is not one.
        waiting.catch(() => undefined);
        terminal?.detach();
        process.stderr.write(`\nimagepe vm: quit (Ctrl-A x) after ${vm.elapsedSeconds().toFixed(1)} s; stopping the VM\n`);
      } else if ('type' in outcome) {
        if (a.json) printJson({ type: 'result', operation: 'vm', event: outcome.type, seconds: vm.elapsedSeconds(), log: vm.logPath });
        else process.stderr.write(`imagepe vm: "${outcome.type}" after ${vm.elapsedSeconds().toFixed(1)} s\n`);
      } else if (a.json) printJson({ type: 'result', operation: 'vm', exitCode: outcome.exitCode ?? null, seconds: vm.elapsedSeconds(), log: vm.logPath });
    } finally {
      terminal?.detach();
      await vm.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
