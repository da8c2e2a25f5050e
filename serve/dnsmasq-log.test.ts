import { DnsmasqLogReader, archFromVendorClass, describeArch, type DnsmasqFact } from './dnsmasq-log.js';

// Lines captured from dnsmasq 2.90 (log-dhcp, log-facility=-) answering serve/testing/pxe-client.ts
// and busybox udhcpc in network namespaces; "sent size" lines trimmed where they add nothing.
const PROXY_BIOS = `dnsmasq-dhcp[5512]: 4059899785 available DHCP subnet: 10.77.0.0/255.255.255.0
dnsmasq-dhcp[5512]: 4059899785 vendor class: PXEClient:Arch:00000:UNDI:003016
dnsmasq-dhcp[5512]: 4059899785 PXE(br0) 6e:01:40:f0:95:24 proxy
dnsmasq-dhcp[5512]: 4059899785 tags: br0
dnsmasq-dhcp[5512]: 4059899785 broadcast response
dnsmasq-dhcp[5512]: 4059899785 sent size:  1 option: 53 message-type  2
dnsmasq-dhcp[5512]: 4059899785 sent size:  4 option: 54 server-identifier  10.77.0.1
dnsmasq-dhcp[5512]: 4059899785 sent size:  9 option: 60 vendor-class  50:58:45:43:6c:69:65:6e:74
dnsmasq-dhcp[5512]: 4059899785 sent size: 48 option: 43 vendor-encap  06:01:03:08:07:80:00:01:0a:4d:00:01:09:17...
dnsmasq-dhcp[5512]: 4059899785 available DHCP subnet: 10.77.0.0/255.255.255.0
dnsmasq-dhcp[5512]: 4059899785 vendor class: PXEClient:Arch:00000:UNDI:003016
dnsmasq-dhcp[5512]: 4059899785 available DHCP subnet: 10.77.0.0/255.255.255.0
dnsmasq-dhcp[5512]: 4059899785 vendor class: PXEClient:Arch:00000:UNDI:003016
dnsmasq-dhcp[5512]: 4059899785 PXE(br0) 10.77.0.137 6e:01:40:f0:95:24 undionly.kpxe
dnsmasq-dhcp[5512]: 4059899785 tags: br0
dnsmasq-dhcp[5512]: 4059899785 bootfile name: undionly.kpxe
dnsmasq-dhcp[5512]: 4059899785 next server: 10.77.0.1
dnsmasq-dhcp[5512]: 4059899785 sent size:  1 option: 53 message-type  5`;

const PROXY_UEFI = `dnsmasq-dhcp[5512]: 1346592402 vendor class: PXEClient:Arch:00007:UNDI:003016
dnsmasq-dhcp[5512]: 1346592402 PXE(br0) 6e:01:40:f0:95:24 proxy
dnsmasq-dhcp[5512]: 1346592402 tags: br0
dnsmasq-dhcp[5512]: 1346592402 next server: 10.77.0.1
dnsmasq-dhcp[5512]: 1346592402 broadcast response
dnsmasq-dhcp[5512]: 1346592402 vendor class: PXEClient:Arch:00007:UNDI:003016
dnsmasq-dhcp[5512]: 1346592402 vendor class: PXEClient:Arch:00007:UNDI:003016
dnsmasq-dhcp[5512]: 1346592402 PXE(br0) 6e:01:40:f0:95:24 proxy
dnsmasq-dhcp[5512]: 1346592402 tags: br0
dnsmasq-dhcp[5512]: 1346592402 bootfile name: snponly.efi
dnsmasq-dhcp[5512]: 1346592402 server name: 10.77.0.1
dnsmasq-dhcp[5512]: 1346592402 next server: 10.77.0.1`;

const PROXY_IPXE = `dnsmasq-dhcp[5512]: 3559780744 vendor class: PXEClient:Arch:00000:UNDI:003016
dnsmasq-dhcp[5512]: 3559780744 user class: iPXE
dnsmasq-dhcp[5512]: 3559780744 PXE(br0) 6e:01:40:f0:95:24 proxy
dnsmasq-dhcp[5512]: 3559780744 tags: ipxe, br0
dnsmasq-dhcp[5512]: 3559780744 bootfile name: http://10.77.0.1:8080/boot.ipxe
dnsmasq-dhcp[5512]: 3559780744 broadcast response`;

