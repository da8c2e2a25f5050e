import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { benchDeployApply, type DeployApplyResult } from './deploy-apply.js';
import { bundleAgent, projectRoot } from '../builder/index.js';
import { run } from '../core/index.js';

/**
 * The agent's apply (throughput against wimlib-imagex, and peak memory) on a WIM worth timing:
 * the generated OS-shaped tree of the WIM figures, XPRESS like the images a deploy usually gets.
 * No QEMU: the deploy runs on this host against loop devices, so it needs root.
 */
export async function benchAgentApply(work: string, dataset: string, runs: number): Promise<DeployApplyResult> {
  const share = join(work, 'apply-share');
  await mkdir(join(share, 'images'), { recursive: true });
  const wim = join(share, 'images/dataset.wim');
  await rm(wim, { force: true });
  await run('wimlib-imagex', ['capture', dataset, wim, 'dataset', '--compress=XPRESS', '--unix-data'], { timeoutMs: 1_800_000 });
  const agent = join(work, 'agent-deploy.cjs');
  await writeFile(agent, await bundleAgent(join(projectRoot(), 'bench', 'agent-deploy.ts')));
  try {
    return await benchDeployApply(share, 'images/dataset.wim', join(work, 'deploy-apply'), runs, agent);
  } finally {
    await rm(share, { recursive: true, force: true });
  }
}
