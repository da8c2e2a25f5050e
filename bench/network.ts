import { execFile } from 'node:child_process';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Service } from '../core/index.js';
import { sha256File } from '../agent/deploy/index.js';
import { buildPe, parseBuildConfig, type BuildResult } from '../builder/index.js';
import { generalize } from '../imaging/index.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { makeDeploymentNetwork, type DeploymentNetwork } from '../test-support/deployment-network.js';
import { runAgent, settled } from '../test-support/pe-flow.js';
import { makeReferenceSystem, referencePlan } from '../test-support/reference-system.js';
import { CLI, startUserNetServer, userNetBoot } from './netboot.js';
import { median } from './stats.js';
import { benchStreamMemory, type StreamMemoryFigures } from './stream-memory.js';

const exec = promisify(execFile);

export interface PxeToReadyFigures {
  /** Median seconds from QEMU's start to the agent's `ready`, booted over HTTP from imagepe serve. */
  biosSeconds: number;
  uefiSeconds: number;
  samples: { bios: number[]; uefi: number[] };
}

export type FleetTransport = 'http' | 'multicast';

export interface FleetVariantFigures {
  transport: FleetTransport;
  /** The machines' firmware, in tap order: ['uefi'] alone, ['bios', 'uefi', 'uefi'] for the fleet. */
  firmware: ('bios' | 'uefi')[];
  /** Median seconds from the first QEMU start to the last `deployed`. */
  wallSeconds: number;
  /** Median bytes the server's interface (br0) sent over a run: DHCP, TFTP, the PE, plans, the image. */
  serverTxBytes: number;
  /** serverTxBytes / (machines × fleet.imageBytes): how many copies of the image a run cost. */
  txPerImage: number;
  samples: { wallSeconds: number[]; serverTxBytes: number[] };
}

export interface FleetFigures {
  /** The pipable WIM every machine deploys (the reference system, xpress). */
  imageBytes: number;
  /** What each machine boots before it fetches the image: vmlinuz + initrd.img of the PXE bundle. */
  peBytes: number;
  one: FleetVariantFigures;
  three: FleetVariantFigures;
  /** Three machines fed by one multicast stream (imagepe serve --multicast). */
  multicast: FleetVariantFigures | null;
}

export interface NetworkFigures {
  runs: number;
  accel: string;
  /** Wall seconds of the whole section, the PE build, the reference and the big image included. */
  durationSeconds: number;
  pxeToReady: PxeToReadyFigures;
  fleet: FleetFigures;
  streamMemory: StreamMemoryFigures;
}

export interface NetworkResult {
  figures: NetworkFigures;
  /** Paths under `network.` that are null, with the reason. */
  notMeasured: Record<string, string>;
}

/**
 * The PE as the network boots it: the default build (no plan on its command line, so it asks the
 * server it booted from for one), through the build cache, into the bench's work dir so that no
 * test running beside the bench shares its output folder.
 */
async function networkPe(work: string): Promise<BuildResult> {
  return buildPe({ config: parseBuildConfig({}), outputDir: join(work, 'pe-net') });
}

/**
 * The network section: QEMU start to `ready` booted over HTTP; one machine and then three
 * deploying at once through the real DHCP path (proxyDHCP in network namespaces), with what the
 * server sent; and a big image streamed into a VM with little memory, with the same deploy's
 * peak memory measured on the host. `say` reports progress (stderr).
 */
export async function benchNetwork(work: string, o: { runs: number; quick: boolean; say: (text: string) => void }): Promise<NetworkResult> {
  const started = performance.now();
  const notMeasured: Record<string, string> = {};
  o.say('network: building the network PE (default config, through the build cache)...');
  const build = await networkPe(work);

  o.say(`network: PXE over HTTP to ready, BIOS and UEFI, ${o.runs} run(s)...`);
  const { figures: pxeToReady, accel } = await benchPxeToReady(build, join(work, 'net-pxe'), o.runs);

  o.say(`network: one machine, then three at once, proxyDHCP in namespaces, ${o.runs} run(s) each...`);
  const fleet = await benchFleet(build, join(work, 'net-fleet'), o.runs, o.say);

  const stream = await benchStreamMemory(build, join(work, 'net-stream'), { runs: o.runs, quick: o.quick, say: o.say });
  for (const [field, why] of Object.entries(stream.notMeasured)) notMeasured[`streamMemory.${field}`] = why;

  return {
    figures: { runs: o.runs, accel, durationSeconds: (performance.now() - started) / 1000, pxeToReady, fleet, streamMemory: stream.figures },
    notMeasured,
  };
}

