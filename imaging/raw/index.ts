/**
 * Writing a raw disk image (raw, zst, xz, gz or qcow2; from a file or over HTTP) to a disk,
 * sparse-aware (zero blocks and bmap-unmapped ranges are not written) and verified window by
 * window: the core of "deploy a raw image". docs/raw.md says why each rule is there.
 */
export { rawFormatOf, bmapCandidates, type RawFormat } from './format.js';
export { parseBmap, spansOf, mappedBytes, type Bmap, type Span } from './bmap.js';
export { probeRawImage, parseZstdList, parseXzRobot, zstdFrameContentSize, xzFooterIndexBytes, xzIndexContentSize, type RawProbe, type ProbeRawOptions } from './probe.js';
export { writeRawImage, DEFAULT_REWRITE_ATTEMPTS, type WriteRawOptions, type WriteRawResult } from './write.js';
export { piecesOf, isZero, RangeChecker, RAW_BLOCK_BYTES, RAW_WINDOW_BYTES, type Piece } from './plan.js';
export type { RawSource } from './source.js';
export * from './capture.js';
