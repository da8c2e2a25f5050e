import type { AgentMemoryFigures, DeployApplyFigures } from './deploy-apply.js';
import { formatBytes } from '../core/index.js';
import type { BenchArgs } from './args.js';
import type { BootFigures, BuildFigures, EndToEndFigures } from './pe.js';
import type { BurnCaseFigures, BurnFigures } from './burn.js';
import type { DebianFigures } from './debian.js';
import type { RawFigures } from './raw.js';
import type { FleetVariantFigures, NetworkFigures } from './network.js';
import type { ReliabilityFigures } from './reliability.js';
import type { WimFigures } from './wim.js';

/** Bumped whenever a field of Results changes meaning, moves or goes; docs/bench.md documents it. */
export const SCHEMA_VERSION = 3;

/**
 * bench/results/latest.json. A part that was not measured in this run (skipped by --only, or not
 * measurable on this host) is null, never a made-up number, and notMeasured says why under the
 * JSON path of what is missing. A new part of the bench adds its name to SECTIONS (args.ts), its
 * field here (nullable, with a notMeasured reason when skipped), its step in run.ts and its rows in
 * tableRows().
 */
export interface Results {
  schema: typeof SCHEMA_VERSION;
  date: string;
  host: { cpus: number; cpuModel: string; node: string };
  args: BenchArgs;
  wim: WimFigures | null;
  build: BuildFigures | null;
  boot: BootFigures | null;
  deploy: {
    endToEnd: EndToEndFigures | null;
    apply: DeployApplyFigures | null;
    memory: AgentMemoryFigures | null;
  };
  network: NetworkFigures | null;
  reliability: ReliabilityFigures | null;
  burn: BurnFigures | null;
  /** bench/raw.ts; optional so that results written before it existed still read. */
  raw?: RawFigures | null;
  debian: DebianFigures | null;
  notMeasured: Record<string, string>;
}