/** QEMU start to `ready` booted from the network; no plans are served, so the PE waits at its console and is stopped. */
async function benchPxeToReady(build: BuildResult, work: string, runs: number): Promise<{ figures: PxeToReadyFigures; accel: string }> {
  const served = join(work, 'served');
  await mkdir(join(served, 'plans'), { recursive: true });
  await mkdir(join(served, 'images'), { recursive: true });
  const samples: PxeToReadyFigures['samples'] = { bios: [], uefi: [] };
  let accel = '';
  const server = await startUserNetServer(served, build);
  try {
    for (let i = 0; i < runs; i++) {
      for (const kind of ['bios', 'uefi'] as const) {
        const disk = join(work, `${kind}-${i}.qcow2`);
        const seconds = await withVm(
          `network ${kind} boot`,
          startVm({ ...userNetBoot(server), uefi: kind === 'uefi', mac: `52:54:00:00:b0:${kind === 'bios' ? '01' : '02'}`, disks: [{ path: disk, size: '2GiB' }], workDir: join(work, `${kind}-${i}`), lifetimeMs: 300_000 }),
          async (vm) => {
            await vm.waitForEvent('ready', 240_000);
            accel = vm.accel.accel;
            return vm.elapsedSeconds();
          },
        );
        samples[kind].push(seconds);
        await rm(disk, { force: true });
      }
    }
  } finally {
    await server.stop();
  }
  return { figures: { biosSeconds: median(samples.bios), uefiSeconds: median(samples.uefi), samples }, accel };
}

interface FleetMachine {
  name: string;
  uefi: boolean;
  mac: string;
}

/** The machines on the deployment network, one per tap: a BIOS one and two UEFI ones. */
const FLEET: readonly FleetMachine[] = [
  { name: 'bios', uefi: false, mac: '52:54:00:00:b1:01' },
  { name: 'uefi-a', uefi: true, mac: '52:54:00:00:b1:02' },
  { name: 'uefi-b', uefi: true, mac: '52:54:00:00:b1:03' },
];

/**
 * One way of deploying some of the fleet: which machines boot at once, the plan each gets, and
 * what `imagepe serve` needs besides proxyDHCP. A new way (three by multicast) is one more
 * FleetVariant given to measureFleet().
 */
interface FleetVariant {
  name: string;
  transport: FleetTransport;
  machines: readonly FleetMachine[];
  plan(m: FleetMachine): string;
  serveArgs?: readonly string[];
}

/** Everything the variants share: the namespaces with their taps and site DHCP server, the served folder, the PE. */
interface FleetEnv {
  network: DeploymentNetwork;
  build: BuildResult;
  served: string;
  work: string;
  imageBytes: number;
  say: (text: string) => void;
}

const FLEET_NET = '10.231.40';
const FLEET_DISK_BYTES = 2 * 1024 ** 3;
const FLEET_DEPLOY_TIMEOUT_MS = 900_000;

async function benchFleet(build: BuildResult, work: string, runs: number, say: (text: string) => void): Promise<FleetFigures> {
  const served = join(work, 'served');
  await mkdir(join(served, 'images'), { recursive: true });
  await mkdir(join(served, 'plans'), { recursive: true });
  const reference = await makeReferenceSystem(join(work, 'reference'));
  await generalize(reference.root);
  const wim = join(served, 'images/reference.wim');
  // Pipable, so each PE applies it as it downloads, as the proxyDHCP e2e test captures it.
  await exec(process.execPath, [CLI, 'capture', reference.root, wim, 'reference', '--compress', 'xpress', '--pipable'], { timeout: 600_000 });
  await rm(reference.root, { recursive: true, force: true });
  const sha256 = await sha256File(wim);
  const imageBytes = (await stat(wim)).size;
  const peBytes = (await stat(build.pxe.kernel)).size + (await stat(build.pxe.initrd)).size;
  const httpPlan = (m: FleetMachine) => referencePlan({ hostname: `fleet-${m.name}`, sha256 }).replace('url: smb://10.0.2.4/qemu/images', 'url: server:/images');

  let network: DeploymentNetwork | undefined;
  let site: Service | undefined;
  // Interrupted (Ctrl-C), the namespaces would outlive the bench: remove them, then die of the signal as before.
  const onSignal = (signal: NodeJS.Signals) => {
    void (async () => {
      await site?.stop().catch(() => undefined);
      await network?.remove();
    })().finally(() => process.kill(process.pid, signal));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    network = await makeDeploymentNetwork('bench', { net: FLEET_NET, taps: FLEET.length });
    site = await network.startSiteDhcp(work);
    const env: FleetEnv = { network, build, served, work, imageBytes, say };
    const one = await measureFleet(env, { name: 'one', transport: 'http', machines: [FLEET[1]!], plan: httpPlan }, runs);
    const three = await measureFleet(env, { name: 'three', transport: 'http', machines: FLEET, plan: httpPlan }, runs);
    const multicast = await measureFleet(env, { name: 'multicast', transport: 'multicast', machines: FLEET, plan: httpPlan, serveArgs: ['--multicast', 'images/reference.wim', '--min-receivers', String(FLEET.length), '--max-wait', '120'] }, runs);
    return { imageBytes, peBytes, one, three, multicast };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await site?.stop().catch(() => undefined);
    await network?.remove();
  }
}

