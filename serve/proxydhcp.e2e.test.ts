import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Service } from '../core/index.js';
import { sha256File } from '../agent/deploy/index.js';
import { generalize } from '../imaging/index.js';
import { sharedTestBuild } from '../qemu-tests/shared-build.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { makeDeploymentNetwork, type DeploymentNetwork } from '../test-support/deployment-network.js';
import { runAgent, settled, type AgentRun } from '../test-support/pe-flow.js';
import { makeReferenceSystem, referencePlan } from '../test-support/reference-system.js';
import type { Machine } from './index.js';

// The real DHCP path: a bridge in a network namespace with a plain dnsmasq as the site's DHCP
// server and `imagepe serve` (the built CLI) beside it as proxyDHCP. Three VMs (BIOS, UEFI,
// UEFI) on taps boot from the network at once: BIOS through its NIC's iPXE, UEFI through the
// firmware's own PXE client, which the proxy sends iPXE's snponly.efi over TFTP. Each PE gets the
// plan for its MAC (its own hostname and layout), streams the pipable image over HTTP, deploys;
// then each disk boots alone and says who it is.

const exec = promisify(execFile);
const NET = '10.231.9';
const DEPLOY_TIMEOUT_MS = 600_000;
const BOOT_TIMEOUT_MS = 180_000;
const DISK_SIZE = 2 * 1024 ** 3;

const MACHINES = [
  { name: 'bios', uefi: false, mac: '52:54:00:00:1a:01', root: 'rest', extra: '' },
  { name: 'uefi-a', uefi: true, mac: '52:54:00:00:1a:02', root: '1200MiB', extra: '{ name: swap, size: 256MiB, type: linux-swap, format: swap }' },
  { name: 'uefi-b', uefi: true, mac: '52:54:00:00:1a:03', root: '1GiB', extra: '{ name: data, size: rest, type: linux, format: ext4, label: data }' },
] as const;

let work: string;
let served: string;
let network: DeploymentNetwork;
let site: Service | undefined;
let serve: Service | undefined;
let serveLines: string[] = [];
let imageSha: string;
let pxeDir: string;

function plan(m: (typeof MACHINES)[number], sha256: string, wipe = false): string {
  return referencePlan({ hostname: `rack-${m.name}`, sha256, url: 'server:/images', rootSize: m.root, morePartitions: m.extra ? [m.extra] : [], wipe });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-proxydhcp-e2e-'));
  served = join(work, 'served');
  await mkdir(join(served, 'images'), { recursive: true });
  await mkdir(join(served, 'plans'), { recursive: true });
  const [build, reference] = await Promise.all([sharedTestBuild(), makeReferenceSystem(join(work, 'reference'))]);
  await generalize(reference.root);
  const wim = join(served, 'images/reference.wim');
  await exec('node', [resolve('dist/cli/main.js'), 'capture', reference.root, wim, 'reference', '--compress', 'xpress', '--pipable']);
  imageSha = await sha256File(wim);
  pxeDir = build.pxe.dir;
  for (const m of MACHINES) await writeFile(join(served, 'plans', `${m.mac.replace(/:/g, '-')}.yaml`), plan(m, imageSha));
  network = await makeDeploymentNetwork('e2e', { net: NET, taps: MACHINES.length });
  site = await network.startSiteDhcp(work);
  serve = await network.startServe(served, ['--pxe', pxeDir, '--verbose'], (l) => serveLines.push(l));
}, 300_000);