/** The human table: figure, value, detail. Whatever is in notMeasured gets a row saying so, once. */
export function tableRows(r: Results): [string, string, string][] {
  const rows: [string, string, string][] = [];
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
  const mib = (x: number) => `${x.toFixed(1)} MiB`;
  // notMeasured paths a row has already explained, so they are not listed again at the end.
  const shown = new Set<string>();
  const w = r.wim;
  if (w) {
    rows.push(
      ['dataset', `${formatBytes(w.datasetBytes)} in ${w.datasetFiles} files`, ''],
      [`capture (${w.compression})`, `imagepe ${w.capture.imagepeSeconds.toFixed(2)} s vs wimlib-imagex ${w.capture.wimlibSeconds.toFixed(2)} s`, `overhead ${pct(w.capture.overhead)}`],
      ['WIM size', formatBytes(w.capture.wimBytes), `${((w.capture.wimBytes / w.datasetBytes) * 100).toFixed(1)}% of data`],
      ['apply', `imagepe ${w.apply.imagepeSeconds.toFixed(2)} s vs wimlib-imagex ${w.apply.wimlibSeconds.toFixed(2)} s`, `overhead ${pct(w.apply.overhead)}, ${w.apply.imagepeMiBps.toFixed(0)} MiB/s`],
      ['tar + zstd -3', `create ${w.tarZstd.createSeconds.toFixed(2)} s, extract ${w.tarZstd.extractSeconds.toFixed(2)} s`, formatBytes(w.tarZstd.archiveBytes)],
    );
  }
  if (r.build) rows.push(['PE build', `cold ${r.build.coldSeconds.toFixed(1)} s, warm ${r.build.warmSeconds.toFixed(2)} s`, `ISO ${formatBytes(r.build.isoBytes)}, core initrd ${formatBytes(r.build.coreInitrdBytes)}`]);
  if (r.boot) {
    rows.push(['QEMU start → ready', `BIOS ${r.boot.biosCdToReadySeconds.toFixed(1)} s, UEFI ${r.boot.uefiCdToReadySeconds.toFixed(1)} s, Secure Boot ${r.boot.secureBootCdToReadySeconds.toFixed(1)} s`, `as CD, ${r.boot.accel}`]);
    for (const [kind, p] of Object.entries(r.boot.phases)) {
      if (p) rows.push([`  ${kind} phases`, `${p.firmwareAndMenu.toFixed(1)} + ${p.kernelStart.toFixed(1)} + ${p.payload.toFixed(1)} + ${p.drivers.toFixed(1)} + ${p.agentStart.toFixed(1)} s`, 'firmware+menu, kernel start, payload, drivers, Node.js+agent']);
    }
  }
  const e = r.deploy.endToEnd;
  if (e) rows.push(['deploy end to end', `${e.seconds.toFixed(1)} s`, `PE → deployed ${e.peToDeployedSeconds.toFixed(1)} s + disk boot ${e.deployedBootSeconds.toFixed(1)} s (UEFI)`]);
  const n = r.network;
  if (n) {
    rows.push(['PXE over HTTP → ready', `BIOS ${n.pxeToReady.biosSeconds.toFixed(1)} s, UEFI ${n.pxeToReady.uefiSeconds.toFixed(1)} s`, `from imagepe serve over QEMU user networking, ${n.accel}`]);
    const f = n.fleet;
    const fleetRow = (name: string, v: FleetVariantFigures): [string, string, string] => {
      const machines = v.firmware.length;
      const copies = v.serverTxBytes / (machines * (f.peBytes + f.imageBytes));
      return [
        `${name} (${v.transport})`,
        `${v.wallSeconds.toFixed(1)} s to the last deployed, server sent ${formatBytes(v.serverTxBytes)}`,
        `${v.firmware.join(' + ')}; ${v.txPerImage.toFixed(1)} × image per machine, ${copies.toFixed(2)} × (PE + image) per machine`,
      ];
    };
    rows.push(fleetRow('one machine', f.one), fleetRow('three at once', f.three));
    if (f.multicast) rows.push(fleetRow('three by multicast', f.multicast));
    rows.push(['  fleet image, PE', `${formatBytes(f.imageBytes)}, ${formatBytes(f.peBytes)}`, 'the pipable reference WIM (xpress); vmlinuz + initrd.img each machine boots']);
    const sm = n.streamMemory;
    const smName = `stream ${formatBytes(sm.imageBytes)} into ${sm.vmMemoryMiB} MiB VM`;
    if (sm.deployed === null) {
      rows.push([smName, 'not measured', r.notMeasured['network.streamMemory.deployed'] ?? '']);
      shown.add('network.streamMemory.deployed').add('network.streamMemory.seconds');
    } else if (!sm.deployed) {
      rows.push([smName, 'not deployed — FAILED', r.notMeasured['network.streamMemory.seconds'] ?? '']);
      shown.add('network.streamMemory.seconds');
    } else rows.push([smName, `deployed in ${sm.seconds!.toFixed(1)} s`, `QEMU start (network boot) to deployed, disk ${formatBytes(sm.vmDiskBytes)}, pipable, uncompressed`]);
    rows.push([
      '  same deploy on the host',
      `${sm.hostSeconds.toFixed(1)} s, peak RSS ${mib(sm.hostPeakRssMiB.agent)}${sm.hostPeakRssMiB.wimlibImagex === null ? '' : `, wimlib-imagex ${mib(sm.hostPeakRssMiB.wimlibImagex)}`}`,
      `CLI from a local server; largest of the agent and its children, then wimlib-imagex alone; largest scratch file ${formatBytes(sm.scratchLargestFileBytes)}`,
    ]);
    rows.push(['network duration', `${(n.durationSeconds / 60).toFixed(1)} min`, '']);
  }
  const a = r.deploy.apply;
  if (a) rows.push(['agent apply', `${a.deploySeconds.toFixed(2)} s vs wimlib-imagex ${a.wimlibSeconds.toFixed(2)} s`, `throughput ratio ${a.throughputRatio.toFixed(3)}, ${a.deployMiBps.toFixed(0)} MiB/s`]);
  const m = r.deploy.memory;
  if (m) {
    rows.push(['agent peak RSS', mib(m.agentPeakRssMiB), `the Node.js agent process over the deploy; ${mib(m.agentPeakRssBeforeApplyMiB)} before the apply`]);
    if (m.wimlibPeakRssMiB !== null) rows.push(['wimlib-imagex peak RSS', mib(m.wimlibPeakRssMiB), 'the apply the agent ran']);
  }
  const rel = r.reliability;
  if (rel) {
    const p = rel.plans;
    const f = rel.faults;
    const mustBe0 = (n: number, what: string) => `${what}; must be 0${n ? ' — FAILED' : ''}`;
    const groups = Object.entries(f.byGroup).map(([g, n]) => `${g} ${n}`).join(', ');
    rows.push(
      ['bad plans', `${p.tried} tried, ${p.rejected} rejected, ${p.crashed} crashed`, `${p.accepted} accepted, ${p.unclear} refused unclearly; ${Object.keys(p.byKind).length} kinds of plan and layout damage`],
      ['faults', `${f.injected} injected, ${f.handled} handled as expected`, `${groups}; real deploys to loop devices`],
      ['reported deployed wrongly', String(rel.deployedWrongly), mustBe0(rel.deployedWrongly, 'fault runs that ended with the disk reported deployed')],
      ['disks touched wrongly', String(f.disksTouchedWrongly), mustBe0(f.disksTouchedWrongly, 'a disk changed by a fault visible before any write')],
      ['secrets leaked', String(f.secretLeaks), mustBe0(f.secretLeaks, 'runs with a plan secret in events, logs, errors or command lines')],
      rel.idempotent === null
        ? ['idempotent', 'not run', r.notMeasured['reliability.idempotent'] ?? '']
        : ['idempotent', rel.idempotent ? 'yes' : 'no', `two deploys of one plan to one disk read back ${rel.idempotent ? 'the same' : 'differently — FAILED'}`],
      ['reliability duration', `${(rel.durationMs / 1000).toFixed(1)} s`, ''],
    );
    // The counts say how many went wrong; these say which, so a failed run can be looked into without rerunning it.
    for (const miss of f.mismatches) rows.push(['fault not as expected', miss, '']);
    for (const e of p.examples) rows.push(['bad plan not as expected', e, '']);
    // Its row already says why it was not run.
    shown.add('reliability.idempotent');
  }
  const b = r.burn;
  if (b) {
    const burnRow = (name: string, c: BurnCaseFigures): [string, string, string] => [
      name,
      `imagepe ${c.burnSeconds.toFixed(2)} s (${c.burnMiBps.toFixed(0)} MiB/s) vs dd ${c.ddSeconds.toFixed(2)} s, dd + cmp ${c.ddCmpSeconds.toFixed(2)} s`,
      `burn/dd ${c.burnVsDd.toFixed(2)}, burn/(dd + cmp) ${c.burnVsDdCmp.toFixed(2)}; write ${c.burnWriteSeconds.toFixed(2)} s + read-back ${c.burnVerifySeconds.toFixed(2)} s`,
    ];
    rows.push(burnRow(`burn ${formatBytes(b.imageBytes)}, dense`, b.dense), burnRow(`burn ${formatBytes(b.imageBytes)}, half holes`, b.halfHoles));
  }
  const d = r.debian;
  if (d) {
    rows.push(
      ['Debian 12 capture (PE)', `${d.captureSeconds.toFixed(1)} s`, `WIM ${formatBytes(d.wimBytes)} of ${formatBytes(d.imageBytes)} of files, ${d.accel}`],
      ['Debian 12 deploy (PE)', `${d.deploySeconds.toFixed(1)} s`, `of which the image's update-initramfs ${d.initramfsSeconds.toFixed(1)} s (UEFI, layout from the image)`],
      ['Debian 12 first boot', `${d.firstBootSeconds.toFixed(1)} s`, `QEMU start to multi-user.target, systemd says ${d.state}`],
      ['Debian 12 total', `${d.totalSeconds.toFixed(1)} s`, `capture + deploy + first boot; target 180 s${d.totalSeconds > 180 ? ' — missed' : ''}`],
    );
  }
  for (const [path, why] of Object.entries(r.notMeasured)) if (!shown.has(path)) rows.push([path, 'not measured', why]);
  return rows;
}

export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = [0, 1, 2].map((i) => Math.max(0, ...rows.map((row) => row[i]!.length)));
  return rows.map((row) => `${row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`).join('');
}
