import express from 'express';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../core/index.js';
import { captureRaw, type CaptureRawResult } from '../imaging/raw/index.js';
import * as partition from '../partition/index.js';
import { listenHttp, type HttpListener } from '../serve/index.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { makeDebianReferenceDisk, readDeployedDebian, type DebianReference } from '../test-support/debian-reference.js';
import { sparseFile } from '../test-support/tree.js';
import { bootReport, planPe, runAgent } from '../test-support/pe-flow.js';

// A raw disk image of a real Debian 12 (the installer's layout on a 2 GiB disk: ESP, bios-boot,
// root, swap last), made by imagepe capture-raw (used blocks, zstd, block map, sha256) and
// served over HTTP by a static server (express.static, as imagepe serve serves images), is
// deployed by the PE to a blank 5 GiB machine booted by UEFI: written whole and read back,
// grown over the disk (root takes the rest, swap moved to the end with its UUID), specialized.
// The deployed disk then boots by itself to multi-user.target with systemd "running", ssh
// active, its plan hostname, and a machine-id and SSH host key of its own.

const BOOT_TIMEOUT_MS = 300_000;
const JOB_TIMEOUT_MS = 1_200_000;
const GiB = 1024 ** 3;
const REF_BYTES = 2 * GiB;
const TARGET_BYTES = 5 * GiB;
const SERVER_IP = '10.0.2.100';
const MAC = '52:54:00:00:0e:01';

let work: string;
let share: string;
let ref: DebianReference;
let captured: CaptureRawResult;
let http: HttpListener;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-raw-e2e-'));
  share = join(work, 'share');
  await mkdir(join(work, 'served/images'), { recursive: true });
  await mkdir(share, { recursive: true });
  const pe = planPe('deploy', 'raw');
  ref = await makeDebianReferenceDisk(join(work, 'reference.raw'), { hostname: 'raw-reference', sizeBytes: REF_BYTES });
  const started = Date.now();
  captured = await captureRaw({ disk: ref.image, output: join(work, 'served/images/debian.img.zst') });
  process.stdout.write(`raw e2e: capture-raw of the 2 GiB reference ${((Date.now() - started) / 1000).toFixed(1)} s, ${(captured.usedBytes / 1024 ** 2).toFixed(0)} MiB used, ${(captured.outputBytes / 1024 ** 2).toFixed(0)} MiB compressed\n`);
  http = await listenHttp('127.0.0.1', 0);
  http.server.on('request', express().use(express.static(join(work, 'served'), { index: false, dotfiles: 'deny' })));
  await pe;
}, 900_000);

afterAll(async () => {
  await http?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

it('deploys the raw image over HTTP to a larger disk, which boots with its own identity', async () => {
  // The PE reads its plan from QEMU's SMB share (planPe); the image comes over HTTP.
  await writeFile(
    join(share, 'deploy.yaml'),
    `source: { url: "http://${SERVER_IP}/images", image: debian.img.zst }\ntarget: { disk: { pick: smallest, minSize: 1GiB } }\nspecialize: { hostname: "raw-{mac}" }\nafter: poweroff\n`,
  );
  const disk = await sparseFile(join(work, 'target.raw'), TARGET_BYTES);
  const { iso } = await planPe('deploy', 'raw');
  const deployed = await withVm(
    'raw deploy',
    startVm({ iso, uefi: true, mac: MAC, disks: [{ path: disk, format: 'raw' }], share, guestForwards: [{ guestIp: SERVER_IP, guestPort: 80, hostPort: http.port, perConnection: true }], workDir: join(work, 'pe'), lifetimeMs: JOB_TIMEOUT_MS + 60_000 }),
    (vm) => runAgent(vm, 'deployed', JOB_TIMEOUT_MS),
  );
  process.stdout.write(`raw e2e: PE start to deployed ${deployed.seconds.toFixed(1)} s wall; steps ${JSON.stringify(deployed.stepSeconds)}\n`);
  expect(deployed.steps.map((s) => s.slice(0, s.indexOf(':')))).toEqual(['plan', 'disk', 'share', 'check', 'write', 'grow', 'system', 'specialize', 'verify']);
  expect(deployed.steps.find((s) => s.startsWith('check:'))).toMatch(/sha256 from http:\/\/10\.0\.2\.100\/images\/debian\.img\.zst\.sha256/);
  expect(deployed.steps.find((s) => s.startsWith('write:'))).toContain(`sha256 ${captured.sha256} matches`);
  expect(deployed.end).toMatchObject({ type: 'deployed', hostname: 'raw-525400000e01' });

  // Offline: the table as grown, the filesystems' UUIDs kept, the identity new.
  const table = (await partition.withAttachedImage(disk, (loop) => partition.readTable(loop, (what) => ({ what, timeoutMs: 60_000 })), { readOnly: true }))!;
  const part = (n: number) => table.partitions!.find((p) => p.node.endsWith(String(n)))!;
  expect(part(3).size * 512).toBeGreaterThan(REF_BYTES + 2 * GiB);
  expect((part(4).start + part(4).size) * 512).toBeGreaterThan(TARGET_BYTES - 2 * 1024 ** 2);
  const verified = await run('sfdisk', ['--verify', disk]);
  expect(`${verified.stdout}${verified.stderr}`).toContain('No errors detected');
  const got = await readDeployedDebian(disk, []);
  expect(got.filesystems[3]).toMatchObject({ TYPE: 'ext4', UUID: ref.uuids.root });
  expect(got.machineId).not.toBe(ref.machineId);
  expect(got.hostKey).not.toBe(ref.hostKey);

  const r = await bootReport('raw deployed', disk, { format: 'raw', uefi: true, workDir: join(work, 'boot'), timeoutMs: BOOT_TIMEOUT_MS, mac: MAC });
  process.stdout.write(`raw e2e: deployed disk, QEMU start to the system's report ${r.seconds} s wall\n`);
  expect(r).toMatchObject({ state: 'running', target: 'active', ssh: 'active', hostname: 'raw-525400000e01', 'machine-id': got.machineId, hostkey: got.hostKey, root: ref.uuids.root, efi: ref.uuids.esp, failed: '' });
  expect(r['machine-id']).not.toBe(ref.machineId);
  expect(r.hostkey).not.toBe(ref.hostKey);
  expect(r.swap).toContain(ref.uuids.swap);
}, JOB_TIMEOUT_MS + BOOT_TIMEOUT_MS + 300_000);
