import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CancelledError, ImagepeError, run } from '../core/index.js';
import { normalizeBaseUrl } from './boot-script.js';
import { startDhcpTftp, type DhcpTftp } from './dhcp-tftp.js';
import { probeDhcpServers, type DhcpOffer } from './dhcp-probe.js';
import { checkRangeOnSubnet, type DhcpMode, type DhcpRange } from './dnsmasq-config.js';
import { createHttpSite, listenHttp } from './http.js';
import { findServedInterface, type ServedInterface } from './interfaces.js';
import { MachineTable, type Machine, type MachineChange } from './machines.js';
import { ServerRecords } from './store.js';
import { serveMulticastSessions, type MulticastSessions } from './multicast.js';
import type { MulticastOffer } from '../agent/deploy/multicast-offer.js';

export type DhcpSetting = { mode: 'proxy' } | { mode: 'dhcp'; range: DhcpRange } | { mode: 'off' };

/** Something the server wants the user to know that is not about one machine. */
export interface ServerNotice {
  level: 'info' | 'warning';
  text: string;
}

export interface ServerOptions {
  /** The served folder: plans/ and images/ are served from it, logs/ is written (made when missing). */
  dir: string;
  /** The PXE bundle (imagepe build's out/pxe); default DIR/pxe. */
  pxeDir?: string;
  /** The interface on the deployment network: DHCP and TFTP answer there only; HTTP listens on its address unless `listen` is given. */
  interface?: string;
  /** proxy (the default): the site's DHCP server hands out addresses; dhcp: this server does, in `range`; off: no DHCP (TFTP still runs when an interface is given). */
  dhcp?: DhcpSetting;
  /** HTTP port; default 8080; 0 picks a free one. */
  port?: number;
  /** The address HTTP listens on; default the interface's address. */
  listen?: string;
  /** The base URL machines are told (imagepe.server=, the boot script's URL), when NAT or a port forward is in between; default http://<listen address>:<port>/. */
  publicUrl?: string;
  /** UEFI PXE clients get the bundle's signed chain (shim, signed GRUB over TFTP) instead of iPXE. */
  secureBoot?: boolean;
  /** How long the DHCP probe listens for offers; default 6 s. */
  probeWaitMs?: number;
  /** How long dnsmasq may take to start; default 15 s. */
  startTimeoutMs?: number;
  /** Where iPXE's loaders are; default /usr/lib/ipxe. */
  ipxeDir?: string;
  /**
   * Images (paths under DIR, "images/base.wim", pipable WIMs) sent by multicast with udpcast on
   * the interface: one session after another per image, each starting when `minReceivers` have
   * joined or `maxWaitSeconds` after the first did. PEs that stream the image join the session
   * (the server tells them its port at /api/multicast/<path>) instead of fetching it one by one.
   */
  multicast?: { images: readonly string[]; minReceivers: number; maxWaitSeconds: number; portbase?: number };
  /** Aborting stops the server (as stop() does). */
  signal?: AbortSignal;
  onChange?: (change: MachineChange) => void;
  onNotice?: (notice: ServerNotice) => void;
  /** Every HTTP request once answered. */
  onRequest?: (request: { ip: string; method: string; path: string; status: number }) => void;
  /** Every line dnsmasq logs. */
  onDnsmasqLine?: (line: string) => void;
}

export interface RunningServer {
  /** The base URL machines are told, ending in "/". */
  url: string;
  http: { address: string; port: number };
  /** The interface DHCP and TFTP serve, or null for HTTP only. */
  interface: ServedInterface | null;
  dhcp: DhcpMode;
  /** Whether dnsmasq serves TFTP (whenever an interface is given). */
  tftp: boolean;
  /** The per-run directory with the TFTP root, or null for HTTP only. */
  workDir: string | null;
  /** The machine table, most recently seen first. */
  machines(): Machine[];
  /** Calls `listener` on every machine change; returns a function that stops it. */
  onChange(listener: (change: MachineChange) => void): () => void;
  /**
   * Resolves once stop() has finished; rejects with the ServiceExitedError (and its stderr tail)
   * when dnsmasq exits on its own, after the server has stopped the rest.
   */
  done: Promise<void>;
  /** Stops dnsmasq and HTTP, writes the table, removes the work directory. Safe to call twice. */
  stop(): Promise<void>;
}

