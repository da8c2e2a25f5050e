import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, chown, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import send from 'send';
import { run, type ImagepeEvent, type ProgressEvent } from '../core/index.js';
import { removeDir, snapshotTree, sparseFile, tempDir } from '../test-support/tree.js';
import * as wim from './index.js';

// A pipable WIM applied from a stream read once (a file stream, a broken stream, an HTTP body)
// must give the same tree as apply() from the file, or fail and leave the target as it was.
let work: string;
let src: string;
let pipable: string;
let normal: string;
let size: number;
let sha256: string;
let n = 0;
const target = () => join(work, `t${++n}`);

beforeAll(async () => {
  work = await tempDir('streamapply');
  src = join(work, 'src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc/hostname'), 'reference\n');
  await run('setfattr', ['-n', 'user.origin', '-v', 'reference', join(src, 'etc/hostname')]);
  await writeFile(join(src, 'secret'), 'top secret\n');
  await chown(join(src, 'secret'), 1234, 1234);
  await chmod(join(src, 'secret'), 0o600);
  await symlink('etc/hostname', join(src, 'hostname.link'));
  // 4 MiB that does not compress, so cutting the stream at a fraction lands inside file data.
  const random = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < random.length; i += 4) random.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
  await writeFile(join(src, 'data.bin'), random);
  pipable = join(work, 'p.wim');
  await wim.capture(src, pipable, { name: 'first', compression: 'xpress', pipable: true });
  await writeFile(join(src, 'added.txt'), 'only in the second image\n');
  await wim.append(src, pipable, { name: 'second' });
  normal = join(work, 'n.wim');
  await wim.exportImage(pipable, 'all', normal, { compression: 'xpress' });
  const bytes = await readFile(pipable);
  size = bytes.length;
  sha256 = createHash('sha256').update(bytes).digest('hex');
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  await removeDir(work);
});