const PROXY_HTTP_BOOT = `dnsmasq-dhcp[5512]: 3160134002 vendor class: HTTPClient:Arch:00016:UNDI:003001
dnsmasq-dhcp[5512]: 3160134002 PXE(br0) 6e:01:40:f0:95:24 proxy
dnsmasq-dhcp[5512]: 3160134002 tags: httpboot, br0
dnsmasq-dhcp[5512]: 3160134002 bootfile name: http://10.77.0.1:8080/ipxe/snponly.efi
dnsmasq-dhcp[5512]: 3160134002 next server: 10.77.0.1
dnsmasq-dhcp[5512]: 3160134002 sent size: 10 option: 60 vendor-class  48:54:54:50:43:6c:69:65:6e:74`;

// DHCP mode: the trailing space after the MAC is dnsmasq's (the client sent no host name).
const DHCP_BIOS = `dnsmasq-dhcp[7208]: 3642411104 vendor class: PXEClient:Arch:00000:UNDI:002001
dnsmasq-dhcp[7208]: 3642411104 DHCPDISCOVER(br0) 6e:01:40:f0:95:24 
dnsmasq-dhcp[7208]: 3642411104 tags: bios, br0
dnsmasq-dhcp[7208]: 3642411104 DHCPOFFER(br0) 10.77.0.164 6e:01:40:f0:95:24 
dnsmasq-dhcp[7208]: 3642411104 requested options: 1:netmask, 3:router, 43:vendor-encap, 60:vendor-class, 
dnsmasq-dhcp[7208]: 3642411104 bootfile name: undionly.kpxe
dnsmasq-dhcp[7208]: 3642411104 next server: 10.77.0.1
dnsmasq-dhcp[7208]: 3642411104 vendor class: PXEClient:Arch:00000:UNDI:002001
dnsmasq-dhcp[7208]: 3642411104 DHCPREQUEST(br0) 10.77.0.164 6e:01:40:f0:95:24 
dnsmasq-dhcp[7208]: 3642411104 tags: bios, br0
dnsmasq-dhcp[7208]: 3642411104 DHCPACK(br0) 10.77.0.164 6e:01:40:f0:95:24 
dnsmasq-dhcp[7208]: 3642411104 bootfile name: undionly.kpxe
dnsmasq-dhcp[7208]: 3642411104 next server: 10.77.0.1`;

const START = `dnsmasq[7208]: started, version 2.90 DNS disabled
dnsmasq[7208]: compile time options: IPv6 GNU-getopt DBus no-UBus i18n IDN2 DHCP DHCPv6 no-Lua TFTP conntrack ipset nftset auth cryptohash DNSSEC loop-detect inotify dumpfile
dnsmasq-dhcp[7208]: DHCP, IP range 10.77.0.160 -- 10.77.0.170, lease time 10m
dnsmasq-dhcp[7208]: DHCP, sockets bound exclusively to interface br0
dnsmasq-tftp[7208]: TFTP root is /tmp/x/tftp  `;

const TFTP = `dnsmasq-tftp[5512]: sent /tmp/x/tftp/undionly.kpxe to 10.77.0.60
dnsmasq-tftp[5512]: file /tmp/x/tftp/nothere not found for 10.77.0.60
dnsmasq-tftp[5512]: sent /tmp/x/tftp/grub/grub.cfg to 10.77.0.164
dnsmasq-tftp[18294]: cannot access /tmp/x/tftp/locked: Permission denied`;

