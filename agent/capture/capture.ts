import { dirname } from 'node:path';
import type { CapturePlan } from '../plan/index.js';
import { logName, need, runSteps } from '../steps/index.js';
import type { CaptureContext, CaptureRunOptions, CaptureRunResult } from './context.js';
import { captureSteps } from './steps/index.js';

/**
 * Captures a reference machine's partition into a WIM on a share: the steps of ./steps run in
 * order by the step runner (agent/steps). Nothing is written to the reference disk before the
 * share has proved writable; a new WIM appears under its name only after wimlib has verified it.
 *
 * Throws what the failing step threw: REFUSED (the boot medium, a destination that exists or
 * cannot be written), NOT_FOUND (no disk, no operating system found), DISK_IN_USE (a mounted
 * reference), VERIFY_FAILED, CANCELLED, COMMAND_FAILED with the command's stderr tail.
 */
export async function capture(plan: CapturePlan, options: CaptureRunOptions = {}): Promise<CaptureRunResult> {
  const dest = plan.destination;
  const ctx: CaptureContext = { plan, options, diskShown: options.disk ?? (plan.source.disk && 'path' in plan.source.disk ? plan.source.disk.path : ''), systemMounts: [], volumeGroups: [] };
  const outcome = await runSteps({
    steps: captureSteps,
    context: ctx,
    events: options.events,
    signal: options.signal,
    finish: (c, durationMs) => ({ type: 'captured' as const, wim: dest.file, index: need(c.index, 'the image index'), name: dest.name, sizeBytes: need(c.sizeBytes, 'the WIM size'), durationMs, after: plan.after }),
    logDestination: (c) => (plan.logs && c.wimPath ? { dir: dirname(c.wimPath), name: `capture-${logName(dest.name)}`, shown: `beside ${dest.file}` } : undefined),
  });
  return {
    wim: dest.file,
    index: ctx.index!,
    name: dest.name,
    sizeBytes: ctx.sizeBytes!,
    imageBytes: ctx.image!.totalBytes,
    durationMs: outcome.durationMs,
    layout: ctx.recorded,
    logFile: outcome.logFile,
  };
}
