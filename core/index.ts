export * from './errors.js';
export * from './units.js';
export * from './run.js';
export * from './tools.js';
export * from './events.js';
export * from './space.js';
export * from './fs.js';
export * from './mounts.js';
