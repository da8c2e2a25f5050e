import { ImagepeError } from '../core/index.js';
import { inSubnet, ipv4ToNumber, isIpv4, netmaskToPrefix, type Ipv4Subnet } from './ipv4.js';

/**
 * The dnsmasq configuration of `imagepe serve`: no DNS, DHCP as a proxy beside the site's DHCP
 * server or as the only DHCP server, TFTP from a root the server prepares, and one boot file per
 * kind of client. Every line here was checked against dnsmasq 2.90 with PXE, iPXE and UEFI HTTP
 * boot requests in network namespaces (serve/serve.integration.test.ts, docs/serve.md).
 */

/** proxy: the site's DHCP server hands out addresses and dnsmasq adds the boot information; dhcp: dnsmasq is the DHCP server; off: TFTP only. */
export type DhcpMode = 'proxy' | 'dhcp' | 'off';

/** A DHCP address range for `dhcp` mode, as dnsmasq's dhcp-range takes it. */
export interface DhcpRange {
  start: string;
  end: string;
  /** Needed only when the range is not on the interface's own subnet. */
  netmask?: string;
  /** dnsmasq's lease time: seconds, or with m/h/d/w, or "infinite"; dnsmasq's default is 1h. */
  lease?: string;
}

/** The boot files in the TFTP root, by the name clients ask for. */
export const TFTP_BOOT_FILES = {
  /** iPXE for BIOS PXE ROMs (UNDI); from Debian's ipxe package. */
  bios: 'undionly.kpxe',
  /** iPXE for UEFI PXE, using the firmware's own network driver (SNP); from Debian's ipxe package. */
  uefi: 'snponly.efi',
  /** The PXE bundle's shim, signed by Microsoft's UEFI CA; it loads grubx64.efi beside it over TFTP. */
  shim: 'bootx64.efi',
} as const;

export interface DnsmasqConfigOptions {
  /** The interface dnsmasq serves, and only it. */
  interface: string;
  mode: DhcpMode;
  /** proxy mode: the subnet of the interface, which the proxy answers for. */
  subnet?: Ipv4Subnet;
  /** dhcp mode: the addresses to hand out. */
  range?: DhcpRange;
  tftpRoot: string;
  /** dhcp mode: where dnsmasq keeps its leases; without it, it keeps none on disk. */
  leaseFile?: string;
  /**
   * The boot script for clients that already run iPXE. iPXE expands ${...} in the file name it
   * is given, so the URL may carry the client's MAC address. At most 127 bytes: it travels in the
   * BOOTP file field (dhcp-no-override).
   */
  bootScriptUrl: string;
  /** The EFI program UEFI HTTP boot clients load (same 127-byte limit). */
  httpBootUrl: string;
  /** This server's address on the interface: the next-server of the replies that carry a URL. */
  serverAddress: string;
  /** UEFI PXE clients get the signed chain (shim, then the bundle's signed GRUB over TFTP) instead of iPXE, which is not signed. */
  secureBoot: boolean;
}

/** The BOOTP file field holds 128 bytes with its terminating zero. */
export const FILE_FIELD_MAX = 127;

/**
 * The configuration file's text. Throws INVALID_INPUT for values dnsmasq would misread (a comma
 * or quote in a path or URL, a URL too long for the file field) or a mode without its subnet or range.
 */
