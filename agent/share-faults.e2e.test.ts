import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BuildResult } from '../builder/index.js';
import { planTestBuild } from '../qemu-tests/shared-build.js';
import * as imaging from '../imaging/index.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { REFERENCE_LAYOUT, makeReferenceSystem } from '../test-support/reference-system.js';
import { startSamba, type SambaServer } from '../qemu-tests/samba.js';

// The share side of a deploy going wrong, in QEMU: a real Samba server that checks passwords
// (QEMU's own smb= lets anyone in as guest), reached by the guest at 10.0.2.100 through a
// guestfwd. Wrong credentials, an unknown host and a missing folder must each fail at the
// share step, name the problem, and leave the disk without a byte written; the right password
// must deploy, so the refusals are really about what was wrong.

const exec = promisify(execFile);
const SERVER_IP = '10.0.2.100';
const PASSWORD = 'C0rrect-Horse-7';
const WRONG = 'Wr0ng-Battery-9';
const JOB_TIMEOUT_MS = 240_000;
const DISK_SIZE = 2 * 1024 ** 3;

let build: BuildResult;
let work: string;
let planShare: string;
let samba: SambaServer;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function writtenBytes(qcow2: string): Promise<number> {
  const { stdout } = await exec('qemu-img', ['map', '--output=json', qcow2]);
  return (JSON.parse(stdout) as { length: number; data: boolean }[]).filter((m) => m.data).reduce((n, m) => n + m.length, 0);
}

function plan(url: string, password: string): string {
  return JSON.stringify({
    source: { url, image: 'reference.wim', index: 1, credentials: { username: 'root', password } },
    target: { disk: { pick: 'smallest', minSize: '1GiB' }, layout: REFERENCE_LAYOUT },
    apply: [{ partition: 'root' }],
    specialize: { hostname: 'share-test' },
    bootloader: { type: 'grub', firmware: 'bios' },
    after: 'poweroff',
    logs: false,
  });
}

/** Boots the PE on a blank disk with the plan, and returns the final event and the serial log. */
async function attempt(name: string, url: string, password: string, expect: 'failed' | 'deployed') {
  await writeFile(join(planShare, 'plan.yaml'), plan(url, password));
  const disk = join(work, `${name}.qcow2`);
  const r = await withVm(
    name,
    startVm({ iso: build.iso, disks: [{ path: disk, size: DISK_SIZE }], share: planShare, guestForwards: [{ guestIp: SERVER_IP, guestPort: 445, hostPort: samba.port }], workDir: join(work, name), lifetimeMs: JOB_TIMEOUT_MS + 60_000 }),
    async (vm) => {
      const event = await vm.waitForEvent(expect, JOB_TIMEOUT_MS);
      return { event, serial: await readFile(vm.logPath, 'utf8'), seconds: vm.elapsedSeconds() };
    },
  );
  return { ...r, written: await writtenBytes(disk) };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-share-faults-'));
  planShare = join(work, 'plans');
  const images = join(work, 'images');
  await mkdir(planShare, { recursive: true });
  await mkdir(images, { recursive: true });
  build = await planTestBuild();
  const reference = await makeReferenceSystem(join(work, 'reference'));
  await imaging.capture(reference.root, join(images, 'reference.wim'), { name: 'reference', compression: 'xpress' });
  samba = await startSamba({ workDir: join(work, 'samba'), shareDir: images, password: PASSWORD, port: await freePort() });
}, 300_000);

afterAll(async () => {
  await samba?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('share faults', () => {
  it('fails at the share step on a wrong password, says access was denied, writes nothing and never shows the password', async () => {
    const r = await attempt('wrong-password', `smb://${SERVER_IP}/images`, WRONG, 'failed');
    expect(r.event).toMatchObject({ type: 'failed', step: 'share', code: 'REFUSED', diskTouched: false });
    expect(r.event.type === 'failed' && r.event.message).toMatch(/cannot mount \/\/10\.0\.2\.100\/images: the server refused the user name or password/);
    expect(r.serial).not.toContain(WRONG);
    expect(r.written).toBe(0);
  }, JOB_TIMEOUT_MS + 60_000);

  it('fails at the share step on a folder the share does not have, writing nothing', async () => {
    const r = await attempt('missing-folder', `smb://${SERVER_IP}/images/no-such-folder`, PASSWORD, 'failed');
    expect(r.event).toMatchObject({ type: 'failed', step: 'share', code: 'NOT_FOUND', diskTouched: false });
    expect(r.event.type === 'failed' && r.event.message).toMatch(/no such share or folder/);
    expect(r.written).toBe(0);
  }, JOB_TIMEOUT_MS + 60_000);

  it('fails at the share step, within the mount timeout, on a server that is not there, writing nothing', async () => {
    const r = await attempt('unknown-host', 'smb://10.0.2.99/images', PASSWORD, 'failed');
    expect(r.event).toMatchObject({ type: 'failed', step: 'share', code: 'NOT_FOUND', diskTouched: false });
    expect(r.event.type === 'failed' && r.event.message).toMatch(/cannot be reached/);
    expect(r.written).toBe(0);
    process.stdout.write(`unknown host: failed ${r.seconds.toFixed(1)} s after QEMU started\n`);
  }, JOB_TIMEOUT_MS + 60_000);

  it('deploys with the right password from the same server, so the refusals above were about the credentials', async () => {
    const r = await attempt('right-password', `smb://${SERVER_IP}/images`, PASSWORD, 'deployed');
    expect(r.event).toMatchObject({ type: 'deployed', hostname: 'share-test' });
    expect(r.serial).not.toContain(PASSWORD);
    expect(r.written).toBeGreaterThan(0);
  }, JOB_TIMEOUT_MS + 60_000);
});
