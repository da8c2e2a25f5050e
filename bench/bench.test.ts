import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTimeMaxRssKiB, parseTimeVerboseMaxRssKiB } from './deploy-apply.js';
import { parseArgs, SECTIONS, SLOW_SECTIONS } from './args.js';
import { SCHEMA_VERSION, tableRows, type Results } from './results.js';
import { watchLargestFile } from './scratch.js';

const FULL: Results = {
  schema: SCHEMA_VERSION,
  date: '2026-11-26T00:00:00.000Z',
  host: { cpus: 2, cpuModel: 'AMD EPYC', node: 'v20.20.2' },
  args: { quick: false, runs: 3, sizeMiB: 600, compression: 'xpress', only: [...SECTIONS] },
  wim: {
    datasetBytes: 631257794,
    datasetFiles: 7412,
    compression: 'xpress',
    runs: 3,
    capture: { imagepeSeconds: 3.47, wimlibSeconds: 3.37, overhead: 0.029, wimBytes: 240922126, samples: { imagepe: [3.47], wimlib: [3.37] } },
    apply: { imagepeSeconds: 1.6, wimlibSeconds: 1.6, overhead: 0, imagepeMiBps: 376, samples: { imagepe: [1.6], wimlib: [1.6] } },
    tarZstd: { createSeconds: 0.8, extractSeconds: 6.9, archiveBytes: 279376814, samples: { create: [0.8], extract: [6.9] } },
  },
  build: { runs: 3, coldSeconds: 5.9, warmSeconds: 0.48, isoBytes: 76353536, initrdBytes: 65377240, coreInitrdBytes: 5177954, samples: { cold: [5.9], warm: [0.48] } },
  boot: { runs: 3, accel: 'tcg', biosCdToReadySeconds: 17.6, uefiCdToReadySeconds: 19.2, secureBootCdToReadySeconds: 30.1, phases: { bios: { firmwareAndMenu: 3, kernelStart: 6, payload: 3, drivers: 2, agentStart: 4 }, uefi: null, secureBoot: null }, samples: { bios: [17.6], uefi: [19.2], secureBoot: [30.1] } },
  deploy: {
    endToEnd: { runs: 3, seconds: 42.5, peToDeployedSeconds: 31, deployedBootSeconds: 11.5, samples: { endToEnd: [42.5], peToDeployed: [31], deployedBoot: [11.5] } },
    apply: { runs: 3, bytes: 631242752, deploySeconds: 1.33, wimlibSeconds: 1.35, throughputRatio: 1.01, deployMiBps: 452, samples: { deploy: [1.33], wimlib: [1.35] } },
    memory: { runs: 3, agentPeakRssMiB: 74.4, agentPeakRssBeforeApplyMiB: 64.6, wimlibPeakRssMiB: 11.2, samples: { agent: [74.4], agentBeforeApply: [64.6], wimlib: [11.2] } },
  },
  network: {
    runs: 3,
    accel: 'tcg',
    durationSeconds: 1740,
    pxeToReady: { biosSeconds: 31.2, uefiSeconds: 35.8, samples: { bios: [31.2], uefi: [35.8] } },
    fleet: {
      imageBytes: 41943040,
      peBytes: 73400320,
      one: { transport: 'http', firmware: ['uefi'], wallSeconds: 95.5, serverTxBytes: 120586240, txPerImage: 2.875, samples: { wallSeconds: [95.5], serverTxBytes: [120586240] } },
      three: { transport: 'http', firmware: ['bios', 'uefi', 'uefi'], wallSeconds: 210.4, serverTxBytes: 361758720, txPerImage: 2.875, samples: { wallSeconds: [210.4], serverTxBytes: [361758720] } },
      multicast: null,
    },
    streamMemory: {
      imageBytes: 2148532224,
      compression: 'none',
      vmMemoryMiB: 1024,
      vmDiskBytes: 4294967296,
      seconds: 320.5,
      deployed: true,
      hostSeconds: 24.1,
      hostPeakRssMiB: { agent: 98.2, wimlibImagex: 14.3 },
      scratchLargestFileBytes: 0,
      samples: { hostSeconds: [24.1], agentPeakRssMiB: [98.2], wimlibImagexPeakRssMiB: [14.3], scratchLargestFileBytes: [0] },
    },
  },
  reliability: {
    plans: {
      tried: 11000,
      rejected: 11000,
      accepted: 0,
      crashed: 0,
      unclear: 0,
      byKind: { 'wrong-type': 1000, 'unknown-key': 1000, 'missing-field': 1000, 'bad-size': 1000, 'bad-url': 1000, 'bad-index': 1000, 'bad-value': 1000, 'bad-reference': 1000, 'bad-text': 1000, 'two-rest': 1000, 'too-large': 1000 },
      examples: [],
    },
    faults: { injected: 24, handled: 24, deployedWrongly: 0, disksTouchedWrongly: 0, secretLeaks: 0, byGroup: { image: 11, refusal: 6, share: 3, http: 4 }, mismatches: [] },
    deployedWrongly: 0,
    idempotent: true,
    durationMs: 61000,
  },
  burn: {
    runs: 3,
    imageBytes: 1073741824,
    deviceBytes: 1140850688,
    blockSize: 4194304,
    directIo: true,
    dense: { dataBytes: 1073741824, ddSeconds: 1.05, ddCmpSeconds: 1.8, burnSeconds: 1.9, burnWriteSeconds: 1.15, burnVerifySeconds: 0.72, ddMiBps: 975, ddCmpMiBps: 569, burnMiBps: 539, burnVsDd: 0.553, burnVsDdCmp: 0.947, samples: { dd: [1.05], ddCmp: [1.8], burn: [1.9] } },
    halfHoles: { dataBytes: 536870912, ddSeconds: 1.05, ddCmpSeconds: 1.8, burnSeconds: 1.2, burnWriteSeconds: 0.8, burnVerifySeconds: 0.37, ddMiBps: 975, ddCmpMiBps: 569, burnMiBps: 853, burnVsDd: 0.875, burnVsDdCmp: 1.5, samples: { dd: [1.05], ddCmp: [1.8], burn: [1.2] } },
  },
  debian: { runs: 1, accel: 'tcg', referenceBuildSeconds: 29, captureSeconds: 150, wimBytes: 260474140, imageBytes: 738197504, deploySeconds: 812, initramfsSeconds: 637, firstBootSeconds: 41, state: 'running', totalSeconds: 1003 },
  notMeasured: { 'deploy.memory.wimlibPeakRssMiB': 'GNU time is not installed' },
};

