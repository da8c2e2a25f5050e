/**
 * Reads dnsmasq's log (log-dhcp, log-facility=-) into facts about network boot clients. The
 * lines of one DHCP exchange share its transaction id and arrive one by one, the client's MAC
 * address only after its vendor and user class, so the reader keeps a little state per exchange.
 * Line formats are dnsmasq 2.90's, as captured in serve/dnsmasq-log.test.ts.
 */

/** What one log line says about a client. */
export type DnsmasqFact =
  /** A DHCP or proxyDHCP (PXE) request or reply naming the client. */
  | {
      kind: 'dhcp';
      /** DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPACK, DHCPNAK, DHCPRELEASE, DHCPINFORM, or PXE for a proxy reply. */
      message: string;
      mac: string;
      /** The address offered or acknowledged, or the client's own in a port 4011 PXE request. */
      ip: string | null;
      /** Option 93 as the vendor class spells it ("PXEClient:Arch:00007:..."), or null when the client sent none. */
      arch: number | null;
      vendorClass: string | null;
      userClass: string | null;
      /** The dnsmasq tags the request matched (ipxe, bios, efi64, httpboot, the interface). */
      tags: string[];
    }
  /** dnsmasq named this boot file (a TFTP name or a URL) in its reply to the client. */
  | { kind: 'boot-file'; mac: string; file: string }
  /** The client holds this address: a DHCPACK, or a PXE request sent from it. */
  | { kind: 'address'; mac: string; ip: string }
  /** A TFTP transfer finished; `file` is relative to the TFTP root when it lies under it. */
  | { kind: 'tftp-sent'; ip: string; file: string }
  /** A TFTP request that failed (file not found, permission denied). */
  | { kind: 'tftp-failed'; ip: string; file: string; message: string }
  /** A line of dnsmasq's own that is not about one client: warnings, errors. */
  | { kind: 'notice'; text: string };

const PREFIX = /^dnsmasq(?:-(dhcp|tftp))?\[\d+\]: (.*)$/;
const MAC = '((?:[0-9a-f]{2}:){5}[0-9a-f]{2})';
const IP = '(\\d{1,3}(?:\\.\\d{1,3}){3})';
// "DHCPACK(br0) 10.0.0.5 52:54:00:12:34:56 pc1", "PXE(br0) 52:54:00:12:34:56 proxy", "PXE(br0) 10.0.0.5 52:54:00:12:34:56 undionly.kpxe"
const EXCHANGE = new RegExp(`^(DHCP[A-Z]+|PXE)\\(([^)]*)\\)(?: ${IP})? ${MAC}(?: .*)?$`, 'i');

interface Exchange {
  vendorClass: string | null;
  userClass: string | null;
  mac: string | null;
  tags: string[];
}

/** The architecture number in a PXE or HTTP boot vendor class: "PXEClient:Arch:00007:UNDI:003016" → 7. */
export function archFromVendorClass(vendorClass: string | null): number | null {
  const m = /^(?:PXEClient|HTTPClient):Arch:(\d{5})/.exec(vendorClass ?? '');
  return m ? Number(m[1]) : null;
}

/** Client system architectures (RFC 4578 option 93, IANA's registry) as people name them. */
export function describeArch(arch: number | null): { firmware: 'bios' | 'uefi' | null; name: string } {
  switch (arch) {
    case null:
      return { firmware: null, name: 'unknown' };
    case 0:
      return { firmware: 'bios', name: 'BIOS x86' };
    case 6:
      return { firmware: 'uefi', name: 'UEFI x86' };
    case 7:
    case 9:
      return { firmware: 'uefi', name: 'UEFI x64' };
    case 10:
      return { firmware: 'uefi', name: 'UEFI ARM32' };
    case 11:
      return { firmware: 'uefi', name: 'UEFI ARM64' };
    case 15:
      return { firmware: 'uefi', name: 'UEFI x86 HTTP' };
    case 16:
      return { firmware: 'uefi', name: 'UEFI x64 HTTP' };
    case 19:
      return { firmware: 'uefi', name: 'UEFI ARM64 HTTP' };
    default:
      return { firmware: null, name: `arch ${arch}` };
  }
}

/**
 * Feed it dnsmasq's log lines in order; each call returns the facts that line completes. Holds
 * the state of the last `maxExchanges` exchanges, so a busy network cannot grow it without bound.
 */
