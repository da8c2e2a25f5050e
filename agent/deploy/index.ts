export * from './deploy.js';
export * from './events.js';
export * from './check.js';
export { DeployLog } from './log.js';