/** br0's transmitted bytes in the server's namespace: everything the server sent onto the deployment network. */
async function serverTxBytes(network: DeploymentNetwork): Promise<number> {
  const text = await network.exec(network.ns.server, 'cat', ['/sys/class/net/br0/statistics/tx_bytes'], 10_000);
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n)) throw new Error(`br0's tx_bytes in ${network.ns.server} is not a number: ${JSON.stringify(text)}`);
  return n;
}

/** `runs` runs of one variant: its machines, each on a new blank disk, booted at once; imagepe serve started for it. */
async function measureFleet(env: FleetEnv, v: FleetVariant, runs: number): Promise<FleetVariantFigures> {
  const { network, build, served, work } = env;
  await rm(join(served, 'plans'), { recursive: true, force: true });
  await mkdir(join(served, 'plans'), { recursive: true });
  for (const m of v.machines) await writeFile(join(served, 'plans', `${m.mac.replace(/:/g, '-')}.yaml`), v.plan(m));
  const serveLines: string[] = [];
  const serve = await network.startServe(served, ['--pxe', build.pxe.dir, ...(v.serveArgs ?? [])], (l) => {
    serveLines.push(l);
    if (serveLines.length > 200) serveLines.shift();
  });
  const samples: FleetVariantFigures['samples'] = { wallSeconds: [], serverTxBytes: [] };
  try {
    for (let i = 0; i < runs; i++) {
      env.say(`network: fleet ${v.name} (${v.machines.map((m) => m.name).join(', ')}), run ${i + 1}/${runs}...`);
      const dir = join(work, `${v.name}-${i}`);
      await mkdir(dir, { recursive: true });
      const before = await serverTxBytes(network);
      let ran: { startedAt: number; deployedAt: number }[];
      try {
        ran = settled(
          await Promise.allSettled(
            v.machines.map((m) =>
              withVm(
                `fleet ${v.name} ${m.name}`,
                startVm({
                  tap: { name: network.taps[FLEET.indexOf(m)]!, netns: network.ns.server },
                  netBoot: {},
                  uefi: m.uefi,
                  mac: m.mac,
                  disks: [{ path: join(dir, `${m.name}.raw`), size: FLEET_DISK_BYTES, format: 'raw' }],
                  workDir: join(dir, `${m.name}-pe`),
                  lifetimeMs: FLEET_DEPLOY_TIMEOUT_MS + 180_000,
                }),
                async (vm) => {
                  const r = await runAgent(vm, 'deployed', FLEET_DEPLOY_TIMEOUT_MS);
                  const check = r.steps.find((s) => s.startsWith('check:')) ?? 'no check step';
                  const how = v.transport === 'multicast' ? 'check: received by multicast' : 'check: streamed into apply';
                  if (!check.startsWith(how)) throw new Error(`fleet ${v.name} ${m.name}: the image did not come as it should (${v.transport}): ${check}`);
                  return { startedAt: vm.startedAt, deployedAt: vm.startedAt + r.seconds * 1000 };
                },
              ),
            ),
          ),
        );
      } catch (e) {
        if (e instanceof Error) e.message += `\n--- imagepe serve, last lines ---\n${serveLines.slice(-20).join('\n')}`;
        throw e;
      }
      const after = await serverTxBytes(network);
      samples.wallSeconds.push((Math.max(...ran.map((r) => r.deployedAt)) - Math.min(...ran.map((r) => r.startedAt))) / 1000);
      samples.serverTxBytes.push(after - before);
      await rm(dir, { recursive: true, force: true });
    }
  } finally {
    await serve.stop().catch(() => undefined);
  }
  const tx = median(samples.serverTxBytes);
  return {
    transport: v.transport,
    firmware: v.machines.map((m) => (m.uefi ? 'uefi' : 'bios')),
    wallSeconds: median(samples.wallSeconds),
    serverTxBytes: tx,
    txPerImage: tx / (v.machines.length * env.imageBytes),
    samples,
  };
}
