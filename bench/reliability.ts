import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { deploy } from '../agent/deploy/deploy.js';
import { parsePlan } from '../agent/plan/index.js';
import { argvRecorder } from '../test-support/reliability/argv-recorder.js';
import { readDiskState } from '../test-support/reliability/disk-state.js';
import { ALL_FAULTS, runFaultSeries, type FaultFigures } from '../test-support/reliability/faults.js';
import { runFuzz, type FuzzFigures } from '../test-support/reliability/fuzz.js';
import { startImageServers } from '../test-support/reliability/servers.js';
import { basePlan, blankDisk, FACTS, makeWorld } from '../test-support/reliability/world.js';

export interface ReliabilityFigures {
  /** Broken plans and layouts from the fuzzer (test-support/reliability/fuzz.ts). */
  plans: FuzzFigures;
  /** Faults injected into real host-side deploys (test-support/reliability/faults.ts). */
  faults: FaultFigures;
  /** Fault runs that ended with a disk wrongly reported as deployed: must be 0 (an accepted broken plan is counted in plans.accepted). */
  deployedWrongly: number;
  /** Two deploys of one plan to one disk read back the same (full runs only; null when not run). */
  idempotent: boolean | null;
  durationMs: number;
}

/**
 * The reliability section: how many broken plans were tried and how they were refused, how many
 * faults were injected into deploys (bad images, disks that must be refused, unreachable shares,
 * http(s) faults) and how each ended. Prints nothing; bench/run.ts reports.
 */
export async function benchReliability(work: string, opts: { quick: boolean }): Promise<ReliabilityFigures> {
  const started = Date.now();
  const plans = runFuzz(opts.quick ? 100 : 1000);
  const dir = join(work, 'reliability');
  await mkdir(dir, { recursive: true });
  const world = await makeWorld(dir);
  const servers = await startImageServers(world.share, dir);
  const recorder = await argvRecorder(join(dir, 'argv'));
  try {
    const { figures: faults } = await runFaultSeries({ world, servers, recorder }, ALL_FAULTS);
    let idempotent: boolean | null = null;
    if (!opts.quick) {
      const disk = await blankDisk(join(dir, 'twice.img'));
      const states = [];
      for (let i = 0; i < 2; i++) {
        await deploy(parsePlan(basePlan(world, { wipe: true })), { disk, yes: true, facts: FACTS });
        states.push(JSON.stringify(await readDiskState(disk)));
      }
      idempotent = states[0] === states[1];
    }
    return { plans, faults, deployedWrongly: faults.deployedWrongly, idempotent, durationMs: Date.now() - started };
  } finally {
    await servers.close();
    await rm(dir, { recursive: true, force: true });
  }
}
