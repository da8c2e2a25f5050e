import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimConsole, CLAIM_PROMPT } from './claim.js';
import { LineEditor } from './line-editor.js';
import { ConsoleClosedError, progressStyleOf, streamTerminal, type Terminal } from './terminal.js';

describe('LineEditor', () => {
  const feed = (input: string, secret = false) => {
    let echo = '';
    const ed = new LineEditor((t) => (echo += t));
    const lines: string[] = [];
    let rest = input;
    for (;;) {
      const { line, used } = ed.take(rest, secret);
      rest = rest.slice(used);
      if (line === undefined) break;
      lines.push(line);
    }
    return { lines, echo };
  };

  it('ends a line at CR, LF or CR LF alike', () => {
    expect(feed('a\rb\nc\r\nd\r').lines).toEqual(['a', 'b', 'c', 'd']);
    expect(feed('\r\n\r\n').lines).toEqual(['', '']);
  });

  it('echoes, erases with Backspace or Delete, and clears the line with Ctrl-U', () => {
    const { lines, echo } = feed('abx\x7fc\bd\r');
    expect(lines).toEqual(['abd']);
    expect(echo).toBe('abx\b \bc\b \bd\r\n');
    expect(feed('junk\x15ok\r').lines).toEqual(['ok']);
  });

  it('drops escape sequences (arrow and function keys) and control characters', () => {
    expect(feed('a\x1b[A\x1b[15~\x1bOPb\x07\tc\r').lines).toEqual(['abc']);
  });

  it('echoes nothing of a secret but the line end', () => {
    const { lines, echo } = feed('s3cr\x7fet\r', true);
    expect(lines).toEqual(['s3cet']);
    expect(echo).toBe('\r\n');
  });

  it('keeps a CR LF split across reads as one line end', () => {
    const ed = new LineEditor(undefined);
    expect(ed.take('x\r').line).toBe('x');
    expect(ed.take('\ny\r')).toEqual({ line: 'y', used: 3 });
  });
});

describe('streamTerminal over a socket', () => {
  let dir: string;
  let server: Server;
  let serverSide: Socket;
  let technician: Socket;
  let fromProgram = '';

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imagepe-console-'));
    const path = join(dir, 'sock');
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer(resolve);
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    technician = createConnection(path);
    serverSide = await accepted;
    fromProgram = '';
    technician.on('data', (d) => (fromProgram += d.toString()));
  });

  afterEach(async () => {
    technician.destroy();
    serverSide.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const waitFor = async (text: string) => {
    for (let i = 0; i < 200 && !fromProgram.includes(text); i++) await new Promise((r) => setTimeout(r, 10));
    expect(fromProgram).toContain(text);
  };

  it('writes \\n as \\r\\n and reads lines ending in CR or LF, typed ahead or in pieces', async () => {
    const term = streamTerminal({ name: 'sock', input: serverSide, output: serverSide, echo: true });
    term.write('Question: ');
    technician.write('fir');
    technician.write('st\rsecond\n');
    await expect(term.readLine()).resolves.toBe('first');
    await expect(term.readLine()).resolves.toBe('second');
    term.write('done\n');
    await waitFor('done\r\n');
    expect(fromProgram).toBe('Question: first\r\nsecond\r\ndone\r\n');
    term.close();
  });

  it('does not echo a secret', async () => {
    const term = streamTerminal({ name: 'sock', input: serverSide, output: serverSide, echo: true });
    const secret = term.readSecret('Password: ');
    await waitFor('Password: ');
    technician.write('hunter2\r');
    await expect(secret).resolves.toBe('hunter2');
    term.write('ok\n');
    await waitFor('ok');
    expect(fromProgram).not.toContain('hunter2');
    term.close();
  });

  it('fails a read when the other end goes away, when closed, or when the signal aborts', async () => {
    const term = streamTerminal({ name: 'sock', input: serverSide, output: serverSide });
    const stop = new AbortController();
    const aborted = term.readLine({ signal: stop.signal });
    stop.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'CANCELLED' });
    const pending = term.readLine();
    technician.end('unfinished');
    await expect(pending).rejects.toBeInstanceOf(ConsoleClosedError);
    term.close();
    await expect(term.readLine()).rejects.toBeInstanceOf(ConsoleClosedError);
  });

  it('takes the console where Enter is pressed first, and releases the others', async () => {
    const quiet = new ScriptlessTerminal('/dev/tty1');
    const sock = streamTerminal({ name: '/dev/ttyS0', input: serverSide, output: serverSide });
    const claimed = claimConsole(['/dev/tty1', '/dev/ttyS0', '/dev/missing'], {
      open: (p) => {
        if (p === '/dev/missing') throw new Error('no such device');
        return p === '/dev/tty1' ? quiet : sock;
      },
    });
    await waitFor(`${CLAIM_PROMPT} (/dev/ttyS0)`);
    technician.write('\r');
    await expect(claimed).resolves.toBe(sock);
    expect(quiet.output).toContain(`${CLAIM_PROMPT} (/dev/tty1)`);
    expect(quiet.output).toContain('The technician is on /dev/ttyS0; this console is released.');
    expect(quiet.closed).toBe(true);
    sock.close();
  });

  it('still asks for Enter with a single console, so a harness knows when the agent listens', async () => {
    const sock = streamTerminal({ name: '/dev/ttyS0', input: serverSide, output: serverSide });
    const claimed = claimConsole(['/dev/ttyS0'], { open: () => sock });
    await waitFor(`${CLAIM_PROMPT} (/dev/ttyS0)\r\n`);
    technician.write('\n');
    await expect(claimed).resolves.toBe(sock);
    sock.close();
  });
});

describe('claimConsole', () => {
  it('says which consoles could not be opened when none could', async () => {
    await expect(
      claimConsole(['/dev/ttyS0', '/dev/tty1'], {
        open: (p) => {
          throw new Error(`${p} is gone`);
        },
      }),
    ).rejects.toThrow(/\/dev\/ttyS0 is gone[\s\S]*\/dev\/tty1 is gone/);
  });
});

it('redraws progress on text consoles and prints lines elsewhere', () => {
  expect(progressStyleOf('/dev/tty1')).toBe('redraw');
  expect(progressStyleOf('/dev/ttyS0')).toBe('lines');
  expect(progressStyleOf('/dev/hvc0')).toBe('lines');
});

/** A console nobody types on: reads wait until aborted or closed. */
class ScriptlessTerminal implements Terminal {
  output = '';
  closed = false;
  readonly progress = 'redraw' as const;
  private rejectRead: ((e: Error) => void) | undefined;
  constructor(readonly name: string) {}
  write(text: string): void {
    this.output += text;
  }
  readLine(options?: { signal?: AbortSignal }): Promise<string> {
    return new Promise((_, reject) => {
      this.rejectRead = reject;
      options?.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
  }
  readSecret(): Promise<string> {
    return this.readLine();
  }
  close(): void {
    this.closed = true;
    this.rejectRead?.(new ConsoleClosedError(this.name));
  }
}
