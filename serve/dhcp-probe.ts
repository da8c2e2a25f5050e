import { run } from '../core/index.js';

/**
 * Asks whether a DHCP server answers on an interface, with nmap's broadcast-dhcp-discover script:
 * it broadcasts one DHCPDISCOVER and reports the offers, and never sends the DHCPREQUEST that
 * would take a lease. It uses a fixed client MAC (de:ad:c0:de:ca:fe) by default, so asking again
 * does not use up a server's addresses.
 */

/** One server that answered. */
export interface DhcpOffer {
  /** The server's identifier (option 54): its address. */
  server: string;
  /** The address it offered. */
  offered: string | null;
}

/** The offers in nmap's XML output (-oX -); [] when none came. */
export function parseDhcpProbeXml(xml: string): DhcpOffer[] {
  const offers: DhcpOffer[] = [];
  // <table key="Response 1 of 2"> (nmap 7.93; its docs show a colon after the count) <elem key="IP Offered">…</elem> … <elem key="Server Identifier">…</elem> </table>
  for (const m of xml.matchAll(/<table key="Response \d+ of \d+:?">([\s\S]*?)<\/table>/g)) {
    const body = m[1]!;
    const elem = (key: string) => new RegExp(`<elem key="${key}">([^<]*)</elem>`).exec(body)?.[1] ?? null;
    const type = elem('DHCP Message Type');
    const server = elem('Server Identifier');
    if (server && (!type || type === 'DHCPOFFER')) offers.push({ server, offered: elem('IP Offered') });
  }
  return offers;
}

/**
 * The DHCP servers that answer on `iface` within `waitMs` (a server that pings an address before
 * offering it, as dnsmasq does, answers after about 3 s). Needs root for nmap's raw sockets.
 * Throws ToolMissingError without nmap, CommandFailedError when nmap fails.
 */
export async function probeDhcpServers(iface: string, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<DhcpOffer[]> {
  const waitMs = options.waitMs ?? 6_000;
  const r = await run('nmap', ['-e', iface, '-sn', '-n', '--script', 'broadcast-dhcp-discover', '--script-args', `broadcast-dhcp-discover.timeout=${Math.ceil(waitMs / 1000)}s`, '-oX', '-'], {
    what: `asking whether a DHCP server answers on ${iface}`,
    timeoutMs: waitMs + 30_000,
    signal: options.signal,
  });
  return parseDhcpProbeXml(r.stdout);
}
