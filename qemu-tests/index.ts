export * from './accel.js';
export * from './args.js';
export * from './qmp.js';
export * from './vm.js';
