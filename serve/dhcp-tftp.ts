import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startService, type Service, type ServiceExitedError } from '../core/index.js';
import { IPXE_BOOT_MAC } from './boot-script.js';
import { FILE_FIELD_MAX, renderDnsmasqConfig, type DhcpMode, type DhcpRange } from './dnsmasq-config.js';
import { DnsmasqLogReader, type DnsmasqFact } from './dnsmasq-log.js';
import type { ServedInterface } from './interfaces.js';
import { prepareWorkDir, type WorkDir } from './tftp-root.js';

/** dnsmasq for one run of `imagepe serve`: its work directory, configuration and process. */
export interface DhcpTftpOptions {
  iface: ServedInterface;
  mode: DhcpMode;
  /** dhcp mode only. */
  range?: DhcpRange;
  pxeDir: string;
  /** The server's base URL, ending in "/". */
  publicUrl: string;
  secureBoot: boolean;
  ipxeDir?: string;
  startTimeoutMs?: number;
  /** Each fact read from dnsmasq's log (notices included). */
  onFact: (fact: DnsmasqFact) => void;
  /** Each raw log line. */
  onLine?: (line: string) => void;
  onUnexpectedExit: (error: ServiceExitedError) => void;
}

export interface DhcpTftp {
  service: Service;
  work: WorkDir;
  /** Stops dnsmasq and removes the work directory. */
  stop(): Promise<void>;
}

/**
 * Prepares the TFTP root and starts dnsmasq on it; resolves once dnsmasq has bound its sockets.
 * On failure the work directory is removed again. Throws what prepareWorkDir,
 * renderDnsmasqConfig and startService throw.
 */
export async function startDhcpTftp(o: DhcpTftpOptions): Promise<DhcpTftp> {
  const work = await prepareWorkDir({ pxeDir: o.pxeDir, secureBoot: o.secureBoot, serverUrl: o.publicUrl, ipxeDir: o.ipxeDir });
  try {
    const config = join(work.dir, 'dnsmasq.conf');
    const withMac = `${o.publicUrl}boot.ipxe?mac=${IPXE_BOOT_MAC}`;
    await writeFile(
      config,
      renderDnsmasqConfig({
        interface: o.iface.name,
        mode: o.mode,
        subnet: o.iface.subnet,
        ...(o.mode === 'dhcp' ? { range: o.range, leaseFile: join(work.dir, 'dnsmasq.leases') } : {}),
        tftpRoot: work.tftpRoot,
        // The MAC in the URL ties the client's address to it; left out when the URL would not fit the reply's file field.
        bootScriptUrl: Buffer.byteLength(withMac) <= FILE_FIELD_MAX ? withMac : `${o.publicUrl}boot.ipxe`,
        httpBootUrl: o.secureBoot ? `${o.publicUrl}bootx64.efi` : `${o.publicUrl}ipxe/snponly.efi`,
        serverAddress: o.iface.address,
        secureBoot: o.secureBoot,
      }),
    );
    const reader = new DnsmasqLogReader(work.tftpRoot);
    const onLine = (line: string) => {
      o.onLine?.(line);
      for (const fact of reader.push(line)) o.onFact(fact);
    };
    const service = await startService('dnsmasq', ['--keep-in-foreground', `--conf-file=${config}`, '--pid-file='], {
      what: `the DHCP and TFTP server on ${o.iface.name}`,
      hint: "Another DHCP or TFTP server on this machine may hold the ports (ss -ulpn); dnsmasq's own words are above.",
      // Its last start-up line: by then the DHCP and TFTP sockets are bound.
      readyLine: /TFTP root is /,
      startTimeoutMs: o.startTimeoutMs ?? 15_000,
      onStdoutLine: onLine,
      onStderrLine: onLine,
      onUnexpectedExit: o.onUnexpectedExit,
    });
    return {
      service,
      work,
      stop: async () => {
        await service.stop();
        await work.remove();
      },
    };
  } catch (e) {
    await work.remove();
    throw e;
  }
}
