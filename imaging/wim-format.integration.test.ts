import { copyFile, mkdir, readFile, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import send from 'send';
import { run } from '../core/index.js';
import { removeDir, tempDir } from '../test-support/tree.js';
import * as wim from './index.js';

// Reading a WIM's header and XML data without wimlib (locally and over HTTP) must describe the
// file exactly as wimlib-imagex info and imageProperty do, for normal and pipable WIMs.
const LAYOUT = JSON.stringify({ version: 1, note: 'a <b> & "c" \'d\' ünïcødé 世界 😀' });
let work: string;
let files: Record<'normal' | 'pipable' | 'plain' | 'lzms', string>;
let base: string;

beforeAll(async () => {
  work = await tempDir('wimformat');
  const src = join(work, 'src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc/hostname'), 'reference\n');
  // 3 MiB that does not compress, so a split into 1 MiB parts makes several.
  const random = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < random.length; i += 4) random.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
  await writeFile(join(src, 'data.bin'), random);
  await symlink('etc/hostname', join(src, 'hostname.link'));
  const normal = join(work, 'normal.wim');
  await wim.capture(src, normal, { name: 'base & <one>', description: 'Grüße', compression: 'lzx', check: true, properties: { 'IMAGEPE/LAYOUT': LAYOUT } });
  await writeFile(join(src, 'etc/hostname'), 'second\n');
  await wim.append(src, normal, { name: 'two', properties: { 'IMAGEPE/LAYOUT': '{}', 'IMAGEPE/OTHER': 'x' }, flags: 'ServerStandard', bootable: true });
  const pipable = join(work, 'pipable.wim');
  await wim.exportImage(normal, 'all', pipable, { pipable: true });
  const plain = join(work, 'plain.wim');
  await wim.capture(src, plain, { name: 'plain', compression: 'none' });
  const lzms = join(work, 'lzms.wim');
  await wim.capture(src, lzms, { name: 'lzms', compression: 'lzms', pipable: true });
  files = { normal, pipable, plain, lzms };
  base = await startRangeServer(work);
});

afterAll(async () => {
  await stopServers();
  await removeDir(work);
});

