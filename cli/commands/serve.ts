import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { ImagepeError } from '../../core/index.js';
import { parseDhcpRange, startServer, type DhcpSetting, type Machine, type MachineChange } from '../../serve/index.js';
import { printJson } from '../output.js';
import { table } from './wim.js';

interface Global {
  json: boolean;
}

type ServeArgs = Global & {
  dir: string;
  interface?: string;
  'dhcp-range'?: string;
  dhcp: boolean;
  port: number;
  listen?: string;
  'public-url'?: string;
  pxe?: string;
  'secure-boot': boolean;
  multicast?: string[];
  'min-receivers': number;
  'max-wait': number;
  verbose: boolean;
};

type StatusArgs = Global & { server?: string; dir: string };

/** "05:40:12" in local time, for the running log. */
function clock(iso: string): string {
  return new Date(iso).toTimeString().slice(0, 8);
}

/** What happened, in a few words, for one line of the running log. */
export function describeChange(c: MachineChange): string {
  const m = c.machine;
  switch (c.cause) {
    case 'dhcp':
      return m.ipxe ? 'iPXE asked for its boot script' : 'network boot request';
    case 'boot-file':
      return `offered ${m.bootFile}`;
    case 'fetched': {
      const f = m.fetched[m.fetched.length - 1];
      return f ? `fetched ${f.file} (${f.via})` : 'fetched';
    }
    case 'plan':
      return m.plan ? `plan ${m.plan.file}: ${m.plan.status === 200 ? 'given' : 'none'}` : 'plan';
    case 'event':
      return `${m.lastEvent?.type ?? 'event'}${m.detail ? `: ${m.detail}` : ''}`;
    case 'report':
      return `first boot: ${m.detail ?? ''}`;
  }
}

/** One line per change: time, MAC, address, architecture, what happened, state (with the transition when it changed). */
export function formatChange(c: MachineChange): string {
  const m = c.machine;
  const state = c.previousState && c.previousState !== m.state ? `${c.previousState} -> ${m.state}` : m.state;
  return [clock(m.lastSeen), m.mac, (m.ip ?? '-').padEnd(15), m.archName.padEnd(13), describeChange(c).padEnd(44), state].join('  ').trimEnd();
}

/** The machine table as `imagepe serve status` prints it. */
export function machinesTable(machines: readonly Machine[]): string {
  return table(
    ['MAC', 'IP', 'ARCH', 'STATE', 'PLAN', 'LAST EVENT', 'SINCE', 'DETAIL'],
    machines.map((m) => [
      m.mac,
      m.ip ?? '-',
      m.archName,
      m.state,
      m.plan ? (m.plan.status === 200 ? m.plan.file : `none (${m.planRequests.length} asked)`) : '-',
      m.lastEvent?.type ?? '-',
      clock(m.stateSince),
      m.detail ?? '',
    ]),
  );
}

/**
 * Progress events arrive a batch every second or two; one line per machine every 10 s is enough
 * for a log a person reads. State changes always print.
 */
function progressThrottle(intervalMs = 10_000): (c: MachineChange) => boolean {
  const last = new Map<string, number>();
  return (c) => {
    const routine = c.cause === 'event' && c.previousState === c.machine.state && c.machine.lastEvent?.type === 'progress';
    if (!routine) return true;
    const now = Date.now();
    if (now - (last.get(c.machine.mac) ?? 0) < intervalMs) return false;
    last.set(c.machine.mac, now);
    return true;
  };
}

function dhcpSetting(a: ServeArgs): DhcpSetting {
  if (!a.dhcp) {
    if (a['dhcp-range']) throw new ImagepeError('INVALID_INPUT', '--dhcp-range and --no-dhcp contradict each other', { hint: 'Leave out one of them.' });
    return { mode: 'off' };
  }
  return a['dhcp-range'] ? { mode: 'dhcp', range: parseDhcpRange(a['dhcp-range']) } : { mode: 'proxy' };
}

