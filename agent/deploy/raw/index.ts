import { planStep } from '../steps/plan.js';
import { diskStep } from '../steps/disk.js';
import { shareStep } from '../steps/share.js';
import { specializeStep } from '../steps/specialize.js';
import { rawCheckStep } from './check.js';
import { growStep } from './grow.js';
import { rawSystemStep } from './system.js';
import { rawVerifyStep } from './verify.js';
import { rawWriteStep } from './write.js';

/**
 * A raw image's deploy, in order: the same plan, disk, share and specialize steps as a WIM's,
 * with the image written whole in place of partition, format and apply, then grown to the disk,
 * and the system it holds found and mounted as its own fstab says. The image keeps its boot
 * loader, initramfs and filesystem UUIDs (nothing is remapped, so nothing needs rebuilding).
 */
export const rawDeploySteps = [planStep, diskStep, shareStep, rawCheckStep, rawWriteStep, growStep, rawSystemStep, specializeStep, rawVerifyStep] as const;
