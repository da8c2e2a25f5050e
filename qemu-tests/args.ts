import type { Accelerator } from './accel.js';

export interface PortForward {
  protocol: 'tcp' | 'udp';
  /** Bound on 127.0.0.1 only. */
  hostPort: number;
  guestPort: number;
}

export interface GuestForward {
  /** An address in QEMU's user network (10.0.2.0/24) that nothing else uses. */
  guestIp: string;
  guestPort: number;
  /** On 127.0.0.1. */
  hostPort: number;
  /**
   * A connection of its own to hostPort for each guest connection, through `busybox nc` (QEMU's
   * cmd: form). Without it QEMU opens one connection when it starts and every guest connection
   * shares it: right for one SMB session, wrong for HTTP, where each request may open another.
   */
  perConnection?: boolean;
}

export interface VmSpec {
  accel: Accelerator;
  firmware: 'bios' | 'uefi';
  /** OVMF code (read-only) and this VM's private copy of the variable store. */
  ovmf?: { code: string; vars: string };
  /**
   * Secure Boot (uefi only, with OVMF built for it and Microsoft's keys enrolled in its vars):
   * such OVMF keeps its variables in SMM, so the machine must be a q35 with SMM and its flash
   * writable only from SMM; without SMM it hangs before printing anything.
   */
  secureBoot?: boolean;
  memoryMiB: number;
  cpus: number;
  /** The boot ISO, as a CD or as a USB disk (the hybrid image written to a stick). */
  iso?: { path: string; as: 'cd' | 'usb' };
  /**
   * Network boot. From QEMU's own DHCP and TFTP: `bootfile` (a path inside `tftpDir`, or an
   * http:// URL iPXE fetches) is what DHCP offers. On a tap (`tap` set): from the DHCP and TFTP
   * servers on its network, and both fields are left out.
   */
  netBoot?: { tftpDir?: string; bootfile?: string };
  /** Join this tap device (made by the caller, in the network namespace QEMU runs in) instead of user networking. */
  tap?: string;
  /** Direct kernel boot, as PXE would load it. */
  kernel?: { image: string; initrd: string; append: string };
  disks: readonly { path: string; format: 'qcow2' | 'raw' }[];
  /** Directory QEMU serves over SMB at //10.0.2.4/qemu. */
  share?: string;
  forwards: readonly PortForward[];
  /** The NIC's MAC address; QEMU's default is 52:54:00:12:34:56 for every guest. */
  mac?: string;
  /** Guest connections to guestIp:guestPort are carried to 127.0.0.1:hostPort (a server the test runs). */
  guestForwards?: readonly GuestForward[];
  /** busybox's path, for per-connection guest forwards. */
  busybox?: string;
  qmpSocket: string;
  /**
   * The serial console on a unix socket QEMU listens on and waits for a client on before it
   * starts the guest (so nothing the guest prints is lost), instead of QEMU's stdio: for a QEMU
   * in a container, whose stdio cannot be streamed as a child's can.
   */
  serialSocket?: string;
  /**
   * A guest reboot restarts the VM, as a machine does. Without it (the default) QEMU exits
   * instead (-no-reboot), which is how a harness sees a deploy's `after: reboot`.
   */
  reboot?: boolean;
  extraArgs?: readonly string[];
}

/** Commas in QEMU option values are escaped by doubling them. */
export function qemuEscape(value: string): string {
  return value.replace(/,/g, ',,');
}

/**
 * The qemu-system-x86_64 command line. The network is user-mode with restrict=on, so the
 * guest reaches nothing but QEMU's own DHCP, DNS and SMB services and the listed forwards.
 */