const runCommand: CommandModule<Global, ServeArgs> = {
  command: '$0 <dir>',
  describe: 'Serve a deployment network from DIR (pxe/, plans/, images/, logs/)',
  builder: (y) =>
    (y as Argv<Global>)
      .positional('dir', { type: 'string', demandOption: true, describe: 'The served folder: pxe/ (an imagepe build PXE bundle), plans/, images/; logs/ is written' })
      .option('interface', { alias: 'i', type: 'string', describe: 'The interface on the deployment network; DHCP and TFTP answer there only' })
      .option('dhcp-range', { type: 'string', describe: 'Be the DHCP server, handing out START,END[,NETMASK[,LEASE]]; refused when another DHCP server answers. Without it: proxyDHCP beside the network\'s own' })
      .option('dhcp', { type: 'boolean', default: true, describe: 'Answer DHCP at all (--no-dhcp: HTTP, and TFTP when --interface is given, for a site DHCP server you point here yourself)' })
      .option('port', { type: 'number', default: 8080, describe: 'HTTP port' })
      .option('listen', { type: 'string', describe: "The address HTTP listens on (default: the interface's)" })
      .option('public-url', { type: 'string', describe: 'The URL machines are told to use, when NAT or a port forward is in between (default http://ADDRESS:PORT/)' })
      .option('pxe', { type: 'string', describe: 'The PXE bundle, when it is not DIR/pxe (imagepe build writes out/pxe)' })
      .option('secure-boot', { type: 'boolean', default: false, describe: "UEFI PXE clients get the bundle's signed shim and GRUB (over TFTP) instead of iPXE, which is not signed" })
      .option('multicast', { type: 'string', array: true, describe: 'Send this image (a pipable WIM, path under DIR: images/base.wim) by multicast with udpcast; repeat for more images. PEs that stream it join the session instead of fetching it one by one' })
      .option('min-receivers', { type: 'number', default: 3, describe: 'A multicast session starts when this many machines have joined...' })
      .option('max-wait', { type: 'number', default: 60, describe: '...or this many seconds after the first one did, whichever comes first' })
      .option('verbose', { type: 'boolean', default: false, describe: "Also print every HTTP request and dnsmasq's log" })
      .example('$0 serve /srv/deploy --interface eno1', "proxyDHCP beside the network's DHCP server")
      .example('$0 serve /srv/deploy -i eno2 --dhcp-range 10.0.0.100,10.0.0.200', 'be the DHCP server of a deployment network of its own')
      .example('$0 serve /srv/deploy -i eno1 --multicast images/base.wim --min-receivers 10', 'ten machines at a time receive one stream')
      .example('$0 serve status', 'the machines of the server running from this folder') as Argv<ServeArgs>,
  handler: async (a) => {
    const abort = new AbortController();
    // Not once: a second Ctrl-C while the server stops must not kill imagepe before it has
    // stopped dnsmasq (which runs in a process group of its own and would be left behind).
    const onSignal = () => abort.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const out = (line: string) => process.stdout.write(`${line}\n`);
    const err = (line: string) => process.stderr.write(`${line}\n`);
    const shouldPrint = progressThrottle();
    try {
      const server = await startServer({
        dir: a.dir,
        pxeDir: a.pxe,
        interface: a.interface,
        dhcp: dhcpSetting(a),
        port: a.port,
        listen: a.listen,
        publicUrl: a['public-url'],
        secureBoot: a['secure-boot'],
        ...(a.multicast?.length ? { multicast: { images: a.multicast, minReceivers: a['min-receivers'], maxWaitSeconds: a['max-wait'] } } : {}),
        signal: abort.signal,
        onChange: (c) => {
          if (a.json) printJson({ type: 'machine', cause: c.cause, previousState: c.previousState, machine: c.machine });
          else if (shouldPrint(c)) out(formatChange(c));
        },
        onNotice: (n) => (a.json ? printJson({ type: 'notice', ...n }) : err(`imagepe serve: ${n.level === 'warning' ? 'warning: ' : ''}${n.text}`)),
        ...(a.verbose
          ? {
              onRequest: (r: { ip: string; method: string; path: string; status: number }) => (a.json ? printJson({ type: 'request', ...r }) : err(`http ${r.ip} ${r.method} ${r.path} ${r.status}`)),
              onDnsmasqLine: (line: string) => (a.json ? printJson({ type: 'dnsmasq', line }) : err(line)),
            }
          : {}),
      });
      const dhcp = server.dhcp === 'proxy' ? 'proxyDHCP' : server.dhcp === 'dhcp' ? 'DHCP server' : 'no DHCP';
      const where = server.interface ? ` on ${server.interface.name} (${server.interface.address}/${server.interface.subnet.prefixLength})` : '';
      if (a.json) printJson({ type: 'serving', url: server.url, dhcp: server.dhcp, tftp: server.tftp, interface: server.interface, http: server.http, workDir: server.workDir });
      else {
        err(`imagepe serve: ${dhcp}${server.tftp ? ' and TFTP' : ''}${where}; HTTP at ${server.url}; ${server.machines().length} machines known. Ctrl-C stops.`);
        out(['TIME    ', 'MAC              ', 'IP             ', 'ARCH         ', 'WHAT'.padEnd(44), 'STATE'].join('  '));
      }
      await server.done;
      if (!a.json) err('imagepe serve: stopped');
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

const statusCommand: CommandModule<Global, StatusArgs> = {
  command: 'status',
  describe: 'The machines a running imagepe serve knows, as a table',
  builder: (y) =>
    (y as Argv<Global>)
      .option('server', { type: 'string', describe: 'The server\'s URL (default: the one running from --dir, read from its logs/server.json)' })
      .option('dir', { type: 'string', default: '.', describe: 'The served folder of the running server' }) as Argv<StatusArgs>,
  handler: async (a) => {
    const base = a.server ?? (await runningServerUrl(a.dir));
    const url = new URL('api/machines', base.endsWith('/') ? base : `${base}/`);
    let response: Response;
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    } catch (e) {
      throw new ImagepeError('NOT_FOUND', `no imagepe serve answers at ${url.origin}: ${(e as Error).message}`, { hint: 'Start it with imagepe serve DIR, or give its URL with --server.', cause: e });
    }
    if (!response.ok) throw new ImagepeError('NOT_FOUND', `${url.href} answered HTTP ${response.status}`, { hint: 'Is that an imagepe serve?' });
    const body = (await response.json()) as { server: string; machines: Machine[] };
    if (a.json) printJson({ type: 'result', operation: 'serve status', ...body });
    else process.stdout.write(body.machines.length === 0 ? `No machines yet at ${body.server}\n` : `${machinesTable(body.machines)}\n`);
  },
};

async function runningServerUrl(dir: string): Promise<string> {
  try {
    const info = JSON.parse(await readFile(join(dir, 'logs', 'server.json'), 'utf8')) as { url?: unknown };
    if (typeof info.url === 'string') return info.url;
  } catch {
    // falls through to the error below
  }
  throw new ImagepeError('NOT_FOUND', `no imagepe serve is running from ${dir} (no logs/server.json)`, { hint: 'Give the folder with --dir, or the server\'s URL with --server.' });
}

export const serveCommand: CommandModule<Global, Global> = {
  command: 'serve',
  describe: 'Serve a deployment network from a folder: PXE and UEFI HTTP boot, plans, images, and each machine\'s state (the WDS role)',
  builder: (y) => (y as Argv<Global>).command(statusCommand).command(runCommand) as Argv<Global>,
  handler: () => undefined,
};