describe('pipable WIMs', () => {
  it('are made by capture and by export of all images, and info says so', async () => {
    expect((await wim.info(files.pipable)).pipable).toBe(true);
    expect((await wim.info(files.lzms)).pipable).toBe(true);
    expect((await wim.info(files.normal)).pipable).toBe(false);
    expect((await wim.info(files.pipable)).images.map((i) => i.name)).toEqual(['base & <one>', 'two']);
  });

  it('stay pipable when an image is appended (wimlib rewrites the whole file)', async () => {
    const file = join(work, 'append.wim');
    await copyFile(files.pipable, file);
    await wim.append(join(work, 'src'), file, { name: 'three' });
    const after = await wim.info(file);
    expect(after).toMatchObject({ pipable: true, imageCount: 3 });
  });

  it('cannot be solid, and append and export into an existing WIM do not change a WIM’s format', async () => {
    await expect(wim.capture(join(work, 'src'), join(work, 'solid.wim'), { pipable: true, solid: true })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('solid') });
    await expect(wim.append(join(work, 'src'), files.normal, { name: 'p', pipable: true })).rejects.toMatchObject({ code: 'INVALID_INPUT', hint: expect.stringContaining('export') });
    await expect(wim.exportImage(files.normal, 1, files.plain, { pipable: true })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});

describe('parseWimHeader on files wimlib wrote', () => {
  it.each(['normal', 'pipable', 'plain', 'lzms'] as const)('reads the %s WIM’s complete header as wimlib-imagex info --header prints it', async (which) => {
    const file = files[which];
    const h = completeHeader(await readFile(file));
    const printed = await wimlibHeader(file);
    expect(h).toMatchObject({
      version: Number(printed['Version']),
      flags: Number(printed['Flags']),
      chunkSize: Number(printed['Chunk Size']),
      guid: `0x${printed['GUID']}`,
      partNumber: Number(printed['Part Number']),
      totalParts: Number(printed['Total Parts']),
      imageCount: Number(printed['Image Count']),
      bootIndex: Number(printed['Boot Index']),
    });
    const resources = { blobTable: 'Blob Table', xmlData: 'XML Data', bootMetadata: 'Boot Metadata', integrityTable: 'Integrity' } as const;
    for (const [key, label] of Object.entries(resources)) {
      expect(h[key as keyof typeof resources]).toEqual({
        offset: Number(printed[`${label} Offset`]),
        storedSize: Number(printed[`${label} Size`]),
        originalSize: Number(printed[`${label} Original Size`] ?? printed[`${label} Original_size`]),
        flags: Number(printed[`${label} Flags`]),
      });
    }
    const info = await wim.info(file);
    expect(h).toMatchObject({ compression: info.compression, attributes: info.attributes, pipable: info.pipable });
  });

  it('finds in the header at offset 0 of a pipable WIM the image count, but no resource headers', async () => {
    const h = wim.parseWimHeader(await readFile(files.pipable));
    expect(h).toMatchObject({ pipable: true, imageCount: 2, xmlData: { offset: 0, storedSize: 0, originalSize: 0, flags: 0 }, blobTable: { offset: 0 } });
  });

  it('finds the same header at offset 0 when wimlib writes the pipable WIM to a pipe', async () => {
    const piped = join(work, 'piped.wim');
    const r = await run('sh', ['-c', 'wimlib-imagex capture "$1" - piped --pipable > "$2"', 'sh', join(work, 'src'), piped], { okExitCodes: [0] });
    expect(r.exitCode).toBe(0);
    const bytes = await readFile(piped);
    expect(wim.parseWimHeader(bytes)).toMatchObject({ pipable: true, imageCount: 1, xmlData: { offset: 0 } });
    expect(wim.parseWimHeader(bytes.subarray(bytes.length - 208)).xmlData.offset).toBeGreaterThan(0);
  });
});

describe('parseWimXmlData on files wimlib wrote', () => {
  it.each(['normal', 'pipable', 'plain', 'lzms'] as const)('describes the %s WIM’s images and properties exactly as info() and imageProperty() do', async (which) => {
    const file = files[which];
    const bytes = await readFile(file);
    const h = completeHeader(bytes);
    const xml = wim.parseWimXmlData(bytes.subarray(h.xmlData.offset, h.xmlData.offset + h.xmlData.originalSize));
    const info = await wim.info(file);
    expect(wim.wimInfoFrom(file, h, xml)).toEqual(info);
    for (const image of info.images) {
      expect(xml.properties.get(image.index)).toEqual(await wim.imageProperties(file, image.index));
    }
    if (which === 'normal' || which === 'pipable') {
      expect(xml.properties.get(1)!['IMAGEPE/LAYOUT']).toBe(LAYOUT);
      expect(xml.images[1]).toMatchObject({ flags: 'ServerStandard' });
    }
  });
});

describe('readRemoteWim', () => {
  it.each(['normal', 'pipable', 'plain', 'lzms'] as const)('describes the %s WIM over HTTP as info() and imageProperty() describe the file', async (which) => {
    const file = files[which];
    const url = new URL(`${base}/${which}.wim`);
    const remote = await wim.readRemoteWim(url);
    const info = await wim.info(file);
    expect(remote.info).toEqual({ ...info, path: url.href });
    expect(remote).toMatchObject({ url, sizeBytes: (await stat(file)).size, pipable: info.pipable });
    for (const image of info.images) {
      for (const name of ['NAME', 'IMAGEPE/LAYOUT', 'IMAGEPE/OTHER', 'NOPE']) {
        expect(remote.property(image.index, name)).toBe(await wim.imageProperty(file, image.index, name));
      }
    }
    expect(remote.property(9, 'NAME')).toBeUndefined();
  });

  it('reads only the header and the XML data: a few KiB of a large WIM', async () => {
    requests.length = 0;
    await wim.readRemoteWim(new URL(`${base}/pipable.wim`));
    expect(requests.map((r) => r.range)).toEqual([expect.stringMatching(/^bytes=0-207$/), expect.stringMatching(/^bytes=\d+-\d+$/), expect.stringMatching(/^bytes=\d+-\d+$/)]);
    expect(requests.reduce((sum, r) => sum + r.sent, 0)).toBeLessThan(16 * 1024);
  });

  it('says a missing file is NOT_FOUND, naming the URL', async () => {
    const url = new URL(`${base}/missing.wim`);
    await expect(wim.readRemoteWim(url)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining(url.href) });
  });

  it('says a server that cannot be reached is NOT_FOUND', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await expect(wim.readRemoteWim(new URL(`http://127.0.0.1:${port}/x.wim`))).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('ECONNREFUSED') });
  });

  it('refuses a server that ignores Range as UNSUPPORTED, without downloading the file', async () => {
    let produced = 0;
    let closed!: () => void;
    const done = new Promise<void>((r) => (closed = r));
    const server = createServer((_req, res) => {
      const size = 1024 * 1024 * 1024;
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
      const body = new Readable({
        read() {
          if (produced >= size) return this.push(null);
          produced += 65536;
          this.push(Buffer.alloc(65536));
        },
      });
      res.on('close', () => {
        body.destroy();
        closed();
      });
      body.pipe(res);
    });
    const url = await listen(server, '/big.wim');
    const err = await wim.readRemoteWim(url).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('ignores range requests'), hint: expect.stringContaining('imagepe serve') });
    await done;
    expect(produced).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a part of a split WIM as UNSUPPORTED', async () => {
    const parts = await wim.split(files.normal, join(work, 'served/split.swm'), 1);
    expect(parts.length).toBeGreaterThan(1);
    await expect(wim.readRemoteWim(new URL(`${base}/served/split.swm`))).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('split WIM') });
  });

  it('says a pipable WIM that was cut short is corrupt, and a file that is no WIM is not a WIM file', async () => {
    const cut = join(work, 'cut.wim');
    await copyFile(files.pipable, cut);
    await truncate(cut, (await stat(cut)).size - 5000);
    await expect(wim.readRemoteWim(new URL(`${base}/cut.wim`))).rejects.toMatchObject({ code: 'WIM_CORRUPT', message: expect.stringContaining('incomplete pipable WIM') });
    await writeFile(join(work, 'text.wim'), 'hello\n');
    await expect(wim.readRemoteWim(new URL(`${base}/text.wim`))).rejects.toMatchObject({ code: 'WIM_CORRUPT', message: expect.stringContaining('is not a WIM file') });
  });

  it('is cancelled by its signal and gives up after its timeout', async () => {
    const silent = createServer(() => {});
    const url = await listen(silent, '/slow.wim');
    await expect(wim.readRemoteWim(url, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'COMMAND_TIMEOUT' });
    await expect(wim.readRemoteWim(url, { signal: AbortSignal.timeout(200) })).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});