// A real Secure Boot chain in DHCP mode: OVMF (Secure Boot on) PXE-boots shim, shim fetches the
// signed GRUB (after the revocation lists shim looks for), GRUB its grub.cfg, the kernel and the
// initrd; then the PE's own DHCP client (udhcp) asks again.
const OVMF_SECURE_BOOT = `dnsmasq-dhcp[6208]: 148498360 vendor class: PXEClient:Arch:00007:UNDI:003000
dnsmasq-dhcp[6208]: 148498360 DHCPDISCOVER(br0) 52:54:00:aa:00:05 
dnsmasq-dhcp[6208]: 148498360 tags: efi64, br0
dnsmasq-dhcp[6208]: 148498360 DHCPOFFER(br0) 10.77.0.162 52:54:00:aa:00:05 
dnsmasq-dhcp[6208]: 148498360 bootfile name: bootx64.efi
dnsmasq-dhcp[6208]: 148498360 next server: 10.77.0.1
dnsmasq-dhcp[6208]: 148498360 broadcast response
dnsmasq-dhcp[6208]: 148498360 vendor class: PXEClient:Arch:00007:UNDI:003000
dnsmasq-dhcp[6208]: 148498360 DHCPREQUEST(br0) 10.77.0.162 52:54:00:aa:00:05 
dnsmasq-dhcp[6208]: 148498360 tags: efi64, br0
dnsmasq-dhcp[6208]: 148498360 DHCPACK(br0) 10.77.0.162 52:54:00:aa:00:05 
dnsmasq-dhcp[6208]: 148498360 bootfile name: bootx64.efi
dnsmasq-dhcp[6208]: 148498360 next server: 10.77.0.1
dnsmasq-dhcp[6208]: 148498360 broadcast response
dnsmasq-tftp[6208]: error 8 User aborted the transfer received from 10.77.0.162
dnsmasq-tftp[6208]: sent /tmp/imagepe-serve-s5HDqO/tftp/bootx64.efi to 10.77.0.162
dnsmasq-tftp[6208]: sent /tmp/imagepe-serve-s5HDqO/tftp/bootx64.efi to 10.77.0.162
dnsmasq-tftp[6208]: file /tmp/imagepe-serve-s5HDqO/tftp/revocations_sku.efi not found for 10.77.0.162
dnsmasq-tftp[6208]: file /tmp/imagepe-serve-s5HDqO/tftp/revocations_sbat.efi not found for 10.77.0.162
dnsmasq-tftp[6208]: file /tmp/imagepe-serve-s5HDqO/tftp/shim_certificate_0.efi not found for 10.77.0.162
dnsmasq-tftp[6208]: sent /tmp/imagepe-serve-s5HDqO/tftp/grubx64.efi to 10.77.0.162
dnsmasq-tftp[6208]: file /tmp/imagepe-serve-s5HDqO/tftp/grub/x86_64-efi/command.lst not found for 10.77.0.162
dnsmasq-tftp[6208]: file /tmp/imagepe-serve-s5HDqO/tftp/grub/x86_64-efi/fs.lst not found for 10.77.0.162
dnsmasq-tftp[6208]: file /tmp/imagepe-serve-s5HDqO/tftp/grub/x86_64-efi/crypto.lst not found for 10.77.0.162
dnsmasq-tftp[6208]: file /tmp/imagepe-serve-s5HDqO/tftp/grub/x86_64-efi/terminal.lst not found for 10.77.0.162
dnsmasq-tftp[6208]: sent /tmp/imagepe-serve-s5HDqO/tftp/grub/grub.cfg to 10.77.0.162
dnsmasq-tftp[6208]: sent /tmp/imagepe-serve-s5HDqO/tftp/vmlinuz to 10.77.0.162
dnsmasq-tftp[6208]: sent /tmp/imagepe-serve-s5HDqO/tftp/initrd.img to 10.77.0.162
dnsmasq-dhcp[6208]: 2518149657 vendor class: udhcp 1.35.0
dnsmasq-dhcp[6208]: 2518149657 DHCPDISCOVER(br0) 52:54:00:aa:00:05 
dnsmasq-dhcp[6208]: 2518149657 tags: br0`;

function read(text: string, reader = new DnsmasqLogReader('/tmp/x/tftp')): DnsmasqFact[] {
  return text.split('\n').flatMap((l) => reader.push(l));
}

const MAC = '6e:01:40:f0:95:24';

