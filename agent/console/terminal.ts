import { closeSync, constants, openSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { isatty, ReadStream, WriteStream } from 'node:tty';
import type { Readable, Writable } from 'node:stream';
import { CancelledError, ImagepeError } from '../../core/index.js';
import { LineEditor } from './line-editor.js';

/**
 * A console the technician answers on: a text console, a serial line, or anything else that
 * carries characters both ways.
 */
export interface Terminal {
  readonly name: string;
  /**
   * How progress is shown: 'redraw' overwrites one line with \r on a screen; 'lines' prints a
   * line now and then with \n and no escape sequences, so a serial log stays readable.
   */
  readonly progress: 'redraw' | 'lines';
  /** "\n" goes out as "\r\n". */
  write(text: string): void;
  /** The next line typed, without its line end. */
  readLine(options?: { signal?: AbortSignal }): Promise<string>;
  /** Writes the prompt and reads a line without echoing it. */
  readSecret(prompt: string): Promise<string>;
  close(): void;
}

/** The console went away (hang-up, end of input) or was closed while a line was awaited. */
export class ConsoleClosedError extends ImagepeError {
  constructor(name: string) {
    super('CANCELLED', `the console ${name} was closed`);
  }
}

export interface StreamTerminalOptions {
  name: string;
  input: Readable;
  output: Writable;
  progress?: 'redraw' | 'lines';
  /**
   * Echo what is typed: on a tty in raw mode nothing else does. Off where the other end shows
   * its own typing (a pipe or socket driven by a program).
   */
  echo?: boolean;
  /** Releases what the terminal was made from; called once by close(). */
  onClose?: () => void;
}

interface Reader {
  secret: boolean;
  resolve: (line: string) => void;
  reject: (e: Error) => void;
  done: () => void;
}

/**
 * A Terminal over a pair of streams. Input is read only while a line is awaited, and only up to
 * the end of that line: what is typed ahead waits (in the kernel's buffer, or here) and is
 * echoed when its question comes, not in the middle of progress output.
 */
export function streamTerminal(options: StreamTerminalOptions): Terminal {
  const { name, input, output } = options;
  const editor = new LineEditor(options.echo ? (text) => send(text) : undefined);
  const decoder = new StringDecoder('utf8');
  let raw = '';
  let ended = false;
  let closed = false;
  let reader: Reader | undefined;

  const send = (text: string) => {
    if (!closed && !output.destroyed) output.write(text.replace(/\r?\n/g, '\r\n'));
  };
  const pump = () => {
    if (!reader) {
      input.pause();
      return;
    }
    const { line, used } = editor.take(raw, reader.secret);
    raw = raw.slice(used);
    if (line !== undefined) {
      const r = reader;
      r.done();
      input.pause();
      r.resolve(line);
    } else if (ended) {
      const r = reader;
      r.done();
      r.reject(new ConsoleClosedError(name));
    } else input.resume();
  };
  const onData = (chunk: Buffer | string) => {
    raw += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    pump();
  };
  const onEnd = () => {
    ended = true;
    pump();
  };
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('close', onEnd);
  // A hang-up on a serial line shows as EIO; it ends the console like end of input.
  input.on('error', onEnd);
  input.pause();

  const read = (secret: boolean, signal: AbortSignal | undefined) =>
    new Promise<string>((resolve, reject) => {
      if (closed || ended) return reject(new ConsoleClosedError(name));
      if (reader) return reject(new ImagepeError('REFUSED', `${name} is already waiting for a line`));
      if (signal?.aborted) return reject(new CancelledError(`waiting for input on ${name}`));
      const onAbort = () => {
        reader = undefined;
        input.pause();
        reject(new CancelledError(`waiting for input on ${name}`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      reader = {
        secret,
        resolve,
        reject,
        done: () => {
          reader = undefined;
          signal?.removeEventListener('abort', onAbort);
        },
      };
      pump();
    });

  return {
    name,
    progress: options.progress ?? 'lines',
    write: send,
    readLine: (opts) => read(false, opts?.signal),
    readSecret: (prompt) => {
      send(prompt);
      return read(true, undefined);
    },
    close: () => {
      if (closed) return;
      closed = true;
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('close', onEnd);
      input.pause();
      const r = reader;
      r?.done();
      r?.reject(new ConsoleClosedError(name));
      options.onClose?.();
    },
  };
}

/** Text consoles (/dev/tty1) redraw progress in place; anything else is taken for a serial line. */
export function progressStyleOf(path: string): 'redraw' | 'lines' {
  return /^\/dev\/tty\d+$/.test(path) ? 'redraw' : 'lines';
}

/**
 * Opens a console device (/dev/tty1, /dev/ttyS0) for a conversation, in raw mode so Enter
 * arrives as CR or LF alike whatever the line settings, and this program echoes. The line
 * speed is left as the kernel set it (console=ttyS0,115200). Reading and writing use separate
 * opens: the reader switches its file to non-blocking mode, the writer must stay blocking.
 */
export function openTerminal(path: string, options: { progress?: 'redraw' | 'lines' } = {}): Terminal {
  const flags = constants.O_NOCTTY;
  let fdIn: number;
  let fdOut: number;
  try {
    fdIn = openSync(path, constants.O_RDWR | flags);
  } catch (e) {
    throw new ImagepeError('NOT_FOUND', `the console ${path} cannot be opened: ${(e as Error).message}`);
  }
  try {
    fdOut = openSync(path, constants.O_WRONLY | flags);
  } catch (e) {
    closeSync(fdIn);
    throw new ImagepeError('NOT_FOUND', `the console ${path} cannot be opened for writing: ${(e as Error).message}`);
  }
  if (!isatty(fdIn)) {
    closeSync(fdIn);
    closeSync(fdOut);
    throw new ImagepeError('INVALID_INPUT', `${path} is not a terminal`);
  }
  const input = new ReadStream(fdIn);
  input.setRawMode(true);
  const output = new WriteStream(fdOut);
  return streamTerminal({
    name: path,
    input,
    output,
    echo: true,
    progress: options.progress ?? progressStyleOf(path),
    onClose: () => {
      try {
        input.setRawMode(false);
      } catch {
        // A console that hung up has no mode to restore.
      }
      input.destroy();
      output.destroy();
    },
  });
}
