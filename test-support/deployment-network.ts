import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startService, type Service } from '../core/index.js';

// A deployment network made of network namespaces, so DHCP, PXE and multicast run for real with
// no packet leaving the host: the server's namespace holds a bridge (br0, the interface
// `imagepe serve` is given) with taps for VMs and veth ports for other namespaces; the site's
// namespace runs a plain dnsmasq as the network's own DHCP server, which proxyDHCP works beside.

const exec = promisify(execFile);
const MAIN = resolve('dist/cli/main.js');

export interface DeploymentNetwork {
  /** Namespace names: the server's (bridge, taps, imagepe serve) and the site DHCP server's. */
  ns: { server: string; site: string };
  /** The /24 in use, as its first three octets: "10.231.7". */
  net: string;
  /** br0's address in the server namespace. */
  serverIp: string;
  siteIp: string;
  /** Tap devices on the bridge, for QEMU started in the server namespace. */
  taps: string[];
  /** Runs a program inside a namespace and returns its stdout. */
  exec(namespace: string, command: string, args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Adds a namespace joined to the bridge by a veth pair (its end is eth0, up, no address). */
  addClient(name: string): Promise<string>;
  /** The site's plain DHCP server (addresses .100 to .150), in the site namespace. */
  startSiteDhcp(workDir: string): Promise<Service>;
  /** The built `imagepe serve DIR --interface br0 --json ARGS...` inside the server namespace, once it says it serves. */
  startServe(dir: string, args: readonly string[], onLine?: (line: string) => void): Promise<Service>;
  /** Removes every namespace (and with them the bridge, taps and veths). Safe to call twice. */
  remove(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  await exec('ip', args, { timeout: 10_000 });
}

/**
 * Makes the namespaces, the bridge and `taps` tap devices. Names carry `tag` and the process id,
 * so parallel test files do not meet; on any failure what was made is removed again.
 */
export async function makeDeploymentNetwork(tag: string, o: { net: string; taps?: number }): Promise<DeploymentNetwork> {
  const id = `${tag}-${process.pid % 100000}`;
  const ns = { server: `ipe-srv-${id}`, site: `ipe-site-${id}` };
  const made: string[] = [];
  const serverIp = `${o.net}.1`;
  const siteIp = `${o.net}.2`;
  const taps = Array.from({ length: o.taps ?? 0 }, (_, i) => `tap${i}`);
  const run = async (namespace: string, command: string, args: readonly string[], timeoutMs = 30_000) =>
    (await exec('ip', ['netns', 'exec', namespace, command, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })).stdout;
  let veths = 0;
  const addClient = async (name: string): Promise<string> => {
    await ip('netns', 'add', name);
    made.push(name);
    const port = `veth${veths++}`;
    await ip('-n', ns.server, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
    await ip('-n', ns.server, 'link', 'set', port, 'master', 'br0', 'up');
    await ip('-n', name, 'link', 'set', 'eth0', 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  };
  const remove = async () => {
    while (made.length) await ip('netns', 'del', made.pop()!).catch(() => undefined);
  };
  try {
    await ip('netns', 'add', ns.server);
    made.push(ns.server);
    await ip('-n', ns.server, 'link', 'add', 'br0', 'type', 'bridge');
    // No STP listening delay: a port that waits 15 s before forwarding would eat the first DHCP tries.
    await ip('-n', ns.server, 'link', 'set', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    // With its broadcast address, as DHCP clients and distributions set one: udpcast finds its peers by broadcast.
    await ip('-n', ns.server, 'addr', 'add', `${serverIp}/24`, 'broadcast', '+', 'dev', 'br0');
    await ip('-n', ns.server, 'link', 'set', 'br0', 'up');
    await ip('-n', ns.server, 'link', 'set', 'lo', 'up');
    for (const tap of taps) {
      await ip('-n', ns.server, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
      await ip('-n', ns.server, 'link', 'set', tap, 'master', 'br0', 'up');
    }
    await addClient(ns.site);
    await ip('-n', ns.site, 'addr', 'add', `${siteIp}/24`, 'broadcast', '+', 'dev', 'eth0');
  } catch (e) {
    await remove();
    throw e;
  }
  return {
    ns,
    net: o.net,
    serverIp,
    siteIp,
    taps,
    exec: run,
    addClient,
    async startSiteDhcp(workDir: string) {
      const conf = join(workDir, `site-${id}.conf`);
      await writeFile(
        conf,
        ['port=0', 'interface=eth0', 'bind-interfaces', 'except-interface=lo', `dhcp-range=${o.net}.100,${o.net}.150,255.255.255.0,10m`, `dhcp-leasefile=${join(workDir, `site-${id}.leases`)}`, 'no-ping', 'log-dhcp', 'log-facility=-', ''].join('\n'),
      );
      return startService('ip', ['netns', 'exec', ns.site, 'dnsmasq', '--keep-in-foreground', `--conf-file=${conf}`, '--pid-file='], { what: "the site's DHCP server", readyLine: /DHCP, sockets bound/, startTimeoutMs: 15_000 });
    },
    startServe(dir: string, args: readonly string[], onLine?: (line: string) => void) {
      return startService('ip', ['netns', 'exec', ns.server, 'node', MAIN, 'serve', dir, '--interface', 'br0', '--json', ...args], {
        what: 'imagepe serve in the server namespace',
        readyLine: /"type":"serving"/,
        startTimeoutMs: 30_000,
        stopGraceMs: 10_000,
        ...(onLine ? { onStdoutLine: onLine, onStderrLine: onLine } : {}),
      });
    },
    remove,
  };
}