describe('dnsmasq log reader', () => {
  it('follows a BIOS PXE client through the proxy offer and the boot server, to its address and file', () => {
    expect(read(PROXY_BIOS)).toEqual([
      { kind: 'dhcp', message: 'PXE', mac: MAC, ip: null, arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:003016', userClass: null, tags: [] },
      { kind: 'dhcp', message: 'PXE', mac: MAC, ip: '10.77.0.137', arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:003016', userClass: null, tags: ['br0'] },
      { kind: 'address', mac: MAC, ip: '10.77.0.137' },
      { kind: 'boot-file', mac: MAC, file: 'undionly.kpxe' },
    ]);
  });

  it('reads the architecture of a UEFI client sent on to port 4011', () => {
    const facts = read(PROXY_UEFI);
    expect(facts.filter((f) => f.kind === 'dhcp').map((f) => f.kind === 'dhcp' && f.arch)).toEqual([7, 7]);
    expect(facts[facts.length - 1]).toEqual({ kind: 'boot-file', mac: MAC, file: 'snponly.efi' });
  });

  it('sees iPXE by its user class and tag, and the boot script URL it was given', () => {
    const facts = read(PROXY_IPXE);
    expect(facts[0]).toMatchObject({ kind: 'dhcp', userClass: 'iPXE', arch: 0 });
    expect(facts[1]).toEqual({ kind: 'boot-file', mac: MAC, file: 'http://10.77.0.1:8080/boot.ipxe' });
  });

  it('reads a UEFI HTTP boot client (HTTPClient, arch 16)', () => {
    const facts = read(PROXY_HTTP_BOOT);
    expect(facts[0]).toMatchObject({ kind: 'dhcp', arch: 16, vendorClass: 'HTTPClient:Arch:00016:UNDI:003001' });
    expect(facts[1]).toMatchObject({ kind: 'boot-file', file: 'http://10.77.0.1:8080/ipxe/snponly.efi' });
  });

  it('reads a full DHCP exchange: the offer, the request and the lease (address to MAC)', () => {
    const facts = read(DHCP_BIOS);
    expect(facts.filter((f) => f.kind === 'dhcp').map((f) => f.kind === 'dhcp' && [f.message, f.ip])).toEqual([
      ['DHCPDISCOVER', null],
      ['DHCPOFFER', '10.77.0.164'],
      ['DHCPREQUEST', '10.77.0.164'],
      ['DHCPACK', '10.77.0.164'],
    ]);
    expect(facts).toContainEqual({ kind: 'address', mac: MAC, ip: '10.77.0.164' });
    expect(facts.filter((f) => f.kind === 'address')).toHaveLength(1);
    expect(facts.filter((f) => f.kind === 'boot-file')).toHaveLength(2);
  });

  it('reads TFTP transfers with names relative to the TFTP root, and failures', () => {
    expect(read(TFTP)).toEqual([
      { kind: 'tftp-sent', ip: '10.77.0.60', file: 'undionly.kpxe' },
      { kind: 'tftp-failed', ip: '10.77.0.60', file: 'nothere', message: 'not found' },
      { kind: 'tftp-sent', ip: '10.77.0.164', file: 'grub/grub.cfg' },
      { kind: 'tftp-failed', ip: '', file: 'locked', message: 'Permission denied' },
    ]);
  });

  it('follows a real UEFI firmware through the signed chain, and takes its TFTP size probe (error 8) for no fault', () => {
    const facts = read(OVMF_SECURE_BOOT, new DnsmasqLogReader('/tmp/imagepe-serve-s5HDqO/tftp'));
    expect(facts.filter((f) => f.kind === 'notice')).toEqual([]);
    expect(facts.filter((f) => f.kind === 'tftp-sent').map((f) => f.kind === 'tftp-sent' && f.file)).toEqual(['bootx64.efi', 'bootx64.efi', 'grubx64.efi', 'grub/grub.cfg', 'vmlinuz', 'initrd.img']);
    expect(facts).toContainEqual({ kind: 'address', mac: '52:54:00:aa:00:05', ip: '10.77.0.162' });
    expect(facts.find((f) => f.kind === 'dhcp')).toMatchObject({ arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' });
    // The PE's own DHCP request: another vendor class, no architecture.
    expect(facts.filter((f) => f.kind === 'dhcp').pop()).toMatchObject({ vendorClass: 'udhcp 1.35.0', arch: null });
  });

  it('says nothing about the start-up lines and ignores lines that are not dnsmasq\'s', () => {
    expect(read(START)).toEqual([]);
    expect(read('some other program: hello\n\n')).toEqual([]);
  });

  it('passes warnings on as notices', () => {
    expect(read('dnsmasq[1]: warning: interface br9 does not currently exist')).toEqual([{ kind: 'notice', text: 'warning: interface br9 does not currently exist' }]);
  });

  it('keeps the state of a bounded number of exchanges', () => {
    const reader = new DnsmasqLogReader(null, 2);
    reader.push('dnsmasq-dhcp[1]: 1 vendor class: PXEClient:Arch:00007:UNDI:003016');
    reader.push('dnsmasq-dhcp[1]: 2 vendor class: x');
    reader.push('dnsmasq-dhcp[1]: 3 vendor class: y');
    // Exchange 1 was forgotten: its MAC line comes without a vendor class.
    expect(reader.push('dnsmasq-dhcp[1]: 1 PXE(br0) 52:54:00:00:00:01 proxy')[0]).toMatchObject({ arch: null, vendorClass: null });
  });

  it('names client architectures', () => {
    expect(archFromVendorClass('PXEClient:Arch:00009:UNDI:003016')).toBe(9);
    expect(archFromVendorClass('udhcp 1.35.0')).toBeNull();
    expect(describeArch(0)).toEqual({ firmware: 'bios', name: 'BIOS x86' });
    expect(describeArch(7)).toEqual({ firmware: 'uefi', name: 'UEFI x64' });
    expect(describeArch(16)).toEqual({ firmware: 'uefi', name: 'UEFI x64 HTTP' });
    expect(describeArch(99)).toEqual({ firmware: null, name: 'arch 99' });
  });
});