export function renderDnsmasqConfig(o: DnsmasqConfigOptions): string {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(o.interface)) throw new ImagepeError('INVALID_INPUT', `"${o.interface}" is not a network interface name`);
  checkValue('the TFTP root', o.tftpRoot);
  if (o.leaseFile) checkValue('the lease file', o.leaseFile);
  for (const [what, url] of [
    ['the boot script URL', o.bootScriptUrl],
    ['the HTTP boot URL', o.httpBootUrl],
  ] as const) {
    checkValue(what, url);
    if (Buffer.byteLength(url) > FILE_FIELD_MAX) {
      throw new ImagepeError('INVALID_INPUT', `${what} ${url} is longer than the ${FILE_FIELD_MAX} bytes a DHCP reply's file field holds`, { hint: 'Give a shorter --public-url (an address instead of a long host name).' });
    }
  }
  if (!isIpv4(o.serverAddress)) throw new ImagepeError('INVALID_INPUT', `${o.serverAddress} is not an IPv4 address`);
  const uefiLoader = o.secureBoot ? TFTP_BOOT_FILES.shim : TFTP_BOOT_FILES.uefi;

  const lines = [
    '# Written by imagepe serve for this run; removed when it stops.',
    '# No DNS: this server only boots machines.',
    'port=0',
    `interface=${o.interface}`,
    'except-interface=lo',
    // Sockets bound to this interface only, so another DHCP or TFTP server on other interfaces keeps working.
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    'log-dhcp',
    // imagepe reads the log from dnsmasq's stderr to learn what each client asked for and got.
    'log-facility=-',
    // The boot file stays in the BOOTP file field: some PXE ROMs read it nowhere else.
    'dhcp-no-override',
    'enable-tftp',
    // Not tftp-secure: dnsmasq drops root and runs as nobody, and with tftp-secure it would serve
    // only files nobody owns. The root is a directory imagepe made for this run, holding only boot files.
    `tftp-root=${o.tftpRoot}`,
  ];
  if (o.mode === 'off') return `${lines.join('\n')}\n`;

  lines.push(
    '',
    '# Kinds of client. iPXE sends option 175 and the user class "iPXE"; UEFI HTTP boot firmware the vendor class HTTPClient.',
    'dhcp-match=set:ipxe,175',
    'dhcp-userclass=set:ipxe,iPXE',
    'dhcp-vendorclass=set:httpboot,HTTPClient',
  );
  if (o.mode === 'proxy') {
    if (!o.subnet) throw new ImagepeError('INVALID_INPUT', 'proxy DHCP needs the subnet of the interface');
    lines.push(
      '',
      `# proxyDHCP: the site's DHCP server hands out the addresses; this one adds only the boot information for ${o.subnet.network}/${o.subnet.prefixLength}.`,
      `dhcp-range=${o.subnet.network},proxy,${o.subnet.netmask}`,
      'leasefile-ro',
      // dnsmasq answers proxy requests only from PXEClient vendor classes unless told of others.
      'dhcp-pxe-vendor=PXEClient,HTTPClient',
      // PXE ROMs are answered with a boot menu of one item each, which they boot without asking;
      // a basename with a suffix is sent as it is (no ".0" appended, dnsmasq >= 2.76).
      `pxe-service=tag:!ipxe,x86PC,"imagepe: iPXE (BIOS)",${TFTP_BOOT_FILES.bios}`,
      // UEFI clients (arch 7 and 9) are sent on to port 4011, where the one matching item's file is named.
      `pxe-service=tag:!ipxe,BC_EFI,"imagepe: ${o.secureBoot ? 'shim (UEFI)' : 'iPXE (UEFI)'}",${uefiLoader}`,
      `pxe-service=tag:!ipxe,x86-64_EFI,"imagepe: ${o.secureBoot ? 'shim (UEFI)' : 'iPXE (UEFI)'}",${uefiLoader}`,
      // For iPXE and HTTP boot clients no menu item matches, and the proxy reply carries the file
      // below; for HTTPClient it also carries option 60 HTTPClient, as UEFI HTTP boot requires.
      // The next-server is not optional: iPXE takes a ProxyDHCP reply only when it names a
      // next-server and a file, or a PXE menu, and dnsmasq leaves it empty for BIOS clients
      // (iPXE 1.0.0+git-20190125 retried its ProxyDHCPREQUEST and booted nothing without it).
      `dhcp-boot=tag:ipxe,${o.bootScriptUrl},,${o.serverAddress}`,
      `dhcp-boot=tag:httpboot,${o.httpBootUrl},,${o.serverAddress}`,
    );
  } else {
    const r = o.range;
    if (!r) throw new ImagepeError('INVALID_INPUT', 'DHCP mode needs an address range', { hint: 'Pass --dhcp-range START,END[,NETMASK[,LEASE]].' });
    if (o.leaseFile === undefined) lines.push('leasefile-ro');
    else lines.push(`dhcp-leasefile=${o.leaseFile}`);
    lines.push(
      '',
      '# DHCP server for this network: imagepe serve checked that no other one answers on it.',
      `dhcp-range=${[r.start, r.end, ...(r.netmask ? [r.netmask] : []), ...(r.lease ? [r.lease] : [])].join(',')}`,
      // The only DHCP server here: a client asking to renew an address it got before is answered at once.
      'dhcp-authoritative',
      // This host is neither the network's router nor its name server; send neither option.
      'dhcp-option=option:router',
      'dhcp-option=option:dns-server',
      // Client architecture (option 93): 0 BIOS, 7 and 9 UEFI x64.
      'dhcp-match=set:bios,option:client-arch,0',
      'dhcp-match=set:efi64,option:client-arch,7',
      'dhcp-match=set:efi64,option:client-arch,9',
      // The tags exclude one another, so whichever order dnsmasq tries these in, one applies.
      `dhcp-boot=tag:bios,tag:!ipxe,${TFTP_BOOT_FILES.bios}`,
      `dhcp-boot=tag:efi64,tag:!ipxe,tag:!httpboot,${uefiLoader}`,
      `dhcp-boot=tag:ipxe,${o.bootScriptUrl}`,
      `dhcp-boot=tag:httpboot,${o.httpBootUrl}`,
      // UEFI HTTP boot accepts only replies that name it in option 60.
      'dhcp-option-force=tag:httpboot,60,HTTPClient',
    );
  }
  return `${lines.join('\n')}\n`;
}

