import { checkRangeOnSubnet, parseDhcpRange, renderDnsmasqConfig, type DnsmasqConfigOptions } from './dnsmasq-config.js';
import { subnetOf } from './ipv4.js';

const base: DnsmasqConfigOptions = {
  interface: 'br0',
  mode: 'proxy',
  subnet: subnetOf('10.77.0.1', 24),
  tftpRoot: '/tmp/imagepe-serve-x/tftp',
  bootScriptUrl: 'http://10.77.0.1:8080/boot.ipxe?mac=${netX/mac:hexhyp}',
  httpBootUrl: 'http://10.77.0.1:8080/ipxe/snponly.efi',
  serverAddress: '10.77.0.1',
  secureBoot: false,
};
const lines = (o: Partial<DnsmasqConfigOptions>) => renderDnsmasqConfig({ ...base, ...o }).split('\n').filter((l) => l && !l.startsWith('#'));

describe('dnsmasq configuration', () => {
  it('serves one interface with no DNS, logging DHCP to stderr, TFTP from the run\'s root', () => {
    const l = lines({});
    expect(l.slice(0, 12)).toEqual(['port=0', 'interface=br0', 'except-interface=lo', 'bind-interfaces', 'no-resolv', 'no-hosts', 'log-dhcp', 'log-facility=-', 'dhcp-no-override', 'enable-tftp', 'tftp-root=/tmp/imagepe-serve-x/tftp', 'dhcp-match=set:ipxe,175']);
    expect(l).not.toContain('tftp-secure');
    expect(l).not.toContain('log-queries');
  });

  it('in proxy mode answers for the interface\'s subnet with a PXE menu item per architecture, and the URLs for iPXE and HTTP boot', () => {
    const l = lines({});
    expect(l).toEqual(
      expect.arrayContaining([
        'dhcp-range=10.77.0.0,proxy,255.255.255.0',
        'leasefile-ro',
        'dhcp-pxe-vendor=PXEClient,HTTPClient',
        'dhcp-userclass=set:ipxe,iPXE',
        'dhcp-vendorclass=set:httpboot,HTTPClient',
        'pxe-service=tag:!ipxe,x86PC,"imagepe: iPXE (BIOS)",undionly.kpxe',
        'pxe-service=tag:!ipxe,BC_EFI,"imagepe: iPXE (UEFI)",snponly.efi',
        'pxe-service=tag:!ipxe,x86-64_EFI,"imagepe: iPXE (UEFI)",snponly.efi',
        // With the next-server, without which iPXE ignores a proxy reply to a BIOS client.
        'dhcp-boot=tag:ipxe,http://10.77.0.1:8080/boot.ipxe?mac=${netX/mac:hexhyp},,10.77.0.1',
        'dhcp-boot=tag:httpboot,http://10.77.0.1:8080/ipxe/snponly.efi,,10.77.0.1',
      ]),
    );
    expect(l.some((x) => x.startsWith('dhcp-authoritative') || x.startsWith('dhcp-option'))).toBe(false);
  });

  it('with Secure Boot sends UEFI PXE clients to shim, and BIOS clients still to iPXE', () => {
    const l = lines({ secureBoot: true, httpBootUrl: 'http://10.77.0.1:8080/bootx64.efi' });
    expect(l).toContain('pxe-service=tag:!ipxe,BC_EFI,"imagepe: shim (UEFI)",bootx64.efi');
    expect(l).toContain('pxe-service=tag:!ipxe,x86-64_EFI,"imagepe: shim (UEFI)",bootx64.efi');
    expect(l).toContain('pxe-service=tag:!ipxe,x86PC,"imagepe: iPXE (BIOS)",undionly.kpxe');
    expect(l.some((x) => x.includes('snponly.efi'))).toBe(false);
    const dhcp = lines({ mode: 'dhcp', range: { start: '10.77.0.100', end: '10.77.0.200' }, secureBoot: true });
    expect(dhcp).toContain('dhcp-boot=tag:efi64,tag:!ipxe,tag:!httpboot,bootx64.efi');
  });

  it('in DHCP mode hands out the range, authoritatively, without router or DNS, and picks boot files by option 93 tags', () => {
    const l = lines({ mode: 'dhcp', range: { start: '10.77.0.100', end: '10.77.0.200', lease: '2h' }, leaseFile: '/tmp/imagepe-serve-x/dnsmasq.leases' });
    expect(l).toEqual(
      expect.arrayContaining([
        'dhcp-range=10.77.0.100,10.77.0.200,2h',
        'dhcp-leasefile=/tmp/imagepe-serve-x/dnsmasq.leases',
        'dhcp-authoritative',
        'dhcp-option=option:router',
        'dhcp-option=option:dns-server',
        'dhcp-match=set:bios,option:client-arch,0',
        'dhcp-match=set:efi64,option:client-arch,7',
        'dhcp-match=set:efi64,option:client-arch,9',
        'dhcp-boot=tag:bios,tag:!ipxe,undionly.kpxe',
        'dhcp-boot=tag:efi64,tag:!ipxe,tag:!httpboot,snponly.efi',
        'dhcp-boot=tag:ipxe,http://10.77.0.1:8080/boot.ipxe?mac=${netX/mac:hexhyp}',
        'dhcp-boot=tag:httpboot,http://10.77.0.1:8080/ipxe/snponly.efi',
        'dhcp-option-force=tag:httpboot,60,HTTPClient',
      ]),
    );
    expect(l.some((x) => x.startsWith('pxe-service'))).toBe(false);
    expect(l).not.toContain('leasefile-ro');
  });

  it('with DHCP off serves TFTP alone', () => {
    const l = lines({ mode: 'off' });
    expect(l).toContain('enable-tftp');
    expect(l.some((x) => /^dhcp-(range|boot|match)|^pxe-service/.test(x))).toBe(false);
  });

  it('refuses values dnsmasq would misread, and URLs too long for the file field', () => {
    expect(() => lines({ tftpRoot: '/tmp/a,b' })).toThrow(/comma, quote/);
    expect(() => lines({ interface: 'br0; rm' })).toThrow(/not a network interface/);
    expect(() => lines({ bootScriptUrl: `http://10.77.0.1:8080/${'x'.repeat(120)}` })).toThrow(/longer than the 127 bytes/);
    expect(() => lines({ subnet: undefined })).toThrow(/subnet/);
    expect(() => lines({ mode: 'dhcp' })).toThrow(/address range/);
    expect(() => lines({ serverAddress: 'br0' })).toThrow(/not an IPv4 address/);
  });
});

