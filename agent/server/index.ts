export * from './machine.js';
export * from './plans.js';
export * from './poster.js';
export * from './first-boot.js';
