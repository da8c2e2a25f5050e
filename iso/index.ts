export * from './grub.js';
export * from './esp.js';
export * from './xorriso.js';
