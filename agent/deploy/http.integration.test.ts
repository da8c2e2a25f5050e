import { jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import { get } from 'node:https';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploy } from './index.js';
import type { DeployEvent } from '../events/index.js';
import { parsePlan } from '../plan/index.js';
import { readDiskState } from '../../test-support/reliability/disk-state.js';
import { HTTP_FAULTS, runFault, type FaultContext } from '../../test-support/reliability/faults.js';
import { startImageServers, type ImageServers } from '../../test-support/reliability/servers.js';
import { basePlan, blankDisk, FACTS, makeWorld, type World } from '../../test-support/reliability/world.js';

// Images fetched over http(s) from servers on 127.0.0.1: verified by sha256 before the disk
// is touched, and https certificates verified by default (a self-signed one is refused).

jest.setTimeout(120_000);
let world: World;
let servers: ImageServers;
let ctx: FaultContext;

beforeAll(async () => {
  world = await makeWorld(await mkdtemp(join(tmpdir(), 'imagepe-http-')));
  servers = await startImageServers(world.share, world.dir);
  ctx = { world, servers };
}, 60_000);

afterAll(async () => {
  await servers?.close();
  if (world) await rm(world.dir, { recursive: true, force: true });
});

describe('http(s) images that must not be used', () => {
  it('runs with certificate checks on (nothing in the environment turns them off)', () => {
    expect(process.env.NODE_TLS_REJECT_UNAUTHORIZED).not.toBe('0');
  });

  it.each(HTTP_FAULTS.map((c) => [c.name, c] as const))('%s fails at check with the disk untouched', async (_, c) => {
    const o = await runFault(ctx, c);
    expect(o.problems).toEqual([]);
    expect(o.secretLeaks).toEqual([]);
    expect(o.events[o.events.length - 1]).toMatchObject({ type: 'failed', step: 'check', diskTouched: false });
    expect(o.bytesChanged).toBe(false);
    expect(o.events.some((e) => e.type === 'step' && e.step === 'partition')).toBe(false);
    // No partial download is left behind in the scratch folder.
    expect((await readdir(world.dir)).filter((n) => /ref\.wim/.test(n))).toEqual([]);
  });

  it('the https server itself works when its certificate is trusted, so the refusal is the certificate check', async () => {
    const body = await new Promise<Buffer>((resolve, reject) => {
      get(`${servers.https}/images/ref.wim`, { ca: servers.certificate }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).on('error', reject);
    });
    expect(createHash('sha256').update(body).digest('hex')).toBe(world.wimSha);
  });
});

describe('an http image with the right sha256', () => {
  it('is downloaded, verified and deployed', async () => {
    const disk = await blankDisk(join(world.dir, 'http-good.img'));
    const events: DeployEvent[] = [];
    await deploy(parsePlan(basePlan(world, { url: `${servers.http}/images/`, image: 'ref.wim', sha256: world.wimSha })), { disk, yes: true, facts: FACTS, scratchDir: world.dir, events: (e) => events.push(e) });
    expect(events.find((e) => e.type === 'step' && e.step === 'check' && e.status === 'done')).toMatchObject({ detail: expect.stringMatching(/^sha256 matches/) });
    expect(events[events.length - 1]).toMatchObject({ type: 'deployed', disk });
    const state = await readDiskState(disk);
    expect(state.root['usr/share/imagepe/blob.bin']?.sha256).toBe(world.blobSha);
    expect(state.marker).toMatchObject({ source: `${servers.http}/images/`, sha256: world.wimSha });
  });
});