const DEFAULT_PORT = 8080;
// udpcast's own default port base; each further image takes the next two ports.
const DEFAULT_MULTICAST_PORTBASE = 9000;

/**
 * Starts `imagepe serve`: HTTP first (so the URL is known, with the port actually bound), then
 * dnsmasq for DHCP or proxyDHCP and TFTP on the interface. Before it becomes a network's DHCP
 * server it asks whether one answers already, and refuses if so.
 *
 * Throws INVALID_INPUT (no interface for DHCP/TFTP, a bad URL or range), NOT_FOUND (folder,
 * bundle, interface or its address missing), REFUSED (another DHCP server answers, not root,
 * port taken), ToolMissingError (dnsmasq, nmap), ServiceExitedError (dnsmasq failed to start).
 */
export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const dir = resolve(o.dir);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new ImagepeError('NOT_FOUND', `the served folder ${dir} does not exist`, { hint: 'Make it with pxe/, plans/ and images/ in it (docs/serve.md).' });
  const pxeDir = resolve(o.pxeDir ?? join(dir, 'pxe'));
  if (!(await stat(join(pxeDir, 'boot.ipxe')).catch(() => undefined))?.isFile()) {
    throw new ImagepeError('NOT_FOUND', `${pxeDir} holds no PXE bundle (no boot.ipxe)`, { hint: `imagepe build writes one to out/pxe: copy it to ${join(dir, 'pxe')} or pass --pxe out/pxe.` });
  }
  const dhcp: DhcpSetting = o.dhcp ?? { mode: 'proxy' };
  const useDnsmasq = dhcp.mode !== 'off' || o.interface !== undefined;
  const iface = useDnsmasq || !o.listen ? findServedInterface(o.interface) : null;
  if (useDnsmasq && process.getuid?.() !== 0) {
    throw new ImagepeError('REFUSED', 'DHCP and TFTP need root: they answer on ports 67, 69 and 4011', { hint: 'Run imagepe serve as root, or --no-dhcp --listen ADDRESS without --interface for HTTP only.' });
  }
  if (dhcp.mode === 'dhcp' && iface) {
    checkRangeOnSubnet(dhcp.range, iface.subnet, iface.name);
    const others = (await probeDhcpServers(iface.name, { waitMs: o.probeWaitMs, signal: o.signal })).filter((offer) => offer.server !== iface.address);
    if (others.length > 0) {
      throw new ImagepeError('REFUSED', `another DHCP server already answers on ${iface.name}: ${describeOffers(others)}`, {
        hint: 'Leave out --dhcp-range to run as a proxy beside it (it keeps handing out addresses, imagepe serve adds the boot files), or serve on a network of your own.',
      });
    }
  }

  const records = new ServerRecords(join(dir, 'logs'));
  await records.open();
  const table = new MachineTable(() => new Date(), await records.readTable());
  table.onChange(() => void records.writeTable(table.list()).catch(() => undefined));
  if (o.onChange) table.onChange(o.onChange);

  const host = o.listen ?? iface!.address;
  const http = await listenHttp(host, o.port ?? DEFAULT_PORT);
  let publicUrl: string;
  try {
    publicUrl = o.publicUrl === undefined ? defaultPublicUrl(http.address, http.port, host) : checkPublicUrl(o.publicUrl);
  } catch (e) {
    await http.close(0);
    throw e;
  }
  const offers = new Map<string, MulticastOffer>();
  http.server.on('request', createHttpSite({ dir, pxeDir, publicUrl, table, records, ipxeDir: o.ipxeDir, onRequest: o.onRequest, multicast: (path) => offers.get(path) }));
  const sessions: MulticastSessions[] = [];

  let dhcpTftp: DhcpTftp | undefined;
  const probeAbort = new AbortController();
  let settle!: { resolve: () => void; reject: (e: unknown) => void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => undefined);

  const shutdown = async (): Promise<void> => {
    probeAbort.abort();
    await Promise.all(sessions.map((m) => m.stop().catch(() => undefined)));
    await dhcpTftp?.stop();
    await http.close();
    await records.flush().catch(() => undefined);
    await records.writeTable(table.list()).catch(() => undefined);
    await records.removeServerInfo().catch(() => undefined);
  };
  // One shutdown, whoever asks first: stop(), the abort signal, or dnsmasq dying (then `done` rejects with why).
  let stopping: Promise<void> | undefined;
  const stopOnce = (failure?: unknown) =>
    (stopping ??= shutdown().then(
      () => (failure === undefined ? settle.resolve() : settle.reject(failure)),
      (e) => {
        settle.reject(failure ?? e);
        throw e;
      },
    ));

  try {
    if (useDnsmasq && iface) {
      dhcpTftp = await startDhcpTftp({
        iface,
        mode: dhcp.mode,
        ...(dhcp.mode === 'dhcp' ? { range: dhcp.range } : {}),
        pxeDir,
        publicUrl,
        secureBoot: o.secureBoot ?? false,
        ipxeDir: o.ipxeDir,
        startTimeoutMs: o.startTimeoutMs,
        onFact: (fact) => (fact.kind === 'notice' ? o.onNotice?.({ level: 'warning', text: `dnsmasq: ${fact.text}` }) : table.applyDnsmasq(fact)),
        onLine: o.onDnsmasqLine,
        onUnexpectedExit: (error) => void stopOnce(error).catch(() => undefined),
      });
      if (dhcp.mode === 'proxy') void warnWithoutDhcpServer(iface, o, probeAbort.signal);
      if (dhcp.mode === 'proxy' && o.secureBoot) {
        // Measured with Debian 12's signed GRUB (2.06) under OVMF: shim comes from this server,
        // but GRUB looks for grub/grub.cfg on the DHCP server's next-server and stops at a prompt.
        o.onNotice?.({
          level: 'warning',
          text: `Secure Boot beside another DHCP server: the signed GRUB reads its menu from that server's next-server, not from this one. Point its next-server (option 66, siaddr) at ${iface.address}, or use --dhcp-range on a network of your own.`,
        });
      }
    }
    if (o.multicast && o.multicast.images.length > 0) {
      if (!iface) throw new ImagepeError('INVALID_INPUT', 'multicast needs the interface to send on', { hint: 'Pass --interface.' });
      await assertBroadcastAddress(iface);
      const { minReceivers, maxWaitSeconds } = o.multicast;
      o.multicast.images.forEach((image, k) => {
        const path = `/${image.replace(/^\/+/, '')}`;
        const portbase = (o.multicast!.portbase ?? DEFAULT_MULTICAST_PORTBASE) + 2 * k;
        const m = serveMulticastSessions({
          file: join(dir, path),
          interface: iface.name,
          portbase,
          minReceivers,
          maxWaitSeconds,
          onResult: (result, n) => {
            void records.appendMulticast({ image: path.slice(1), session: n, ...result, receivers: result.receivers.length }).catch(() => undefined);
            o.onNotice?.({ level: result.outcome === 'sent' ? 'info' : 'warning', text: `multicast ${path.slice(1)} session ${n}: ${result.outcome}, ${result.finished} of ${result.receivers.length} machines received it whole, ${result.fileBytes} bytes in ${(result.transferMs / 1000).toFixed(1)} s` });
          },
        });
        m.done.catch((e: unknown) => o.onNotice?.({ level: 'warning', text: `multicast of ${path.slice(1)} stopped: ${(e as Error).message}; machines fetch it over HTTP` }));
        sessions.push(m);
        offers.set(path, { portbase, server: iface.address, minReceivers, maxWaitSeconds });
      });
    }
    await records.writeServerInfo({ url: publicUrl, pid: process.pid, started: new Date().toISOString() });
    if (o.signal?.aborted) throw new CancelledError('imagepe serve');
  } catch (e) {
    await shutdown().catch(() => undefined);
    throw e;
  }
  o.signal?.addEventListener('abort', () => void stopOnce().catch(() => undefined), { once: true });

  return {
    url: publicUrl,
    http: { address: http.address, port: http.port },
    interface: iface,
    dhcp: dhcp.mode,
    tftp: dhcpTftp !== undefined,
    workDir: dhcpTftp?.work.dir ?? null,
    machines: () => table.list(),
    onChange: (listener) => table.onChange(listener),
    done,
    stop: () => stopOnce(),
  };
}

