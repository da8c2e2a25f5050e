import type { Argv, CommandModule } from 'yargs';
import { ImagepeError } from '../../core/index.js';
import { QEMU_RUNTIMES, startVm, type PortForward, type QemuRuntimeName } from '../../qemu-tests/index.js';
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
  timeout: number;
}

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
      .option('timeout', { type: 'number', default: 600, describe: 'Seconds before the VM is stopped and the command fails' })
      .example('$0 vm --iso out/imagepe.iso --disk target.qcow2 --share ./images --uefi', 'boot the PE with a target disk and an image share')
      .example('$0 vm --iso out/imagepe.iso --disk t.qcow2 --secure-boot --wait-for ready', 'check that the PE starts with Secure Boot on')
      .example('$0 vm --iso out/imagepe.iso --disk t.qcow2 --wait-for ready --json', 'check that the PE boots, from a script')
      .example('$0 vm --iso out/imagepe.iso --disk t.qcow2 --runtime container', 'the same with QEMU, OVMF and Samba from the pinned image') as Argv<VmArgs>,
  handler: async (a) => {
    const forwards = a.forward.map(parseForward);
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
      ...(a.runtime ? { runtime: a.runtime } : {}),
      // A first container run builds the image: say so, it takes a while.
      events: (e) => {
        if (e.type === 'message' && !a.json) process.stderr.write(`imagepe vm: ${e.text}\n`);
      },
      lifetimeMs: a.timeout * 1000 + 10_000,
      signal: abort.signal,
      onSerialLine: a.json ? undefined : (line) => process.stdout.write(`${line}\n`),
      onEvent: a.json ? (event) => printJson(event) : undefined,
    });
    if (!a.json) {
      process.stderr.write(`imagepe vm: ${vm.runtime}; ${vm.accel.accel} (${vm.accel.reason}); serial log ${vm.logPath}\n`);
      if (a['secure-boot']) process.stderr.write("imagepe vm: Secure Boot enforced with Microsoft's keys; machine q35 with SMM (OVMF's Secure Boot build hangs without it)\n");
    }
    try {
      if (a['wait-for']) {
        const event = await vm.waitForEvent(a['wait-for'] as 'ready', a.timeout * 1000);
        if (a.json) printJson({ type: 'result', operation: 'vm', event: event.type, seconds: vm.elapsedSeconds(), log: vm.logPath });
        else process.stderr.write(`imagepe vm: "${event.type}" after ${vm.elapsedSeconds().toFixed(1)} s\n`);
      } else {
        const exit = await vm.waitForExit(a.timeout * 1000);
        if (a.json) printJson({ type: 'result', operation: 'vm', exitCode: exit.exitCode ?? null, seconds: vm.elapsedSeconds(), log: vm.logPath });
      }
    } finally {
      await vm.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
