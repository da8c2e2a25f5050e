export * from './schema.js';
export * from './hostname.js';
export * from './locate.js';
