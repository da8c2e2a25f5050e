import { jest } from '@jest/globals';
import { createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import send from 'send';
import { exportImage } from '../../imaging/index.js';
import { deploy, sha256File } from './index.js';
import type { DeployEvent } from '../events/index.js';
import { parsePlan } from '../plan/index.js';
import { readDiskState } from '../../test-support/reliability/disk-state.js';
import { basePlan, blankDisk, FACTS, makeWorld, type World } from '../../test-support/reliability/world.js';

// A pipable WIM on a server that answers range requests is applied as it downloads: nothing
// is staged in the PE's memory. A stream that breaks off fails the apply (the disk was written,
// and no deployed event comes); the sha256 is checked at the end of the stream.

jest.setTimeout(120_000);
let world: World;
let server: Server;
let base: string;
let pipableSha: string;
const PIPABLE = 'images/ref-pipable.wim';

beforeAll(async () => {
  world = await makeWorld(await mkdtemp(join(tmpdir(), 'imagepe-stream-')));
  await exportImage(world.wim, 'all', join(world.share, PIPABLE), { pipable: true });
  pipableSha = await sha256File(join(world.share, PIPABLE));
  // A static server with range requests (send, as express.static uses). Under /cut/ a whole-file
  // GET is broken off at 60% after announcing the full length: range reads (the check) still work.
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const cut = path.startsWith('/cut/');
    const rel = cut ? path.slice('/cut'.length) : path;
    if (cut && !req.headers.range) {
      void stat(join(world.share, rel)).then((s) => {
        res.writeHead(200, { 'content-length': s.size });
        createReadStream(join(world.share, rel), { end: Math.floor(s.size * 0.6) })
          .on('end', () => res.destroy())
          .pipe(res, { end: false });
      });
      return;
    }
    send(req, rel, { root: world.share }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  if (world) await rm(world.dir, { recursive: true, force: true });
});

async function deployFrom(name: string, url: string, image: string, sha256: string): Promise<{ events: DeployEvent[]; error: unknown; disk: string }> {
  const disk = await blankDisk(join(world.dir, `${name}.img`));
  const events: DeployEvent[] = [];
  let error: unknown;
  await deploy(parsePlan(basePlan(world, { url, image, sha256 })), { disk, yes: true, facts: FACTS, scratchDir: world.dir, events: (e) => events.push(e) }).catch((e: unknown) => (error = e));
  return { events, error, disk };
}

const stepDetail = (events: DeployEvent[], step: string) => {
  const e = events.find((x) => x.type === 'step' && x.step === step && x.status === 'done');
  return e?.type === 'step' ? e.detail : undefined;
};

it('streams a pipable WIM into apply without a copy in the scratch folder, and deploys it', async () => {
  const { events, error, disk } = await deployFrom('streamed', `${base}/images/`, 'ref-pipable.wim', pipableSha);
  expect(error).toBeUndefined();
  expect(stepDetail(events, 'check')).toMatch(/^streamed into apply \(pipable WIM/);
  expect(events.some((e) => e.type === 'log' && /^streamed .* sha256 [0-9a-f]{64}$/.test(e.text))).toBe(true);
  expect(stepDetail(events, 'verify')).toMatch(/\d+ of \d+ entries on root/);
  expect(events[events.length - 1]).toMatchObject({ type: 'deployed', disk });
  expect((await readdir(world.dir)).filter((n) => n.includes('ref-pipable'))).toEqual([]);
  const state = await readDiskState(disk);
  expect(state.root['usr/share/imagepe/blob.bin']?.sha256).toBe(world.blobSha);
  expect(state.marker).toMatchObject({ source: `${base}/images/`, sha256: pipableSha });
});

it('fails at apply, with the disk touched and nothing reported deployed, when the stream breaks off', async () => {
  const { events, error } = await deployFrom('cut', `${base}/cut/images/`, 'ref-pipable.wim', pipableSha);
  expect(error).toBeDefined();
  expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: 'apply', diskTouched: true });
  expect(events.some((e) => e.type === 'deployed')).toBe(false);
});

it('fails at apply when the streamed image is not the one the plan names by sha256', async () => {
  const { events } = await deployFrom('wrong-sha', `${base}/images/`, 'ref-pipable.wim', 'ab'.repeat(32));
  const failed = events[events.length - 1];
  expect(failed).toMatchObject({ type: 'failed', step: 'apply', diskTouched: true, code: 'VERIFY_FAILED' });
  expect(failed?.type === 'failed' && failed.message).toContain(pipableSha);
});

it('downloads a WIM that is not pipable, and says why it was not streamed', async () => {
  const { events, error } = await deployFrom('not-pipable', `${base}/images/`, 'ref.wim', world.wimSha);
  expect(error).toBeUndefined();
  expect(stepDetail(events, 'check')).toMatch(/^sha256 matches/);
  expect(events.some((e) => e.type === 'log' && /is not a pipable WIM/.test(e.text))).toBe(true);
});