export function qemuArgs(spec: VmSpec): string[] {
  if (spec.secureBoot && spec.firmware !== 'uefi') throw new Error('Secure Boot needs UEFI firmware');
  const a: string[] = ['-nodefaults', '-no-user-config', '-machine', spec.secureBoot ? 'q35,smm=on' : 'pc', '-accel', spec.accel];
  if (spec.secureBoot) a.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
  if (spec.accel === 'kvm') a.push('-cpu', 'host');
  a.push('-m', String(spec.memoryMiB), '-smp', String(spec.cpus));
  a.push('-display', 'none', '-vga', 'std', '-monitor', 'none');
  if (spec.serialSocket) a.push('-chardev', `socket,id=ser0,path=${qemuEscape(spec.serialSocket)},server=on,wait=on`, '-serial', 'chardev:ser0');
  else a.push('-serial', 'stdio');
  a.push('-qmp', `unix:${qemuEscape(spec.qmpSocket)},server=on,wait=off`);
  if (!spec.reboot) a.push('-no-reboot');
  a.push('-boot', 'menu=off,strict=on');
  // Without an entropy source the emulated CPU (no RDRAND) leaves the kernel's CRNG
  // uninitialized for seconds, and Node.js blocks in getrandom() until it is.
  a.push('-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0');
  if (spec.firmware === 'uefi') {
    if (!spec.ovmf) throw new Error('UEFI boot needs the OVMF code and vars files');
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${qemuEscape(spec.ovmf.code)}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${qemuEscape(spec.ovmf.vars)}`);
  }
  if (spec.iso?.as === 'cd') {
    a.push('-drive', `if=none,id=cd0,media=cdrom,readonly=on,format=raw,file=${qemuEscape(spec.iso.path)}`);
    a.push('-device', 'ide-cd,drive=cd0,bootindex=0');
  } else if (spec.iso?.as === 'usb') {
    a.push('-device', 'qemu-xhci,id=xhci');
    a.push('-drive', `if=none,id=stick0,readonly=on,format=raw,file=${qemuEscape(spec.iso.path)}`);
    a.push('-device', 'usb-storage,bus=xhci.0,drive=stick0,removable=on,bootindex=0');
  }
  if (spec.kernel) a.push('-kernel', spec.kernel.image, '-initrd', spec.kernel.initrd, '-append', spec.kernel.append);
  // Disks boot after the medium, as firmware orders them on a machine with the stick left in;
  // with strict=on a disk without a bootindex would never be tried.
  spec.disks.forEach((d, i) => {
    a.push('-drive', `if=none,id=disk${i},format=${d.format},file=${qemuEscape(d.path)}`);
    a.push('-device', `virtio-blk-pci,drive=disk${i},bootindex=${i + 1}`);
  });
  let netdev: string;
  if (spec.tap) {
    if (spec.share || spec.forwards.length || spec.guestForwards?.length) throw new Error('a VM on a tap has no user-mode share or forwards');
    netdev = `tap,id=net0,ifname=${qemuEscape(spec.tap)},script=no,downscript=no`;
  } else {
    netdev = 'user,id=net0,restrict=on';
    if (spec.netBoot?.tftpDir) netdev += `,tftp=${qemuEscape(spec.netBoot.tftpDir)}`;
    if (spec.netBoot?.bootfile) netdev += `,bootfile=${qemuEscape(spec.netBoot.bootfile)}`;
    if (spec.share) netdev += `,smb=${qemuEscape(spec.share)}`;
    for (const f of spec.forwards) netdev += `,hostfwd=${f.protocol}:127.0.0.1:${f.hostPort}-:${f.guestPort}`;
    for (const g of spec.guestForwards ?? []) {
      netdev += `,guestfwd=tcp:${g.guestIp}:${g.guestPort}-${g.perConnection ? `cmd:${qemuEscape(spec.busybox ?? 'busybox')} nc 127.0.0.1 ${g.hostPort}` : `tcp:127.0.0.1:${g.hostPort}`}`;
    }
  }
  // The NIC's option ROM (iPXE) serves BIOS network boot, and UEFI's when the boot file is an
  // http:// URL only iPXE can fetch. Otherwise UEFI boots from the network with OVMF's own
  // virtio-net driver and PXE client, as a machine without iPXE in its firmware does: shim
  // fetching GRUB through iPXE's emulated PXE protocol reads it with a wrong size and refuses it.
  const ipxeRom = spec.netBoot && (spec.firmware === 'bios' || (!spec.secureBoot && /^https?:/.test(spec.netBoot.bootfile ?? '')));
  const rom = ipxeRom ? [] : ['romfile='];
  const nic = ['virtio-net-pci', 'id=nic0', 'netdev=net0', ...(spec.netBoot ? ['bootindex=0'] : []), ...rom, ...(spec.mac ? [`mac=${spec.mac}`] : [])];
  a.push('-netdev', netdev, '-device', nic.join(','));
  a.push(...(spec.extraArgs ?? []));
  return a;
}