describe('bench arguments', () => {
  it('defaults to every section, 3 runs of a 600 MiB tree; --quick to 1 run of 200 MiB', () => {
    expect(parseArgs([])).toEqual({ quick: false, runs: 3, sizeMiB: 600, compression: 'xpress', only: [...SECTIONS] });
    expect(parseArgs(['--quick'])).toMatchObject({ quick: true, runs: 1, sizeMiB: 200, only: SECTIONS.filter((s) => s !== 'debian' && s !== 'network') });
    expect(SLOW_SECTIONS).toEqual(['network', 'debian']);
    expect(parseArgs(['--quick', '--only', 'debian']).only).toEqual(['debian']);
    expect(parseArgs(['--quick', '--only', 'network'])).toMatchObject({ quick: true, runs: 1, only: ['network'] });
    expect(parseArgs(['--only', 'apply,network,deploy']).only).toEqual(['deploy', 'network', 'apply']);
    expect(parseArgs(['--quick', '--runs', '2', '--size-mib', '50', '--compression', 'lzx'])).toMatchObject({ runs: 2, sizeMiB: 50, compression: 'lzx' });
  });

  it('--only keeps run order and takes memory for the apply runs that measure it', () => {
    expect(parseArgs(['--only', 'memory,wim']).only).toEqual(['wim', 'apply']);
    expect(parseArgs(['--only', 'wim,apply,memory']).only).toEqual(['wim', 'apply']);
    expect(parseArgs(['--only', 'reliability,wim']).only).toEqual(['wim', 'reliability']);
  });

  it('refuses what it does not understand instead of running something else', () => {
    expect(() => parseArgs(['--only', 'wim,qemu'])).toThrow(/not qemu/);
    expect(() => parseArgs(['--only'])).toThrow(/needs a value/);
    expect(() => parseArgs(['--runs', '0'])).toThrow(/--runs/);
    expect(() => parseArgs(['--runs', 'x'])).toThrow(/--runs/);
    expect(() => parseArgs(['--compression', 'zip'])).toThrow(/--compression/);
    expect(() => parseArgs(['--quik'])).toThrow(/unknown option --quik/);
    expect(() => parseArgs(['quick'])).toThrow(/unexpected argument/);
  });
});

