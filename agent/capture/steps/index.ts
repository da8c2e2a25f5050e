import { stepNames } from '../../steps/index.js';
import { captureStep } from './capture.js';
import { diskStep } from './disk.js';
import { generalizeStep } from './generalize.js';
import { planStep } from './plan.js';
import { shareStep } from './share.js';
import { sourceStep } from './source.js';
import { verifyStep } from './verify.js';

/**
 * A capture, in order. The reference is only read until generalize, and generalize comes after
 * the share has proved writable. The names are part of the event schema (agent/events).
 */
export const captureSteps = [planStep, diskStep, sourceStep, shareStep, generalizeStep, captureStep, verifyStep] as const;

export const CAPTURE_STEPS = stepNames(captureSteps);