describe('--dhcp-range', () => {
  it('reads start and end, then a netmask and a lease time in either presence', () => {
    expect(parseDhcpRange('10.0.0.100,10.0.0.200')).toEqual({ start: '10.0.0.100', end: '10.0.0.200' });
    expect(parseDhcpRange('10.0.0.100, 10.0.0.200,255.255.255.0,12h')).toEqual({ start: '10.0.0.100', end: '10.0.0.200', netmask: '255.255.255.0', lease: '12h' });
    expect(parseDhcpRange('10.0.0.100,10.0.0.200,infinite')).toEqual({ start: '10.0.0.100', end: '10.0.0.200', lease: 'infinite' });
  });

  it('names what is wrong', () => {
    expect(() => parseDhcpRange('10.0.0.100')).toThrow(/start and an end/);
    expect(() => parseDhcpRange('10.0.0.300,10.0.0.400')).toThrow(/10\.0\.0\.300 is not an IPv4 address/);
    expect(() => parseDhcpRange('10.0.0.200,10.0.0.100')).toThrow(/start comes after the end/);
    expect(() => parseDhcpRange('10.0.0.1,10.0.0.9,255.0.255.0')).toThrow(/not a netmask/);
    expect(() => parseDhcpRange('10.0.0.1,10.0.0.9,soon')).toThrow(/neither a netmask nor a lease/);
  });

  it('must lie on the interface\'s subnet unless a netmask is given', () => {
    const subnet = subnetOf('10.77.0.1', 24);
    expect(() => checkRangeOnSubnet({ start: '10.77.0.10', end: '10.77.0.20' }, subnet, 'br0')).not.toThrow();
    expect(() => checkRangeOnSubnet({ start: '10.78.0.10', end: '10.78.0.20' }, subnet, 'br0')).toThrow("10.78.0.10 is not on br0's subnet 10.77.0.0/24");
    expect(() => checkRangeOnSubnet({ start: '10.78.0.10', end: '10.78.0.20', netmask: '255.255.255.0' }, subnet, 'br0')).not.toThrow();
  });
});
