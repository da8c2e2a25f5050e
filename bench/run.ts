#!/usr/bin/env node
// npm run bench [-- --quick] [--runs N] [--size-mib N] [--compression xpress|lzx|lzms|none] [--only SECTIONS]
// (--quick: one run of everything but the slow sections, network and debian, unless --only names them)
// Prints a table and writes bench/results/latest.json (schema: docs/bench.md). The printing layer
// of the bench: the modules it calls return figures and print nothing.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { benchAgentApply } from './apply.js';
import { benchBurn } from './burn.js';
import { benchRaw } from './raw.js';
import { benchDebian } from './debian.js';
import { parseArgs, type Section } from './args.js';
import { makeDataset, type Dataset } from './dataset.js';
import { benchNetwork } from './network.js';
import { benchBoot, benchBuild, benchEndToEnd } from './pe.js';
import { benchReliability } from './reliability.js';
import { SCHEMA_VERSION, formatTable, tableRows, type Results } from './results.js';
import { removeDir } from './scratch.js';
import { benchWim } from './wim.js';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const want = (s: Section) => args.only.includes(s);
  const say = (text: string) => process.stderr.write(`bench: ${text}\n`);
  const results: Results = {
    schema: SCHEMA_VERSION,
    date: new Date().toISOString(),
    host: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
    args,
    wim: null,
    build: null,
    boot: null,
    deploy: { endToEnd: null, apply: null, memory: null },
    network: null,
    reliability: null,
    burn: null,
    debian: null,
    notMeasured: {},
  };
  const skipped = `skipped: --only ${args.only.join(',')}`;
  const work = join(tmpdir(), `imagepe-bench-${process.pid}`);
  await mkdir(work, { recursive: true });
  try {
    let data: Dataset | undefined;
    if (want('wim') || want('apply')) {
      say(`generating a ${args.sizeMiB} MiB tree...`);
      data = await makeDataset(join(work, 'tree'), args.sizeMiB * 1024 * 1024);
    }

    if (data && want('wim')) {
      say(`WIM capture/apply and tar + zstd, ${args.compression}, ${args.runs} run(s) each side...`);
      results.wim = await benchWim(data, work, args.compression, args.runs);
    } else results.notMeasured.wim = skipped;

    // boot and deploy boot the PE, so they need a build and report its figures too.
    let iso: string | undefined;
    if (want('build') || want('boot') || want('deploy')) {
      say(`PE build, cold and warm, ${args.runs} run(s)...`);
      const built = await benchBuild(work, args.runs);
      results.build = built.figures;
      iso = built.iso;
    } else results.notMeasured.build = skipped;

    if (iso && want('boot')) {
      say(`QEMU start to ready, BIOS and UEFI, ${args.runs} run(s)...`);
      results.boot = await benchBoot(iso, work, args.runs);
    } else results.notMeasured.boot = skipped;

    if (iso && want('deploy')) {
      say(`deploy end to end in QEMU, ${args.runs} run(s)...`);
      results.deploy.endToEnd = await benchEndToEnd(iso, work, args.runs);
    } else results.notMeasured['deploy.endToEnd'] = skipped;

    if (want('network')) {
      say(`network: PXE boots over HTTP, one machine and three at once through proxyDHCP, a ${args.quick ? 1 : 2} GiB image streamed into a 1 GiB VM; ${args.runs} run(s)...`);
      const { figures, notMeasured } = await benchNetwork(work, { runs: args.runs, quick: args.quick, say });
      results.network = figures;
      for (const [field, why] of Object.entries(notMeasured)) results.notMeasured[`network.${field}`] = why;
      say(`network: done in ${(figures.durationSeconds / 60).toFixed(1)} min`);
    } else results.notMeasured.network = args.quick && !args.only.includes('network') ? 'left out by --quick: it takes about half an hour under software emulation; --only network runs it' : skipped;

    if (data && want('apply')) {
      say(`agent apply vs wimlib-imagex and the agent's peak memory, ${args.runs} run(s)...`);
      const { apply, memory, notMeasured } = await benchAgentApply(work, data.root, args.runs);
      results.deploy.apply = apply;
      results.deploy.memory = memory;
      for (const [field, why] of Object.entries(notMeasured)) results.notMeasured[`deploy.memory.${field}`] = why;
    } else {
      results.notMeasured['deploy.apply'] = skipped;
      results.notMeasured['deploy.memory'] = skipped;
    }

    if (want('reliability')) {
      say(`reliability: broken plans and faults injected into deploys to loop devices${args.quick ? ' (quick: fewer plans, no idempotency run)' : ''}...`);
      results.reliability = await benchReliability(work, { quick: args.quick });
      if (results.reliability.idempotent === null) results.notMeasured['reliability.idempotent'] = 'not run with --quick: it needs two full deploys';
    } else results.notMeasured.reliability = skipped;

    if (want('burn')) {
      say(`burn: a 1 GiB image (dense, then half holes) to a loop device, imagepe burn vs dd and dd + cmp, ${args.runs} run(s)...`);
      results.burn = await benchBurn(work, args.runs);
    } else results.notMeasured.burn = skipped;

    if (want('raw')) {
      say(`raw: a 1 GiB raw image (dense, then half holes, each with its bmap) to a loop device, writeRawImage vs dd and bmaptool copy, with and without sha256, ${args.runs} run(s)...`);
      results.raw = await benchRaw(work, args.runs);
      process.stderr.write(`${JSON.stringify(results.raw, null, 2)}\n`);
    } else results.notMeasured.raw = skipped;

    if (want('debian')) {
      say('a real Debian 12 through the PE: reference, capture, deploy (initramfs rebuilt), first boot; one run (about twenty minutes under software emulation)...');
      results.debian = await benchDebian(work);
    } else results.notMeasured.debian = args.quick && !args.only.includes('debian') ? 'left out by --quick: it takes about twenty minutes under software emulation; --only debian runs it' : skipped;

    const out = resolve('bench/results/latest.json');
    await mkdir(resolve('bench/results'), { recursive: true });
    await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(formatTable(tableRows(results)));
    process.stdout.write(`\nJSON: ${out}\n`);
  } finally {
    await removeDir(work);
  }
}

main().catch((e) => {
  const { code, hint } = e as { code?: string; hint?: string };
  // A mistyped option needs its message and the usage, not a stack.
  const text = e instanceof Error ? (code === 'INVALID_INPUT' ? e.message : (e.stack ?? e.message)) : String(e);
  process.stderr.write(`bench failed: ${text}${hint ? `\n${hint}` : ''}\n`);
  process.exitCode = 1;
});