describe('applyStream', () => {
  it.each([1, 2])('gives image %i the same tree apply() gives from the file: bytes, modes, owners, symlinks, xattrs', async (index) => {
    const streamed = target();
    const r = await wim.applyStream(createReadStream(pipable), index, streamed);
    const fromFile = target();
    await wim.apply(pipable, index, fromFile);
    const tree = await snapshotTree(streamed);
    expect(tree).toEqual(await snapshotTree(fromFile));
    expect(tree['secret']).toMatchObject({ type: 'file', mode: 0o600, uid: 1234, gid: 1234, sha256: sha256Of('top secret\n') });
    expect(tree['hostname.link']).toMatchObject({ type: 'symlink', target: 'etc/hostname' });
    expect(tree['etc/hostname']!.xattrs).toEqual({ 'user.origin': '0x7265666572656e6365' });
    expect(tree['data.bin']!.sha256).toBe(sha256Of(await readFile(join(src, 'data.bin'))));
    expect('added.txt' in tree).toBe(index === 2);
    expect(r).toMatchObject({ image: (await wim.info(pipable)).images[index - 1], target: streamed, targetKind: 'directory' });
  });

  it('reads the stream to its end even when wimlib stops early, so bytes and sha256 are those of the whole file', async () => {
    const r = await wim.applyStream(createReadStream(pipable), 1, target(), { expectedSha256: sha256.toUpperCase(), totalBytes: size });
    expect(r).toMatchObject({ bytes: size, sha256 });
  });

  it('chooses the image by name, as apply() does, and lists the images when there is no such one', async () => {
    expect((await wim.applyStream(createReadStream(pipable), 'second', target())).image.index).toBe(2);
    const t = target();
    await expect(wim.applyStream(createReadStream(pipable), 'third', t)).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND', message: expect.stringContaining('1 "first", 2 "second"') });
    await expect(stat(t)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fails VERIFY_FAILED, naming both hashes, when the stream is not the one the sha256 was made for, and empties the target', async () => {
    const t = target();
    const wrong = 'ab'.repeat(32);
    const events: ImagepeEvent[] = [];
    const err = await wim.applyStream(createReadStream(pipable), 1, t, { expectedSha256: wrong, events: (e) => events.push(e) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VERIFY_FAILED', message: expect.stringContaining(`sha256 ${sha256}, not the expected ${wrong}`) });
    expect(await readdir(t)).toEqual([]);
    expect(events).toContainEqual(expect.objectContaining({ type: 'message', level: 'warning', text: expect.stringContaining('was removed') }));
  });

  it('refuses an expected sha256 that is not one before reading anything', async () => {
    const stream = createReadStream(pipable);
    await expect(wim.applyStream(stream, 1, target(), { expectedSha256: 'abc' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect(stream.destroyed).toBe(true);
  });

  it.each([0.5, 0.99])('fails WIM_CORRUPT saying the stream ended early when it is cut at %p of the file, and empties the target', async (fraction) => {
    const cut = Math.floor(size * fraction);
    const t = target();
    const err = await wim.applyStream(createReadStream(pipable, { end: cut - 1 }), 2, t).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'WIM_CORRUPT', message: expect.stringContaining(`ended after ${cut} bytes, before the last file of image 2`) });
    expect(await readdir(t)).toEqual([]);
  });

  it('fails when the stream ends after the image but short of totalBytes, saying by how much', async () => {
    const t = target();
    const err = await wim.applyStream(createReadStream(pipable, { end: size - 101 }), 2, t, { totalBytes: size }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VERIFY_FAILED', message: expect.stringContaining(`was ${size - 100} bytes long, not the ${size} expected`) });
    expect(await readdir(t)).toEqual([]);
  });

  it('refuses a WIM that is not pipable, and data that is no WIM, before touching the target', async () => {
    const t = target();
    await expect(wim.applyStream(createReadStream(normal), 1, t)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('not a pipable WIM'), hint: expect.stringContaining('--pipable') });
    await expect(wim.applyStream(Readable.from([Buffer.from('hello\n')]), 1, t)).rejects.toMatchObject({ code: 'WIM_CORRUPT', message: expect.stringContaining('is not a WIM file') });
    await expect(stat(t)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a target that is not empty unless allowNonEmpty is set', async () => {
    const t = target();
    await mkdir(t);
    await writeFile(join(t, 'keep'), 'x');
    await expect(wim.applyStream(createReadStream(pipable), 1, t)).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY' });
    await wim.applyStream(createReadStream(pipable), 1, t, { allowNonEmpty: true });
    expect((await readdir(t)).sort()).toEqual(['data.bin', 'etc', 'hostname.link', 'keep', 'secret']);
  });

  it('fails with the stream’s own error as the cause when the stream breaks midway, and empties the target', async () => {
    const t = target();
    const bytes = await readFile(pipable);
    let at = 0;
    // 64 KiB at a time, as a socket delivers, until the connection drops halfway.
    const breaking = new Readable({
      read() {
        if (at >= size / 2) return this.destroy(new Error('socket hang up'));
        setTimeout(() => this.push(bytes.subarray(at, (at += 65536))), 1);
      },
    });
    const err = (await wim.applyStream(breaking, 2, t).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: 'COMMAND_FAILED', message: expect.stringContaining('its input stream failed (socket hang up)') });
    expect((err.cause as Error).message).toBe('socket hang up');
    expect(await readdir(t)).toEqual([]);
  });

  it('reports wimlib’s progress as events and the bytes read as they pass', async () => {
    const events: ImagepeEvent[] = [];
    const counts: number[] = [];
    await wim.applyStream(createReadStream(pipable, { highWaterMark: 64 * 1024 }), 2, target(), { events: (e) => events.push(e), onBytes: (b) => counts.push(b) });
    const progress = events.filter((e): e is ProgressEvent => e.type === 'progress' && e.phase === 'Extracting file data');
    expect(progress.length).toBeGreaterThan(1);
    expect(progress[progress.length - 1]).toMatchObject({ operation: 'apply', done: progress[progress.length - 1]!.total });
    expect(counts.length).toBeGreaterThan(10);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(counts[counts.length - 1]).toBe(size);
  });

  it('is cancelled by its signal while wimlib waits for a stream that stalls, and empties the target', async () => {
    const t = target();
    const head = (await readFile(pipable)).subarray(0, 1024 * 1024);
    let pushed = false;
    const stalling = new Readable({
      read() {
        if (!pushed) this.push(head);
        pushed = true;
      },
    });
    const err = await wim.applyStream(stalling, 2, t, { signal: AbortSignal.timeout(1000) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CANCELLED' });
    expect(await readdir(t)).toEqual([]);
    expect(stalling.destroyed).toBe(true);
  });

  it('applies to an unmounted NTFS volume', async () => {
    const volume = await sparseFile(join(work, 'ntfs.img'), 64 * 1024 * 1024);
    await run('mkntfs', ['--fast', '--force', '--quiet', volume]);
    const r = await wim.applyStream(createReadStream(pipable), 2, volume);
    expect(r.targetKind).toBe('ntfs-volume');
    expect((await run('ntfscat', [volume, 'added.txt'])).stdout).toBe('only in the second image\n');
    expect((await run('ntfscat', [volume, 'etc/hostname'])).stdout).toBe('reference\n');
  });

  it('applies an HTTP response body as it downloads', async () => {
    const server = createServer((req, res) => {
      send(req, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname), { root: work }).pipe(res);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/p.wim`);
    const remote = await wim.readRemoteWim(url);
    const response = await fetch(url);
    const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    const t = target();
    const r = await wim.applyStream(body, 2, t, { totalBytes: remote.sizeBytes, expectedSha256: sha256, from: url.href });
    expect(r).toMatchObject({ bytes: size, sha256 });
    expect(await snapshotTree(t)).toEqual(await snapshotTree(src));
  });
});

const servers: Server[] = [];

function sha256Of(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