/** The header with the resource headers filled in: a pipable WIM's is its last 208 bytes. */
function completeHeader(bytes: Buffer): wim.WimHeader {
  const first = wim.parseWimHeader(bytes);
  return first.pipable ? wim.parseWimHeader(bytes.subarray(bytes.length - wim.WIM_HEADER_SIZE)) : first;
}

/** `wimlib-imagex info --header` as "Key = value" pairs. */
async function wimlibHeader(file: string): Promise<Record<string, string>> {
  const r = await run('wimlib-imagex', ['info', file, '--header']);
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S.*?)\s+=\s+(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const servers: Server[] = [];
const requests: { range: string | undefined; sent: number }[] = [];

/** A static file server with range support (the `send` package) for `dir` on 127.0.0.1; returns its base URL. */
async function startRangeServer(dir: string): Promise<string> {
  const server = createServer((req, res) => {
    const entry = { range: req.headers.range, sent: 0 };
    requests.push(entry);
    const write = res.write.bind(res);
    res.write = ((chunk: Buffer, ...rest: never[]) => {
      entry.sent += chunk.length;
      return write(chunk, ...rest);
    }) as typeof res.write;
    send(req, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname), { root: dir }).pipe(res);
  });
  const url = await listen(server, '');
  return url.href.replace(/\/$/, '');
}

async function listen(server: Server, path: string): Promise<URL> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`);
}

async function stopServers(): Promise<void> {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
