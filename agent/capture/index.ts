export * from './capture.js';
export * from './record-layout.js';
export { chooseSource, describeCandidate, existsInside, holdsOperatingSystem, type SourceCandidate } from './find-root.js';