describe('bench table', () => {
  it('shows every figure of a full run, memory included', () => {
    const rows = tableRows({ ...FULL, notMeasured: {} });
    expect(rows.map((r) => r[0])).toEqual([
      'dataset', 'capture (xpress)', 'WIM size', 'apply', 'tar + zstd -3', 'PE build', 'QEMU start → ready', '  bios phases', 'deploy end to end',
      'PXE over HTTP → ready', 'one machine (http)', 'three at once (http)', '  fleet image, PE', 'stream 2.00 GiB into 1024 MiB VM', '  same deploy on the host', 'network duration',
      'agent apply', 'agent peak RSS', 'wimlib-imagex peak RSS',
      'bad plans', 'faults', 'reported deployed wrongly', 'disks touched wrongly', 'secrets leaked', 'idempotent', 'reliability duration',
      'burn 1.00 GiB, dense', 'burn 1.00 GiB, half holes',
      'Debian 12 capture (PE)', 'Debian 12 deploy (PE)', 'Debian 12 first boot', 'Debian 12 total',
    ]);
    expect(rows.find((r) => r[0] === 'Debian 12 total')?.slice(1)).toEqual(['1003.0 s', 'capture + deploy + first boot; target 180 s — missed']);
    expect(rows.find((r) => r[0] === 'agent peak RSS')?.[1]).toBe('74.4 MiB');
    expect(rows.find((r) => r[0] === 'wimlib-imagex peak RSS')?.[1]).toBe('11.2 MiB');
    expect(rows.find((r) => r[0] === 'bad plans')?.[1]).toBe('11000 tried, 11000 rejected, 0 crashed');
    expect(rows.find((r) => r[0] === 'faults')?.[1]).toBe('24 injected, 24 handled as expected');
    expect(rows.find((r) => r[0] === 'idempotent')?.[1]).toBe('yes');
    expect(rows.find((r) => r[0] === 'reliability duration')?.[1]).toBe('61.0 s');
    expect(rows.find((r) => r[0] === 'burn 1.00 GiB, half holes')?.slice(1)).toEqual([
      'imagepe 1.20 s (853 MiB/s) vs dd 1.05 s, dd + cmp 1.80 s',
      'burn/dd 0.88, burn/(dd + cmp) 1.50; write 0.80 s + read-back 0.37 s',
    ]);
  });

  it('shows the network figures: boot over HTTP, the fleet with what the server sent, the streamed image', () => {
    const rows = tableRows({ ...FULL, notMeasured: {} });
    const row = (name: string) => rows.find((r) => r[0] === name)?.slice(1);
    expect(row('PXE over HTTP → ready')).toEqual(['BIOS 31.2 s, UEFI 35.8 s', 'from imagepe serve over QEMU user networking, tcg']);
    expect(row('one machine (http)')).toEqual(['95.5 s to the last deployed, server sent 115 MiB', 'uefi; 2.9 × image per machine, 1.05 × (PE + image) per machine']);
    expect(row('three at once (http)')?.[0]).toBe('210.4 s to the last deployed, server sent 345 MiB');
    expect(row('three at once (http)')?.[1]).toMatch(/^bios \+ uefi \+ uefi; 2\.9 × image per machine/);
    expect(row('stream 2.00 GiB into 1024 MiB VM')?.[0]).toBe('deployed in 320.5 s');
    expect(row('  same deploy on the host')?.[0]).toBe('24.1 s, peak RSS 98.2 MiB, wimlib-imagex 14.3 MiB');
    expect(row('  same deploy on the host')?.[1]).toMatch(/largest scratch file 0 B$/);
    expect(row('network duration')?.[0]).toBe('29.0 min');
    expect(rows.map((r) => r[0])).not.toContain('three by multicast (multicast)');
  });

  it('says why the multicast fleet and a streamed deploy that did not finish are missing, once each', () => {
    const n = FULL.network!;
    const fleet = { ...n.fleet, multicast: { ...n.fleet.three, transport: 'multicast' as const, serverTxBytes: 50000000 } };
    const withMulticast = tableRows({ ...FULL, network: { ...n, fleet }, notMeasured: {} });
    expect(withMulticast.find((r) => r[0] === 'three by multicast (multicast)')?.[1]).toBe('210.4 s to the last deployed, server sent 47.7 MiB');

    const slow: Results = {
      ...FULL,
      network: { ...n, streamMemory: { ...n.streamMemory, seconds: null, deployed: null } },
      notMeasured: {
        'network.fleet.multicast': 'multicast not wired yet',
        'network.streamMemory.deployed': 'the VM did not reach deployed within 900 s under tcg (1500 of 2049 MiB applied); the host figures stand',
        'network.streamMemory.seconds': 'the VM did not finish: see deployed',
      },
    };
    const rows = tableRows(slow);
    expect(rows.find((r) => r[0] === 'stream 2.00 GiB into 1024 MiB VM')).toEqual(['stream 2.00 GiB into 1024 MiB VM', 'not measured', slow.notMeasured['network.streamMemory.deployed']]);
    expect(rows.filter((r) => r[1] === 'not measured').map((r) => r[0])).toEqual(['stream 2.00 GiB into 1024 MiB VM', 'network.fleet.multicast']);
    expect(rows.find((r) => r[0] === '  same deploy on the host')?.[1]).toBe('24.1 s, peak RSS 98.2 MiB, wimlib-imagex 14.3 MiB');

    const failed = tableRows({ ...slow, network: { ...n, streamMemory: { ...n.streamMemory, seconds: null, deployed: false } }, notMeasured: { 'network.streamMemory.seconds': 'the guest kernel panicked before a serial line' } });
    expect(failed.find((r) => r[0] === 'stream 2.00 GiB into 1024 MiB VM')?.slice(1)).toEqual(['not deployed — FAILED', 'the guest kernel panicked before a serial line']);
    expect(failed.filter((r) => r[1] === 'not measured')).toEqual([]);
  });

  it('says which reliability cases failed, and why idempotency was not run, once', () => {
    const rel = FULL.reliability!;
    const quick: Results = {
      ...FULL,
      reliability: { ...rel, idempotent: null, deployedWrongly: 1, faults: { ...rel.faults, handled: 23, deployedWrongly: 1, mismatches: ['http-404: reported deployed'] } },
      notMeasured: { 'reliability.idempotent': 'not run with --quick: it needs two full deploys' },
    };
    const rows = tableRows(quick);
    expect(rows.find((r) => r[0] === 'idempotent')).toEqual(['idempotent', 'not run', 'not run with --quick: it needs two full deploys']);
    expect(rows.filter((r) => r[0] === 'reliability.idempotent')).toEqual([]);
    expect(rows.find((r) => r[0] === 'reported deployed wrongly')?.[2]).toMatch(/must be 0 — FAILED/);
    expect(rows.find((r) => r[0] === 'fault not as expected')?.[1]).toBe('http-404: reported deployed');
  });

  it('marks what was not measured and invents nothing for it', () => {
    const partial: Results = {
      ...FULL,
      build: null,
      boot: null,
      network: null,
      reliability: null,
      deploy: { ...FULL.deploy, endToEnd: null, memory: { ...FULL.deploy.memory!, wimlibPeakRssMiB: null, samples: { agent: [74.4], agentBeforeApply: [64.6], wimlib: [] } } },
      notMeasured: {
        build: 'skipped: --only wim,apply',
        boot: 'skipped: --only wim,apply',
        'deploy.endToEnd': 'skipped: --only wim,apply',
        network: 'skipped: --only wim,apply',
        'deploy.memory.wimlibPeakRssMiB': 'GNU time is not installed',
        reliability: 'skipped: --only wim,apply',
      },
    };
    const rows = tableRows(partial);
    const names = rows.map((r) => r[0]);
    expect(names).not.toContain('PE build');
    expect(names).not.toContain('deploy end to end');
    expect(names).not.toContain('wimlib-imagex peak RSS');
    expect(names).not.toContain('bad plans');
    expect(names).not.toContain('PXE over HTTP → ready');
    expect(rows.filter((r) => r[1] === 'not measured').map((r) => r[0])).toEqual(['build', 'boot', 'deploy.endToEnd', 'network', 'deploy.memory.wimlibPeakRssMiB', 'reliability']);
  });
});

