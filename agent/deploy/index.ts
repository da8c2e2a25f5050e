export * from './deploy.js';
export type { DeployContext, DeployOptions, DeployResult, DiskSummary } from './context.js';
export { assertSha256, download, sha256File, type HashOptions } from './hash.js';
export { DEPLOYED_MARKER, IN_PROGRESS_MARKER } from './markers.js';
export { deploySteps, DEPLOY_STEPS } from './steps/index.js';
