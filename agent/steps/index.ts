/**
 * The step engine: a run (a deploy, a capture) is a list of named steps over one context, run by
 * one runner that owns the events, the cleanup stack, the log and progress throttling.
 */
export { defineStep, skipped, stepNames, stepTitles, type Skipped, type Step, type StepEnd, type StepIO } from './step.js';
export { runSteps, need, type LogDestination, type RunnerEventBody, type RunOutcome, type RunSpec } from './runner.js';
export { CleanupStack, type Releaser, type Resource, type ResourceOptions } from './cleanup.js';
export { RunLog, logName } from './run-log.js';
export { attachDisk, holdShare, holdVolumeGroups, mountOn, mountScratch, openDisk, removeEmptyDirs, scratchDir } from './resources.js';
