import { basename } from 'node:path';
import { runSteps } from '../steps/index.js';
import { type DeployContext, type DeployOptions, type DeployResult } from './context.js';
import { isRawSource, type DeployPlan } from '../plan/index.js';
import { rawDeploySteps } from './raw/index.js';
import { deploySteps } from './steps/index.js';

/**
 * Deploys a plan: the steps of ./steps run in order by the step runner (agent/steps), which
 * announces each, reports `failed` with the step and whether the disk was touched, releases
 * what the deploy made on every path and writes the log to the share. `deployed` comes only
 * when every step passed.
 *
 * Throws what the failing step threw: REFUSED (the disk, no confirmation), NOT_FOUND, WIM_CORRUPT,
 * LAYOUT_INVALID, VERIFY_FAILED, CANCELLED, COMMAND_FAILED with the command's stderr tail.
 */
export async function deploy(plan: DeployPlan, options: DeployOptions = {}): Promise<DeployResult> {
  const ctx: DeployContext = { plan, options, diskShown: options.disk ?? (plan.target.disk && 'path' in plan.target.disk ? plan.target.disk.path : ''), holds: [], recordedVolumes: [], recordedMounts: new Map(), changedPaths: new Set() };
  const outcome = await runSteps({
    steps: isRawSource(plan.source) ? rawDeploySteps : deploySteps,
    context: ctx,
    events: options.events,
    signal: options.signal,
    finish: (c, durationMs) => ({
      type: 'deployed' as const,
      disk: c.diskShown,
      hostname: c.hostname ?? null,
      machineId: c.machineId ?? null,
      partitions: (c.applied ?? []).map((p) => ({ number: p.number, name: p.name, fsType: p.fsType ?? null, uuid: p.uuid ?? null, mount: p.mount ?? null })),
      durationMs,
      after: c.plan.after,
    }),
    logDestination: (c) => {
      const share = c.share;
      if (!c.plan.logs || !share?.root || share.location.kind === 'media' || share.location.kind === 'http') return undefined;
      return { dir: share.root, name: c.hostname ?? basename(c.diskShown || 'deploy'), shown: `to ${c.plan.source.url}/logs` };
    },
  });
  return {
    disk: ctx.diskShown,
    device: ctx.device!,
    hostname: ctx.hostname,
    machineId: ctx.machineId,
    partitions: ctx.applied ?? [],
    bootloader: ctx.grub,
    logFile: outcome.logFile,
    durationMs: outcome.durationMs,
  };
}
