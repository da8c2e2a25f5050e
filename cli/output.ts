import { isImagepeError, type ImagepeError, type ErrorCode } from '../core/index.js';

/** Exit statuses by error code, so scripts can tell "fix your input" from "the tool broke". */
const EXIT_STATUS: Record<ErrorCode, number> = {
  INVALID_INPUT: 2,
  LAYOUT_INVALID: 2,
  NOT_FOUND: 3,
  IMAGE_NOT_FOUND: 3,
  NOT_MOUNTED: 3,
  TARGET_NOT_EMPTY: 4,
  REFUSED: 4,
  DISK_IN_USE: 4,
  UNSUPPORTED: 4,
  NO_SPACE: 5,
  WIM_CORRUPT: 6,
  VERIFY_FAILED: 6,
  TOOL_MISSING: 7,
  COMMAND_FAILED: 8,
  COMMAND_TIMEOUT: 9,
  CANCELLED: 130,
};

export function exitStatusFor(error: unknown): number {
  return isImagepeError(error) ? EXIT_STATUS[error.code] : 1;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function printError(error: unknown, json: boolean): void {
  if (json) {
    const body = isImagepeError(error)
      ? (error as ImagepeError).toJSON()
      : { name: 'Error', code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
    process.stdout.write(`${JSON.stringify({ type: 'error', ...body })}\n`);
    return;
  }
  if (isImagepeError(error)) {
    process.stderr.write(`imagepe: ${error.message}\n`);
    if (error.hint) process.stderr.write(`  ${error.hint}\n`);
  } else {
    process.stderr.write(`imagepe: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
}
