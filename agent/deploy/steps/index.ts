import { stepNames } from '../../steps/index.js';
import { rawDeploySteps } from '../raw/index.js';
import { applyStep } from './apply.js';
import { bootloaderStep } from './bootloader.js';
import { checkStep } from './check.js';
import { diskStep } from './disk.js';
import { formatStep } from './format.js';
import { initramfsStep } from './initramfs.js';
import { partitionStep } from './partition.js';
import { planStep } from './plan.js';
import { remapStep } from './remap.js';
import { shareStep } from './share.js';
import { specializeStep } from './specialize.js';
import { verifyStep } from './verify.js';

/**
 * A deploy, in order. Nothing is written before partition: every refusal (the disk, the share,
 * the image) comes first. The names are part of the event schema (agent/events).
 */
export const deploySteps = [planStep, diskStep, shareStep, checkStep, partitionStep, formatStep, applyStep, remapStep, specializeStep, initramfsStep, bootloaderStep, verifyStep] as const;

/** Every step name a deploy's events may carry: a WIM deploy's, then those only a raw image's deploy has (write, grow, system). */
export const DEPLOY_STEPS = [...new Set([...stepNames(deploySteps), ...stepNames(rawDeploySteps)])] as [DeployStepName, ...DeployStepName[]];
type DeployStepName = (typeof deploySteps)[number]['name'] | (typeof rawDeploySteps)[number]['name'];
