export * from './wim.js';
export * from './info.js';
export * from './dir.js';
export { parseProgressLine, type WimlibProgress } from './progress.js';
export { measureTree, type TreeSize } from './source-size.js';
export * from './generalize.js';
export * from './properties.js';