describe('GNU time output', () => {
  it('is the peak in KiB, the largest when there are several, ignoring the failure line', () => {
    expect(parseTimeMaxRssKiB('11304\n')).toBe(11304);
    expect(parseTimeMaxRssKiB('9000\nCommand exited with non-zero status 1\n11432\n')).toBe(11432);
    expect(() => parseTimeMaxRssKiB('')).toThrow(/recorded no/);
  });

  it('-v: the "Maximum resident set size" line, KiB', () => {
    const verbose = '\tCommand being timed: "node dist/cli/main.js deploy"\n\tMaximum resident set size (kbytes): 100556\n\tAverage resident set size (kbytes): 0\n\tExit status: 0\n';
    expect(parseTimeVerboseMaxRssKiB(verbose)).toBe(100556);
    expect(() => parseTimeVerboseMaxRssKiB('Command exited with non-zero status 1\n')).toThrow(/no maximum resident set size/);
  });
});

describe('scratch watch', () => {
  it('remembers the largest file that appeared under the dir, even one removed before the end', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imagepe-bench-watch-'));
    try {
      const watch = watchLargestFile(dir, 20);
      await mkdir(join(dir, 'a/b'), { recursive: true });
      await writeFile(join(dir, 'small'), Buffer.alloc(10));
      await writeFile(join(dir, 'a/b/image.wim'), Buffer.alloc(1 << 20));
      await new Promise((r) => setTimeout(r, 200));
      await rm(join(dir, 'a/b/image.wim'));
      expect(await watch.stop()).toEqual({ bytes: 1 << 20, path: join(dir, 'a/b/image.wim') });
      expect(await watchLargestFile(dir, 20).stop()).toEqual({ bytes: 10, path: join(dir, 'small') });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('docs/bench.md', () => {
  // The schema table names fields as `a.b.c`; a bare name in the same cell is a sibling of the
  // field before it, and a name covers everything below it (`wim.capture.samples`).
  const documented = (): string[] => {
    const text = readFileSync(new URL('../docs/bench.md', import.meta.url), 'utf8');
    const section = text.slice(text.indexOf('## JSON'), text.indexOf('\n## ', text.indexOf('## JSON') + 1));
    const paths: string[] = [];
    for (const line of section.split('\n')) {
      if (!line.startsWith('| `')) continue;
      let parent = '';
      for (const [, name] of line.split('|')[1]!.matchAll(/`([^`]+)`/g)) {
        const full = name!.includes('.') ? name! : parent ? `${parent}.${name}` : name!;
        parent = full.includes('.') ? full.slice(0, full.lastIndexOf('.')) : '';
        paths.push(full);
      }
    }
    return paths;
  };
  const leaves = (value: unknown, prefix = ''): string[] =>
    value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length
      ? Object.entries(value).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k))
      : [prefix];
  const exists = (path: string) => path.split('.').reduce<unknown>((o, k) => (o !== null && typeof o === 'object' && k in o ? (o as Record<string, unknown>)[k] : undefined), FULL) !== undefined;

  it('documents the schema version the bench writes', () => {
    expect(readFileSync(new URL('../docs/bench.md', import.meta.url), 'utf8')).toContain(`## JSON (schema ${SCHEMA_VERSION})`);
  });

  it('documents every field of the JSON, and no field it does not have', () => {
    const docs = documented();
    const undocumented = leaves(FULL).filter((l) => !docs.some((d) => l === d || l.startsWith(`${d}.`)));
    expect(undocumented).toEqual([]);
    expect(docs.filter((d) => !exists(d))).toEqual([]);
  });
});

describe('boot phases', () => {
  it('splits a boot at the serial milestones, and gives none when one is missing', async () => {
    const { bootPhases } = await import('./pe.js');
    const lines = [
      { at: 4, line: 'imagepe: loading the kernel' },
      { at: 11, line: 'imagepe: starting the preinstallation environment (6.1.0)' },
      { at: 14.5, line: 'imagepe: payload mounted' },
      { at: 16, line: 'imagepe: mode: deploy' },
    ];
    expect(bootPhases(lines, 20)).toEqual({ firmwareAndMenu: 4, kernelStart: 7, payload: 3.5, drivers: 1.5, agentStart: 4 });
    expect(bootPhases(lines.slice(1), 20)).toBeNull();
  });
});
