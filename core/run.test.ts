import { CancelledError, CommandFailedError, CommandTimeoutError, ToolMissingError } from './errors.js';
import { run, tail } from './run.js';

describe('run', () => {
  it('returns stdout and the exit status of a program that succeeds', async () => {
    const r = await run('echo', ['hello', 'world']);
    expect(r.stdout).toBe('hello world\n');
    expect(r.exitCode).toBe(0);
  });

  it('passes arguments verbatim, never through a shell', async () => {
    const r = await run('echo', ['$(id)', '; rm -rf /', '`x`']);
    expect(r.stdout).toBe('$(id) ; rm -rf / `x`\n');
  });

  it('names the command, the exit status and the tail of stderr when a program fails', async () => {
    const err = await run('sh', ['-c', 'echo first >&2; echo "disk is full" >&2; exit 3'], { what: 'writing the table' }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect(err.exitCode).toBe(3);
    expect(err.stderrTail).toBe('first\ndisk is full');
    expect(err.message).toMatch(/^writing the table: sh -c .* exited with status 3/);
    expect(err.message).toContain('disk is full');
  });

  it('accepts the exit statuses it is told are fine', async () => {
    const r = await run('sh', ['-c', 'exit 1'], { okExitCodes: [0, 1] });
    expect(r.exitCode).toBe(1);
  });

  it('says which Debian package to install when a tool is missing', async () => {
    const err = await run('wimlib-imagex-not-here', []).catch((e) => e);
    expect(err).toBeInstanceOf(ToolMissingError);
    expect(err.code).toBe('TOOL_MISSING');
  });

  it('names the package of a known tool', () => {
    const err = new ToolMissingError('wimlib-imagex', 'wimtools');
    expect(err.hint).toContain('apt-get install wimtools');
  });

  it('stops a program that runs past its timeout', async () => {
    const started = Date.now();
    const err = await run('sleep', ['30'], { timeoutMs: 300 }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('stops a program that prints nothing for longer than the idle timeout, but not one that keeps talking', async () => {
    const idle = await run('sh', ['-c', 'echo start; sleep 30'], { idleTimeoutMs: 400 }).catch((e) => e);
    expect(idle).toBeInstanceOf(CommandTimeoutError);
    expect(idle.message).toContain('printed nothing for');
    const chatty = await run('sh', ['-c', 'for i in 1 2 3 4 5 6; do echo $i; sleep 0.1; done'], { idleTimeoutMs: 400 });
    expect(chatty.stdout.split('\n').filter(Boolean)).toHaveLength(6);
  });

  it('is cancelled by an AbortSignal', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const err = await run('sleep', ['30'], { signal: ac.signal }).catch((e) => e);
    expect(err).toBeInstanceOf(CancelledError);
  });

  it('delivers lines split on \\r and \\n as they arrive', async () => {
    const lines: string[] = [];
    await run('printf', ['a: 1 of 2\\ra: 2 of 2\\nnext\\n'], { onStdoutLine: (l) => lines.push(l) });
    expect(lines).toEqual(['a: 1 of 2', 'a: 2 of 2', 'next']);
  });
});

describe('tail', () => {
  it('keeps the last lines and only the final redraw of a progress meter', () => {
    expect(tail('one\ntwo\r\nx 10%\rx 50%\rx 100%\n\n', 2)).toBe('two\nx 100%');
  });
});
