export * from './accel.js';
export * from './args.js';
export * from './qmp.js';
export * from './runtime.js';
export * from './vm.js';
