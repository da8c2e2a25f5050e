/**
 * One error hierarchy for the whole toolkit. Every error carries a stable `code` (the CLI maps
 * codes to exit statuses and `--json` prints them) and a `hint` that tells the user what to do.
 */
export type ErrorCode =
  | 'TOOL_MISSING'
  | 'COMMAND_FAILED'
  | 'COMMAND_TIMEOUT'
  | 'CANCELLED'
  | 'INVALID_INPUT'
  | 'NOT_FOUND'
  | 'TARGET_NOT_EMPTY'
  | 'NO_SPACE'
  | 'WIM_CORRUPT'
  | 'IMAGE_NOT_FOUND'
  | 'NOT_MOUNTED'
  | 'REFUSED'
  | 'LAYOUT_INVALID'
  | 'DISK_IN_USE'
  | 'VERIFY_FAILED'
  | 'UNSUPPORTED';

export interface ImagepeErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class ImagepeError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: ImagepeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }

  /** Message and hint together, as the CLI shows them. */
  describe(): string {
    return this.hint ? `${this.message}\n${this.hint}` : this.message;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, hint: this.hint };
  }
}

export class ToolMissingError extends ImagepeError {
  constructor(
    readonly tool: string,
    readonly debianPackage: string | undefined,
  ) {
    super('TOOL_MISSING', `${tool} was not found on PATH`, {
      hint: debianPackage
        ? `Install it with: apt-get install ${debianPackage} (or run scripts/setup as root)`
        : 'Install it and make sure it is on PATH',
    });
  }
}

export interface CommandFailure {
  command: string;
  args: readonly string[];
  exitCode: number | undefined;
  signal: string | undefined;
  stderrTail: string;
}

export class CommandFailedError extends ImagepeError implements CommandFailure {
  readonly command: string;
  readonly args: readonly string[];
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly stderrTail: string;

  constructor(failure: CommandFailure, what?: string, options: ImagepeErrorOptions = {}) {
    const how = failure.signal ? `was killed by ${failure.signal}` : `exited with status ${failure.exitCode}`;
    const head = what ? `${what}: ` : '';
    const tail = failure.stderrTail ? `\n${indent(failure.stderrTail)}` : '';
    super('COMMAND_FAILED', `${head}${failure.command} ${how}${tail}`, options);
    this.command = failure.command;
    this.args = failure.args;
    this.exitCode = failure.exitCode;
    this.signal = failure.signal;
    this.stderrTail = failure.stderrTail;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), command: this.command, args: this.args, exitCode: this.exitCode, signal: this.signal, stderrTail: this.stderrTail };
  }
}

export class CommandTimeoutError extends ImagepeError {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
    readonly stderrTail: string,
    how = 'did not finish within',
  ) {
    super('COMMAND_TIMEOUT', `${command} ${how} ${Math.round(timeoutMs / 1000)} s and was stopped${stderrTail ? `\n${indent(stderrTail)}` : ''}`, {
      hint: 'Check that the device or share it works on responds; raise the timeout if the job is simply large.',
    });
  }
}

export class CancelledError extends ImagepeError {
  constructor(what: string) {
    super('CANCELLED', `${what} was cancelled`);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n');
}

export function isImagepeError(e: unknown): e is ImagepeError {
  return e instanceof ImagepeError;
}

/** The stderr tail of the failing command behind an error, looking through causes (wimlib errors wrap it); "" when no command failed. */
export function stderrTailOf(e: unknown): string {
  for (let cur: unknown = e, i = 0; cur && i < 5; cur = (cur as { cause?: unknown }).cause, i++) {
    if (cur instanceof CommandFailedError || cur instanceof CommandTimeoutError) return cur.stderrTail;
  }
  return '';
}
