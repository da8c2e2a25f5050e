#!/usr/bin/env node
// npm run bench [-- --quick] [--runs N] [--size-mib N] [--compression xpress|lzx|lzms|none]
// Prints a table and writes bench/results/latest.json (schema: docs/bench.md).
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatBytes } from '../core/index.js';
import type { Compression } from '../imaging/index.js';
import { makeDataset } from './dataset.js';
import { removeDir } from './scratch.js';
import { benchBoot, benchBuild, benchDeploy, type BootFigures, type BuildFigures, type DeployFigures } from './pe.js';
import { benchWim, type WimFigures } from './wim.js';

interface Args {
  quick: boolean;
  runs: number;
  sizeMiB: number;
  compression: Compression;
}

function parseArgs(argv: string[]): Args {
  const quick = argv.includes('--quick');
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    quick,
    runs: Number(value('--runs') ?? (quick ? 1 : 3)),
    sizeMiB: Number(value('--size-mib') ?? (quick ? 200 : 600)),
    compression: (value('--compression') ?? 'xpress') as Compression,
  };
}

interface Results {
  schema: 1;
  date: string;
  host: { cpus: number; cpuModel: string; node: string };
  args: Args;
  wim: WimFigures;
  build: BuildFigures;
  boot: BootFigures;
  deploy: DeployFigures;
  notYetMeasurable: Record<string, string>;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const work = join(tmpdir(), `imagepe-bench-${process.pid}`);
  await mkdir(work, { recursive: true });
  try {
    process.stderr.write(`bench: generating a ${args.sizeMiB} MiB tree...\n`);
    const data = await makeDataset(join(work, 'tree'), args.sizeMiB * 1024 * 1024);
    process.stderr.write(`bench: WIM capture/apply, ${args.compression}, ${args.runs} run(s) each side...\n`);
    const wim = await benchWim(data, work, args.compression, args.runs);
    process.stderr.write('bench: PE build, cold and warm...\n');
    const { figures: build, iso } = await benchBuild(work);
    process.stderr.write(`bench: QEMU start to ready, BIOS and UEFI, ${args.runs} run(s)...\n`);
    const boot = await benchBoot(iso, work, args.runs);
    process.stderr.write('bench: deploy end to end in QEMU, then agent apply vs wimlib-imagex...\n');
    const deploy = await benchDeploy(iso, work, args.runs, data.root);
    const results: Results = {
      schema: 1,
      date: new Date().toISOString(),
      host: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
      args,
      wim,
      build,
      boot,
      deploy,
      notYetMeasurable: {
        agentPeakRss: 'not measured yet: needs a sampler of the agent process inside the PE',
      },
    };
    const out = resolve('bench/results/latest.json');
    await mkdir(resolve('bench/results'), { recursive: true });
    await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
    printTable(results);
    process.stdout.write(`\nJSON: ${out}\n`);
  } finally {
    await removeDir(work);
  }
}

function printTable(r: Results): void {
  const w = r.wim;
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
  const rows = [
    ['dataset', `${formatBytes(w.datasetBytes)} in ${w.datasetFiles} files`, ''],
    [`capture (${w.compression})`, `imagepe ${w.capture.imagepeSeconds.toFixed(2)} s vs wimlib-imagex ${w.capture.wimlibSeconds.toFixed(2)} s`, `overhead ${pct(w.capture.overhead)}`],
    ['WIM size', formatBytes(w.capture.wimBytes), `${((w.capture.wimBytes / w.datasetBytes) * 100).toFixed(1)}% of data`],
    ['apply', `imagepe ${w.apply.imagepeSeconds.toFixed(2)} s vs wimlib-imagex ${w.apply.wimlibSeconds.toFixed(2)} s`, `overhead ${pct(w.apply.overhead)}, ${w.apply.imagepeMiBps.toFixed(0)} MiB/s`],
    ['tar + zstd -3', `create ${w.tarZstd.createSeconds.toFixed(2)} s, extract ${w.tarZstd.extractSeconds.toFixed(2)} s`, formatBytes(w.tarZstd.archiveBytes)],
    ['PE build', `cold ${r.build.coldSeconds.toFixed(1)} s, warm ${r.build.warmSeconds.toFixed(2)} s`, `ISO ${formatBytes(r.build.isoBytes)}, core initrd ${formatBytes(r.build.coreInitrdBytes)}`],
    ['QEMU start → ready', `BIOS ${r.boot.biosCdToReadySeconds.toFixed(1)} s, UEFI ${r.boot.uefiCdToReadySeconds.toFixed(1)} s`, `as CD, ${r.boot.accel}`],
    ['deploy end to end', `${r.deploy.endToEndSeconds.toFixed(1)} s`, `PE → deployed ${r.deploy.peToDeployedSeconds.toFixed(1)} s + disk boot ${r.deploy.deployedBootSeconds.toFixed(1)} s (UEFI)`],
    ['agent apply', `${r.deploy.apply.deploySeconds.toFixed(2)} s vs wimlib-imagex ${r.deploy.apply.wimlibSeconds.toFixed(2)} s`, `throughput ratio ${r.deploy.apply.throughputRatio.toFixed(3)}, ${r.deploy.apply.deployMiBps.toFixed(0)} MiB/s`],
    ...Object.entries(r.notYetMeasurable).map(([k, v]) => [k, 'not yet measurable', v]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
