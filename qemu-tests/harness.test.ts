import { chooseAccelerator, cpuHasVirtualization } from './accel.js';
import { qemuArgs, qemuEscape, type VmSpec } from './args.js';
import { ConsoleEscapes, type ConsoleInput } from './vm.js';

const CPU_PLAIN = 'processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae sse sse2 hypervisor\n';
const CPU_VMX = 'processor\t: 0\nflags\t\t: fpu vme vmx sse2\n';

describe('accelerator choice', () => {
  it('reads vmx/svm from the flags line only', () => {
    expect(cpuHasVirtualization(CPU_PLAIN)).toBe(false);
    expect(cpuHasVirtualization(CPU_VMX)).toBe(true);
    expect(cpuHasVirtualization('model name : svm-like cpu\nflags : sse\n')).toBe(false);
  });
  it('uses KVM only with the CPU flag, an openable /dev/kvm and a good probe', () => {
    expect(chooseAccelerator({ force: 'auto', cpuinfo: CPU_PLAIN, kvmAccessible: true }).accel).toBe('tcg');
    expect(chooseAccelerator({ force: 'auto', cpuinfo: CPU_VMX, kvmAccessible: false }).accel).toBe('tcg');
    expect(chooseAccelerator({ force: 'auto', cpuinfo: CPU_VMX, kvmAccessible: true, probeOk: false }).accel).toBe('tcg');
    expect(chooseAccelerator({ force: 'auto', cpuinfo: CPU_VMX, kvmAccessible: true, probeOk: true }).accel).toBe('kvm');
    expect(chooseAccelerator({ force: 'kvm', cpuinfo: CPU_PLAIN, kvmAccessible: false }).accel).toBe('kvm');
  });
});