function checkValue(what: string, value: string): void {
  // dnsmasq splits option values on commas and reads # as a comment; quoting is not accepted everywhere.
  if (/[,"#\s]/.test(value)) throw new ImagepeError('INVALID_INPUT', `${what} "${value}" holds a comma, quote, # or space, which dnsmasq's configuration cannot carry`);
}

/**
 * Reads --dhcp-range: "START,END[,NETMASK][,LEASE]" (dnsmasq's own order). Throws INVALID_INPUT
 * naming the part that is wrong.
 */
export function parseDhcpRange(text: string): DhcpRange {
  const bad = (why: string) =>
    new ImagepeError('INVALID_INPUT', `--dhcp-range ${text}: ${why}`, { hint: 'For example --dhcp-range 10.0.0.100,10.0.0.200 or 10.0.0.100,10.0.0.200,255.255.255.0,12h' });
  const parts = text.split(',').map((p) => p.trim());
  const [start, end, ...rest] = parts;
  if (!start || !end) throw bad('give a start and an end address');
  if (!isIpv4(start)) throw bad(`${start} is not an IPv4 address`);
  if (!isIpv4(end)) throw bad(`${end} is not an IPv4 address`);
  if (ipv4ToNumber(start)! > ipv4ToNumber(end)!) throw bad('the start comes after the end');
  const range: DhcpRange = { start, end };
  for (const part of rest) {
    if (isIpv4(part) && range.netmask === undefined && range.lease === undefined) {
      if (netmaskToPrefix(part) === undefined) throw bad(`${part} is not a netmask`);
      range.netmask = part;
    } else if (/^(\d+[mhdw]?|infinite)$/.test(part) && range.lease === undefined) {
      range.lease = part;
    } else throw bad(`"${part}" is neither a netmask nor a lease time (seconds, or 45m, 12h, 2d, 1w, infinite)`);
  }
  return range;
}

/**
 * Checks a range against the interface's subnet: without a netmask, dnsmasq serves a range only
 * on the subnet of an interface address, and would otherwise start and answer no one.
 */
export function checkRangeOnSubnet(range: DhcpRange, subnet: Ipv4Subnet, interfaceName: string): void {
  if (range.netmask) return;
  for (const a of [range.start, range.end]) {
    if (!inSubnet(a, subnet)) {
      throw new ImagepeError('INVALID_INPUT', `--dhcp-range: ${a} is not on ${interfaceName}'s subnet ${subnet.network}/${subnet.prefixLength}`, {
        hint: 'Give addresses of that subnet, or a netmask as the third part when the clients are behind a relay.',
      });
    }
  }
}
