export * from './schema.js';
export * from './hostname.js';
export * from './locate.js';
export * from './capture-schema.js';
export * from './any-plan.js';