/**
 * udpcast's sender and receivers find each other by broadcast on the interface's subnet: an
 * address added without one (`ip addr add A/24 dev IF`, no `brd`) leaves them deaf to each other,
 * and every machine would wait out its start timeout. Throws REFUSED naming the fix.
 */
async function assertBroadcastAddress(iface: ServedInterface): Promise<void> {
  const r = await run('ip', ['-j', '-4', 'addr', 'show', 'dev', iface.name], { what: `reading the addresses of ${iface.name}`, timeoutMs: 10_000 });
  const infos = (JSON.parse(r.stdout) as { addr_info?: { local?: string; broadcast?: string }[] }[]).flatMap((l) => l.addr_info ?? []);
  const info = infos.find((a) => a.local === iface.address);
  if (!info?.broadcast) {
    throw new ImagepeError('REFUSED', `${iface.name} has no broadcast address for ${iface.address}: udpcast's sender and receivers find each other by broadcast, so no multicast session could start`, {
      hint: `Give it one: ip addr change ${iface.address}/${iface.subnet.prefixLength} broadcast + dev ${iface.name}`,
    });
  }
}

/** http://<bound address>:<port>/; a wildcard address names no machine, so then the URL must be given. */
function defaultPublicUrl(address: string, port: number, host: string): string {
  if (address === '0.0.0.0' || address === '::') {
    throw new ImagepeError('INVALID_INPUT', `listening on every address (${host}), the server cannot tell machines which one to use`, { hint: 'Give --public-url http://ADDRESS:PORT/ as the machines reach it.' });
  }
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}/`;
}

function checkPublicUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ImagepeError('INVALID_INPUT', `--public-url ${text} is not a URL`, { hint: 'For example --public-url http://192.0.2.10:8080/' });
  }
  if (u.protocol !== 'http:') throw new ImagepeError('INVALID_INPUT', `--public-url ${text} is not http://`, { hint: 'iPXE and the PE fetch from it over plain HTTP; put TLS in front only if they trust its certificate.' });
  return normalizeBaseUrl(u.href);
}

function describeOffers(offers: readonly DhcpOffer[]): string {
  return offers.map((o) => `${o.server}${o.offered ? ` (offered ${o.offered})` : ''}`).join(', ');
}

/** proxyDHCP gives no addresses: without a DHCP server on the network, machines get nowhere. */
async function warnWithoutDhcpServer(iface: ServedInterface, o: ServerOptions, signal: AbortSignal): Promise<void> {
  try {
    const offers = (await probeDhcpServers(iface.name, { waitMs: o.probeWaitMs, signal })).filter((offer) => offer.server !== iface.address);
    if (signal.aborted) return;
    if (offers.length === 0) {
      o.onNotice?.({ level: 'warning', text: `no DHCP server answered on ${iface.name}: as a proxy this server gives no addresses, so machines there get none. Pass --dhcp-range to hand them out yourself.` });
    } else {
      o.onNotice?.({ level: 'info', text: `the network's DHCP server: ${describeOffers(offers)}` });
    }
  } catch (e) {
    if (!signal.aborted) o.onNotice?.({ level: 'warning', text: `could not ask whether a DHCP server answers on ${iface.name}: ${(e as Error).message}` });
  }
}
