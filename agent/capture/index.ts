export * from './capture.js';
export type { CaptureContext, CaptureRunOptions, CaptureRunResult } from './context.js';
export * from './record-layout.js';
export { chooseSource, describeCandidate, existsInside, holdsOperatingSystem, type SourceCandidate } from './find-root.js';
export { captureSteps, CAPTURE_STEPS } from './steps/index.js';