describe('qemu command line', () => {
  const base: VmSpec = { accel: 'tcg', firmware: 'bios', memoryMiB: 1024, cpus: 1, disks: [], forwards: [], qmpSocket: '/w/qmp.sock' };
  const joined = (s: VmSpec) => qemuArgs(s).join(' ');

  it('restricts user networking and adds only the explicit forwards and share', () => {
    const s = joined({ ...base, share: '/srv/images,x', forwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] });
    expect(s).toContain('-netdev user,id=net0,restrict=on,smb=/srv/images,,x,hostfwd=tcp:127.0.0.1:2222-:22');
    expect(s).toContain('-qmp unix:/w/qmp.sock,server=on,wait=off');
    expect(s).toContain('-serial stdio');
    expect(s).toContain('-device virtio-rng-pci,rng=rng0');
    expect(s).toContain('-no-reboot');
  });

  it('lets a guest reboot restart the VM only when asked', () => {
    expect(joined({ ...base, reboot: true })).not.toContain('-no-reboot');
    expect(joined({ ...base, reboot: false })).toContain('-no-reboot -boot menu=off,strict=on');
  });

  it('puts the serial console on a socket QEMU waits on, for the container runtime', () => {
    const s = joined({ ...base, serialSocket: '/w/serial,1.sock' });
    expect(s).toContain('-chardev socket,id=ser0,path=/w/serial,,1.sock,server=on,wait=on -serial chardev:ser0');
    expect(s).not.toContain('-serial stdio');
  });

  it('attaches the ISO as a CD or as a USB disk, first in boot order', () => {
    expect(joined({ ...base, iso: { path: '/i.iso', as: 'cd' } })).toContain('media=cdrom,readonly=on,format=raw,file=/i.iso -device ide-cd,drive=cd0,bootindex=0');
    const usb = joined({ ...base, iso: { path: '/i.iso', as: 'usb' } });
    expect(usb).toContain('-device qemu-xhci');
    expect(usb).toContain('usb-storage,bus=xhci.0,drive=stick0,removable=on,bootindex=0');
  });

  it('boots UEFI with read-only code and a private vars file', () => {
    const s = joined({ ...base, firmware: 'uefi', ovmf: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/w/OVMF_VARS.fd' } });
    expect(s).toContain('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd');
    expect(s).toContain('if=pflash,format=raw,unit=1,file=/w/OVMF_VARS.fd');
    expect(() => qemuArgs({ ...base, firmware: 'uefi' })).toThrow(/OVMF/);
  });

  it('adds target disks as virtio and the CPU model for KVM', () => {
    const s = joined({ ...base, accel: 'kvm', disks: [{ path: '/d0.qcow2', format: 'qcow2' }, { path: '/d1.raw', format: 'raw' }] });
    expect(s).toContain('-accel kvm -cpu host');
    expect(s).toContain('-drive if=none,id=disk0,format=qcow2,file=/d0.qcow2 -device virtio-blk-pci,drive=disk0');
    expect(s).toContain('id=disk1,format=raw,file=/d1.raw');
    expect(qemuEscape('a,b')).toBe('a,,b');
  });

  it('makes a Secure Boot machine a q35 with SMM and SMM-only flash, and refuses Secure Boot without UEFI', () => {
    const ovmf = { code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', vars: '/w/OVMF_VARS.fd' };
    const s = joined({ ...base, firmware: 'uefi', ovmf, secureBoot: true });
    expect(s).toContain('-machine q35,smm=on');
    expect(s).toContain('-global driver=cfi.pflash01,property=secure,value=on');
    expect(joined({ ...base, firmware: 'uefi', ovmf })).toContain('-machine pc ');
    expect(() => qemuArgs({ ...base, secureBoot: true })).toThrow(/UEFI/);
  });

  it('network boot serves a TFTP folder with the boot file and keeps the NIC option ROM; otherwise the ROM is left out', () => {
    const s = joined({ ...base, netBoot: { tftpDir: '/out/pxe', bootfile: 'bootx64.efi' } });
    expect(s).toContain('-netdev user,id=net0,restrict=on,tftp=/out/pxe,bootfile=bootx64.efi');
    expect(s).toMatch(/-device virtio-net-pci,id=nic0,netdev=net0,bootindex=0( |$)/);
    expect(joined({ ...base, firmware: 'uefi', ovmf: { code: '/c', vars: '/v' }, netBoot: { tftpDir: '/p', bootfile: 'b' } })).toContain('netdev=net0,bootindex=0,romfile=');
    expect(joined({ ...base, mac: '52:54:00:00:00:01' })).toContain('-device virtio-net-pci,id=nic0,netdev=net0,romfile=,mac=52:54:00:00:00:01');
  });
});

describe('interactive console keys', () => {
  const feed = (e: ConsoleEscapes, text: string): ConsoleInput[] => e.feed(Buffer.from(text, 'latin1'));
  const shown = (inputs: ConsoleInput[]) => inputs.map((i) => (i.kind === 'guest' ? `guest:${JSON.stringify(i.bytes.toString('latin1'))}` : i.kind));

  it('passes every key but Ctrl-A to the guest, Ctrl-C included', () => {
    expect(shown(feed(new ConsoleEscapes(), 'ls\x03\r'))).toEqual(['guest:"ls\\u0003\\r"']);
  });

  it('reads Ctrl-A x, c, h and Ctrl-A Ctrl-A, and drops an undefined key', () => {
    const e = new ConsoleEscapes();
    expect(shown(feed(e, 'a\x01xb'))).toEqual(['guest:"a"', 'quit', 'guest:"b"']);
    expect(shown(feed(e, '\x01c\x01H\x01?'))).toEqual(['monitor', 'help', 'help']);
    expect(shown(feed(e, '\x01\x01z\x01qy'))).toEqual(['guest:"\\u0001"', 'guest:"z"', 'guest:"y"']);
  });

  it('keeps an escape split across two reads', () => {
    const e = new ConsoleEscapes();
    expect(shown(feed(e, 'ok\x01'))).toEqual(['guest:"ok"']);
    expect(shown(feed(e, 'X'))).toEqual(['quit']);
    expect(shown(feed(e, 'X'))).toEqual(['guest:"X"']);
  });
});
