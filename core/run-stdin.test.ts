import { createHash, randomBytes, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CommandFailedError } from './errors.js';
import { run } from './run.js';

const CHUNK = 64 * 1024;

type Source = Readable & { produced: number; hash: Hash };

/** A stream of `chunks` chunks of random bytes (endless when chunks is Infinity), counting and hashing what it produced. */
function source(chunks: number, failAfter?: number): Source {
  let n = 0;
  const stream = new Readable({
    read() {
      if (failAfter !== undefined && n === failAfter) return this.destroy(new Error('connection reset by peer'));
      if (n === chunks) return this.push(null);
      const chunk = randomBytes(CHUNK);
      n++;
      stream.produced += CHUNK;
      stream.hash.update(chunk);
      this.push(chunk);
    },
  }) as Source;
  stream.produced = 0;
  stream.hash = createHash('sha256');
  return stream;
}

describe('run with a stream on standard input', () => {
  it('passes every byte of the stream to the program', async () => {
    const input = source(512);
    const r = await run('sha256sum', [], { stdin: input });
    expect(input.produced).toBe(512 * CHUNK);
    expect(r.stdout.split(' ')[0]).toBe(input.hash.digest('hex'));
  });

  it('reads the stream only as fast as the program takes it, and leaves what it did not take readable', async () => {
    const endless = source(Infinity);
    const r = await run('sh', ['-c', 'sleep 0.5; head -c 10 | od -An -tx1'], { stdin: endless });
    expect(r.stdout.trim().split(/\s+/)).toHaveLength(10);
    // Pipe buffers and stream high-water marks hold a few hundred KiB, not the endless stream.
    expect(endless.produced).toBeLessThan(8 * 1024 * 1024);
    const more = (await endless[Symbol.asyncIterator]().next()).value as Buffer;
    expect(more.length).toBeGreaterThan(0);
  });

  it('fails with the stream error as its cause when the stream breaks midway, even if the program exits 0 on the early end of file', async () => {
    const err = await run('sha256sum', [], { stdin: source(128, 16), what: 'hashing the download' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    const failure = err as CommandFailedError;
    expect((failure.cause as Error).message).toBe('connection reset by peer');
    expect(failure.message).toMatch(/^hashing the download: its input stream failed \(connection reset by peer\)/);
  });

  it('stops a program that does not read its input once the stream has broken', async () => {
    const started = Date.now();
    const err = await run('sleep', ['30'], { stdin: source(128, 1) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect((err as CommandFailedError).signal).toBe('SIGTERM');
    expect(((err as CommandFailedError).cause as Error).message).toBe('connection reset by peer');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('refuses both input and stdin at once', async () => {
    await expect(run('cat', [], { input: 'x', stdin: source(1) })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