export class DnsmasqLogReader {
  private readonly exchanges = new Map<string, Exchange>();

  constructor(
    /** The TFTP root, so TFTP facts name files relative to it. */
    private readonly tftpRoot: string | null = null,
    private readonly maxExchanges = 256,
  ) {}

  push(line: string): DnsmasqFact[] {
    const m = PREFIX.exec(line.trimEnd());
    if (!m) return [];
    const [, facility, text] = m as unknown as [string, string | undefined, string];
    if (facility === 'tftp') return this.tftp(text);
    if (facility === 'dhcp') return this.dhcp(text);
    // The general facility: start-up and warnings ("failed to ...", "warning: ...").
    return /fail|warning|error|cannot|illegal|bad /i.test(text) ? [{ kind: 'notice', text }] : [];
  }

  private tftp(text: string): DnsmasqFact[] {
    let m = /^sent (.+) to (\S+)$/.exec(text);
    if (m) return [{ kind: 'tftp-sent', ip: m[2]!, file: this.relative(m[1]!) }];
    m = /^file (.+) not found for (\S+)$/.exec(text);
    if (m) return [{ kind: 'tftp-failed', ip: m[2]!, file: this.relative(m[1]!), message: 'not found' }];
    // TFTP error 8 from the client ends option negotiation: UEFI asks for a file's size (tsize)
    // and aborts before it fetches the file. It is how every UEFI PXE boot starts, not a fault.
    if (/^error 8 .* received from /.test(text)) return [];
    m = /^(?:cannot access|failed sending) (\S+?):? (.+)$/.exec(text);
    if (m) return [{ kind: 'tftp-failed', ip: /\b(\d{1,3}(?:\.\d{1,3}){3})\b/.exec(m[2]!)?.[1] ?? '', file: this.relative(m[1]!), message: m[2]! }];
    return /error|fail|cannot|refused/i.test(text) ? [{ kind: 'notice', text }] : [];
  }

  private dhcp(text: string): DnsmasqFact[] {
    // "<xid> <what>" for lines about one exchange; start-up lines have no transaction id.
    const m = /^(\d+) (.*)$/.exec(text);
    if (!m) return /fail|warning|error|no address range|cannot/i.test(text) ? [{ kind: 'notice', text }] : [];
    const [, xid, rest] = m as unknown as [string, string, string];
    const ex = this.exchange(xid);
    let v: RegExpExecArray | null;
    if ((v = /^vendor class: (.*)$/.exec(rest))) {
      ex.vendorClass = v[1]!;
      return [];
    }
    if ((v = /^user class: (.*)$/.exec(rest))) {
      ex.userClass = v[1]!;
      return [];
    }
    if ((v = /^tags: (.*)$/.exec(rest))) {
      ex.tags = v[1]!.split(',').map((t) => t.trim()).filter(Boolean);
      return [];
    }
    if ((v = /^bootfile name: (.*)$/.exec(rest))) {
      return ex.mac ? [{ kind: 'boot-file', mac: ex.mac, file: v[1]! }] : [];
    }
    if ((v = EXCHANGE.exec(rest))) {
      const [, message, , ip, macText] = v as unknown as [string, string, string, string | undefined, string];
      const mac = macText.toLowerCase();
      ex.mac = mac;
      const facts: DnsmasqFact[] = [
        { kind: 'dhcp', message: message.toUpperCase(), mac, ip: ip ?? null, arch: archFromVendorClass(ex.vendorClass), vendorClass: ex.vendorClass, userClass: ex.userClass, tags: ex.tags },
      ];
      // A PXE request to port 4011 comes from an address the client already holds.
      if (ip && (message === 'DHCPACK' || message === 'PXE')) facts.push({ kind: 'address', mac, ip });
      return facts;
    }
    return [];
  }

  private exchange(xid: string): Exchange {
    let ex = this.exchanges.get(xid);
    if (!ex) {
      ex = { vendorClass: null, userClass: null, mac: null, tags: [] };
      this.exchanges.set(xid, ex);
      if (this.exchanges.size > this.maxExchanges) this.exchanges.delete(this.exchanges.keys().next().value!);
    }
    return ex;
  }

  private relative(path: string): string {
    const root = this.tftpRoot?.replace(/\/+$/, '');
    return root && path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
  }
}