afterAll(async () => {
  await serve?.stop().catch(() => undefined);
  await site?.stop().catch(() => undefined);
  await network?.remove();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The three machines booted from the network at once, each until its PE has deployed and powered off. */
async function deployAll(round: string): Promise<AgentRun[]> {
  return settled(
    await Promise.allSettled(
      MACHINES.map((m, i) =>
        withVm(
          `${m.name} ${round}`,
          startVm({ tap: { name: network.taps[i]!, netns: network.ns.server }, netBoot: {}, uefi: m.uefi, mac: m.mac, disks: [{ path: join(work, `${m.name}.raw`), size: DISK_SIZE, format: 'raw' }], workDir: join(work, `${m.name}-${round}`), lifetimeMs: DEPLOY_TIMEOUT_MS + 120_000 }),
          (vm) => runAgent(vm, 'deployed', DEPLOY_TIMEOUT_MS),
        ),
      ),
    ),
  );
}

/** What the server sent on the deployment network so far, in bytes. */
async function serverTxBytes(): Promise<number> {
  return Number((await network.exec(network.ns.server, 'cat', ['/sys/class/net/br0/statistics/tx_bytes'])).trim());
}

/** Whole-file GETs of the image (status 200, not the range reads of the check), from serve's request log. */
function wholeImageGets(): number {
  return serveLines.filter((l) => l.includes('"type":"request"') && l.includes('"path":"/images/reference.wim"') && l.includes('"status":200')).length;
}

it('boots three machines from the network at once beside the site DHCP server, and each deploys its own plan', async () => {
  const runs = await deployAll('http');
  runs.forEach((r, i) => process.stdout.write(`proxyDHCP ${MACHINES[i]!.name}: PE start to deployed ${r.seconds.toFixed(1)} s wall (three at once)\n`));
  for (const r of runs) expect(r.steps).toEqual(expect.arrayContaining([expect.stringMatching(/^check: streamed into apply/)]));

  const table = JSON.parse(await readFile(join(served, 'logs/machines.json'), 'utf8')) as { machines: Machine[] } | Machine[];
  const machines = Array.isArray(table) ? table : table.machines;
  for (const m of MACHINES) {
    const row = machines.find((x) => x.mac === m.mac);
    expect(row).toMatchObject({ state: 'deployed', hostname: `rack-${m.name}`, firmware: m.uefi ? 'uefi' : 'bios', plan: { file: `${m.mac.replace(/:/g, '-')}.yaml`, status: 200 } });
    // UEFI came through the firmware's PXE and iPXE's snponly.efi over TFTP; BIOS through its NIC's iPXE.
    if (m.uefi) expect(row?.fetched.map((f) => f.file)).toEqual(expect.arrayContaining(['snponly.efi', 'boot.ipxe', 'vmlinuz', 'initrd.img']));
  }

  // Each layout is on its disk as its plan has it.
  const tables = await Promise.all(MACHINES.map(async (m) => JSON.parse((await exec('sfdisk', ['--json', join(work, `${m.name}.raw`)])).stdout) as { partitiontable: { partitions: { name?: string; size: number }[] } }));
  expect(tables.map((t) => t.partitiontable.partitions.map((p) => p.name))).toEqual([
    ['ESP', 'bios-boot', 'root'],
    ['ESP', 'bios-boot', 'root', 'swap'],
    ['ESP', 'bios-boot', 'root', 'data'],
  ]);
  expect(tables[1]!.partitiontable.partitions[2]!.size * 512).toBe(1200 * 1024 ** 2);

  const lines = settled(
    await Promise.allSettled(
      MACHINES.map((m) =>
        withVm(`${m.name} deployed boot`, startVm({ uefi: m.uefi, disks: [{ path: join(work, `${m.name}.raw`), format: 'raw' }], workDir: join(work, `${m.name}-boot`), lifetimeMs: BOOT_TIMEOUT_MS + 30_000 }), (vm) =>
          vm.waitForLine(/DEPLOYED hostname=\S+ machine-id=\S* marker=\w+/, BOOT_TIMEOUT_MS),
        ),
      ),
    ),
  );
  lines.forEach((line, i) => expect(line).toContain(`DEPLOYED hostname=rack-${MACHINES[i]!.name} `));
  expect(wholeImageGets()).toBe(MACHINES.length);
}, DEPLOY_TIMEOUT_MS + BOOT_TIMEOUT_MS + 300_000);

it('sends the image once by multicast to the same three machines, and all three deploy it', async () => {
  await serve?.stop();
  serveLines = [];
  // The disks hold the first round's systems now.
  for (const m of MACHINES) await writeFile(join(served, 'plans', `${m.mac.replace(/:/g, '-')}.yaml`), plan(m, imageSha, true));
  serve = await network.startServe(served, ['--pxe', pxeDir, '--verbose', '--multicast', 'images/reference.wim', '--min-receivers', '3', '--max-wait', '120'], (l) => serveLines.push(l));
  const before = await serverTxBytes();
  const runs = await deployAll('multicast');
  const sent = (await serverTxBytes()) - before;
  for (const r of runs) {
    expect(r.steps).toEqual(expect.arrayContaining([expect.stringMatching(/^check: received by multicast from 10\.231\.9\.1 \(port 9000\)/), expect.stringMatching(/^verify: /)]));
    expect(r.warnings.filter((w) => w.includes('multicast'))).toEqual([]);
  }
  // One session carried the image to all three; none of them fetched it over HTTP.
  const sessions = (await readFile(join(served, 'logs/multicast.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { outcome: string; finished: number; fileBytes: number; bytesAcknowledged: number; transferTxBytes?: number; transferMs: number });
  expect(sessions).toHaveLength(1);
  expect(sessions[0]).toMatchObject({ outcome: 'sent', finished: 3, bytesAcknowledged: sessions[0]!.fileBytes });
  // On the wire while it sent: the image about once, not once per machine.
  expect(sessions[0]!.transferTxBytes).toBeLessThan(1.5 * sessions[0]!.fileBytes);
  expect(wholeImageGets()).toBe(0);
  process.stdout.write(`multicast: ${sessions[0]!.fileBytes} bytes to 3 machines, ${sessions[0]!.transferTxBytes} bytes on the wire during the transfer (${(sessions[0]!.transferMs / 1000).toFixed(1)} s); the server sent ${sent} bytes in the whole round (PE boots included)\n`);
  runs.forEach((r, i) => process.stdout.write(`multicast ${MACHINES[i]!.name}: PE start to deployed ${r.seconds.toFixed(1)} s wall\n`));
}, DEPLOY_TIMEOUT_MS + 300_000);
