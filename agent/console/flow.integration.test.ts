import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandFailedError, run } from '../../core/index.js';
import * as partition from '../../partition/index.js';
import { removeDir, sparseFile, tempDir } from '../../test-support/tree.js';
import { ScriptedTerminal, type Turn } from '../../test-support/scripted-terminal.js';
import type { CaptureRunOptions, CaptureRunResult } from '../capture/index.js';
import type { DeployOptions, DeployResult } from '../deploy/index.js';
import { makeDeployEvent, type RunEvent } from '../events/index.js';
import type { Disk } from '../events/index.js';
import { FROM_IMAGE, type CapturePlan, type DeployPlan } from '../plan/index.js';
import { mapShare, type MapOptions } from '../share/index.js';
import { CLAIM_PROMPT } from './claim.js';
import { runTechnicianConsole } from './index.js';
import { listShareImages } from './inventory.js';
import type { SessionEnv } from './env.js';
import { runTechnicianSession } from './flow.js';
import { QUESTIONS } from './questions.js';
import { ConsoleClosedError } from './terminal.js';

// The whole conversation, driven as a technician would, against real parts: a file:/// share
// holding a real WIM made by wimlib-imagex, loop-device disks partitioned and formatted by
// partition/, lsblk and blkid reading them. Only the deploy and capture runners are replaced,
// by functions that record the plan the conversation built: what they would do to a disk is
// tested in agent/deploy and agent/capture.
const MiB = 1024 * 1024;
const FACTS = { mac: '52:54:00:12:34:56' };
const DAY = new Date().toISOString().slice(0, 10).replace(/-/g, '');
const Q = (q: string) => `${q}: `;

let work: string;
let share: string;
let shareUrl: string;
const loops: string[] = [];
let used: Disk;
let blank: Disk;

async function attach(file: string): Promise<string> {
  const loop = await partition.attachImageFile(file);
  loops.push(loop);
  return loop;
}

beforeAll(async () => {
  work = await tempDir('console-flow');
  share = join(work, 'share');
  shareUrl = `file://${share}`;
  await mkdir(join(share, 'images'), { recursive: true });
  await mkdir(join(share, 'logs'), { recursive: true });
  const src = join(work, 'tree');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc/hostname'), 'reference\n');
  const wim = join(share, 'images/base.wim');
  await run('wimlib-imagex', ['capture', src, wim, 'Base', 'the base system', '--compress=xpress'], { what: 'making the test WIM' });
  await run('wimlib-imagex', ['append', src, wim, 'With layout', '--image-property', 'IMAGEPE/LAYOUT={"table":"gpt"}'], { what: 'appending to the test WIM' });

  const usedLoop = await attach(await sparseFile(join(work, 'used.img'), 64 * MiB));
  const layout = partition.parseLayout({
    table: 'gpt',
    partitions: [
      { name: 'boot', size: '16MiB', type: 'linux', format: 'vfat', label: 'BOOT' },
      { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root' },
    ],
  });
  await partition.apply(partition.resolveLayout(layout, await partition.describeDisk(usedLoop)));
  used = { path: usedLoop, size: 64 * MiB, model: null, removable: false, readOnly: false };
  blank = { path: await attach(await sparseFile(join(work, 'blank.img'), 32 * MiB)), size: 32 * MiB, model: 'BLANK DISK', removable: false, readOnly: false };
}, 120_000);

afterAll(async () => {
  for (const l of loops) await partition.detachLoop(l).catch(() => undefined);
  await removeDir(work);
});

interface Recorder {
  env: SessionEnv;
  deploys: { plan: DeployPlan; options: DeployOptions }[];
  captures: { plan: CapturePlan; options: CaptureRunOptions }[];
  events: RunEvent[];
}

/** The session's environment with recording runners; `deployFails` makes the first deploy fail at apply. */
function recorder(over: Partial<SessionEnv> = {}, deployFails = false): Recorder {
  const r: Recorder = { deploys: [], captures: [], events: [], env: undefined as unknown as SessionEnv };
  let failures = deployFails ? 1 : 0;
  r.env = {
    disks: [used, blank],
    bootMedium: '/dev/sr0',
    facts: FACTS,
    mapShare,
    deploy: async (plan, options) => {
      r.deploys.push({ plan, options });
      const emit = (e: Parameters<typeof makeDeployEvent>[0]) => options.events?.(makeDeployEvent(e));
      emit({ type: 'step', step: 'apply', status: 'started' });
      for (let done = 0; done <= 100; done += 25) emit({ type: 'progress', step: 'apply', phase: 'Extracting file data', unit: 'bytes', done, total: 100 });
      if (failures-- > 0) {
        emit({ type: 'failed', step: 'apply', code: 'COMMAND_FAILED', message: 'wimlib-imagex apply failed', stderrTail: 'No space left on device', diskTouched: true });
        throw new CommandFailedError({ command: 'wimlib-imagex apply', args: [], exitCode: 1, signal: undefined, stderrTail: 'No space left on device' }, 'applying');
      }
      const disk = (plan.target.disk as { path: string }).path;
      emit({ type: 'deployed', disk, hostname: plan.specialize.hostname ?? null, machineId: 'm', partitions: [], durationMs: 1000, after: plan.after });
      return { disk, device: disk, hostname: plan.specialize.hostname, machineId: 'm', partitions: [], bootloader: undefined, logFile: 'logs/pe-525400123456.log', durationMs: 1000 } satisfies DeployResult;
    },
    capture: async (plan, options) => {
      r.captures.push({ plan, options });
      return { wim: plan.destination.file, index: 3, name: plan.destination.name, sizeBytes: 1, imageBytes: 1, durationMs: 1000, layout: undefined, logFile: undefined } satisfies CaptureRunResult;
    },
    events: (e) => r.events.push(e),
    ...over,
  };
  return r;
}

function expectNarrow(transcript: string): void {
  expect(transcript.split(/\r\n|\n|\r/).filter((l) => l.length > 80)).toEqual([]);
}

const start: Turn[] = [
  [QUESTIONS.mode, 'd'],
  [QUESTIONS.share, ''],
];

describe('deploying', () => {
  it('builds a wiped standard-layout plan for the chosen image, disk and host name', async () => {
    const r = recorder({ defaultShare: '' });
    const term = new ScriptedTerminal([
      [Q(QUESTIONS.mode), 'd'],
      [Q(QUESTIONS.share), shareUrl],
      [Q(QUESTIONS.image), '1'],
      [Q(QUESTIONS.disk), '1'],
      [`${QUESTIONS.hostname} [pe-525400123456]: `, ''],
      [QUESTIONS.confirm, 'yes'],
      [QUESTIONS.next, 's'],
    ]);
    const result = await runTechnicianSession(term, r.env);
    expect(result.after).toBe('shell');
    expect(result.outcomes).toHaveLength(1);
    expect(result.outcomes[0]).toMatchObject({ action: 'deploy', ok: true });
    expect(r.deploys).toHaveLength(1);
    const { plan, options } = r.deploys[0]!;
    expect(plan.source).toMatchObject({ url: shareUrl, image: 'images/base.wim', index: 1 });
    expect(plan.source.credentials).toBeUndefined();
    expect(plan.target.disk).toEqual({ path: used.path });
    expect(plan.target.wipe).toBe(true);
    expect(plan.target.layout).toMatchObject({ table: 'gpt', partitions: [{ name: 'ESP' }, { name: 'bios-boot' }, { name: 'root' }] });
    expect(plan.apply).toEqual([{ partition: 'root', mode: 'auto' }]);
    expect(plan.specialize.hostname).toBe('pe-525400123456');
    expect(plan).toMatchObject({ after: 'shell', logs: true, bootloader: { type: 'grub', firmware: 'both' } });
    expect(options).toMatchObject({ yes: true, bootMedium: '/dev/sr0' });

    const t = term.transcript;
    expect(t).toMatch(/images\/base\.wim\s+1\s+Base/);
    expect(t).toMatch(/images\/base\.wim\s+2\s+With layout.*\*/);
    expect(t).toContain(`This ERASES ${used.path} (64.0 MiB)`);
    expect(t).toContain(`Everything on ${used.path} will be lost:`);
    expect(t).toContain('  - GPT: 2 partitions');
    expect(t).toContain("vfat 'BOOT' 16.0 MiB");
    expect(t).toContain("ext4 'root'");
    expect(t).toContain('(/dev/sr0, the medium this environment booted from, is not listed)');
    expect(t).toContain('Extracting file data 100%');
    expect(t).toContain(`Deployed image 1 "Base" of images/base.wim`);
    expect(t).toContain(`Log on the share:\n    ${shareUrl}/logs/pe-525400123456.log\n`);
    // The run's plan says "shell"; the session asks, so the end of the run says nothing of it.
    expect(t).toMatch(/DEPLOYED \S+ as pe-525400123456 in 1s\r?\n/);
    expect(t).not.toContain('next: shell');
    // The host name tokens, in words, with what they become here.
    expect(t).toContain("  {mac}     525400123456 (the first network card's MAC, 52:54:00:12:34:56)");
    expect(t).toContain('  {serial}  none: the firmware gives no serial number');
    expect(t).toContain('The default is pe-{mac}, here pe-525400123456.');
    expectNarrow(t);
    // The serial-style terminal shows progress as lines; the events also went to env.events.
    expect(t).not.toContain('\x1b');
    expect(r.events.map((e) => e.type)).toContain('progress');
  });

  it('deploys an image with a recorded layout from the image, and says a blank disk is blank', async () => {
    const r = recorder({ defaultShare: shareUrl });
    const term = new ScriptedTerminal([
      ...start,
      [Q(QUESTIONS.image), '2'],
      ['records its disk layout', '2'],
      [QUESTIONS.hostname, 'Lab {mac}'],
      [QUESTIONS.confirm, 'yes'],
      [QUESTIONS.next, 'r'],
    ]);
    const result = await runTechnicianSession(term, r.env);
    expect(result.after).toBe('reboot');
    const { plan } = r.deploys[0]!;
    expect(plan.target).toMatchObject({ disk: { path: blank.path }, wipe: true, layout: FROM_IMAGE });
    expect(plan.apply).toEqual([]);
    expect(plan.source.index).toBe(2);
    expect(plan.specialize.hostname).toBe('lab-525400123456');
    expect(term.transcript).toContain('The host name will be lab-525400123456.');
    expect(term.transcript).toContain(`${blank.path} is blank: nothing on it will be lost.`);
    expect(term.transcript).toContain(`This ERASES ${blank.path} (BLANK DISK, 32.0 MiB)`);
  });

  it('runs nothing unless the answer is exactly yes, asks once more after a near miss, and keeps every answer', async () => {
    const r = recorder({ defaultShare: shareUrl });
    const term = new ScriptedTerminal([
      ...start,
      [Q(QUESTIONS.image), '2'],
      ['records its disk layout', '2'],
      [QUESTIONS.hostname, 'kept-{mac}'],
      [QUESTIONS.confirm, 'y'],
      ['typed out in lower case', 'YES'],
      ['Not confirmed (only "yes" goes on): nothing was done.', 'd'],
      [`${QUESTIONS.share} [${shareUrl}]: `, ''],
      [`${QUESTIONS.image} [2]: `, ''],
      [`${QUESTIONS.disk} [2]: `, ''],
      [`${QUESTIONS.hostname} [kept-{mac}]: `, ''],
      [QUESTIONS.confirm, 'Yes'],
      ['typed out in lower case', 'yes'],
      [QUESTIONS.next, 's'],
    ]);
    await runTechnicianSession(term, r.env);
    expect(r.deploys).toHaveLength(1);
    const { plan } = r.deploys[0]!;
    expect(plan.source.index).toBe(2);
    expect(plan.target.disk).toEqual({ path: blank.path });
    expect(plan.specialize.hostname).toBe('kept-525400123456');
    expect(term.transcript).toContain('Back to the first question. Your answers are kept');
    expect(term.transcript).toContain(`${QUESTIONS.mode} [d]: `);
  });

  it('goes back one question on q, offering each earlier answer again', async () => {
    const r = recorder({ defaultShare: shareUrl });
    const term = new ScriptedTerminal([
      [QUESTIONS.mode, 'q'],
      ['This is the first question.', 'd'],
      [QUESTIONS.share, ''],
      [Q(QUESTIONS.image), '2'],
      [Q(QUESTIONS.disk), 'q'],
      [`${QUESTIONS.image} [2]: `, 'q'],
      [`${QUESTIONS.share} [${shareUrl}]: `, 'q'],
      [`${QUESTIONS.mode} [d]: `, ''],
      [QUESTIONS.share, ''],
      [`${QUESTIONS.image} [2]: `, ''],
      [Q(QUESTIONS.disk), '2'],
      [QUESTIONS.hostname, 'q'],
      [`${QUESTIONS.disk} [2]: `, ''],
      [QUESTIONS.hostname, 'back-{mac}'],
      [QUESTIONS.confirm, 'q'],
      [`${QUESTIONS.hostname} [back-{mac}]: `, ''],
      [QUESTIONS.confirm, 'yes'],
      [QUESTIONS.next, 'q'],
      ['Answer r to reboot', 's'],
    ]);
    const result = await runTechnicianSession(term, r.env);
    expect(result.after).toBe('shell');
    expect(r.deploys).toHaveLength(1);
    expect(r.deploys[0]!.plan.source.index).toBe(2);
    expect(r.deploys[0]!.plan.target.disk).toEqual({ path: blank.path });
    expect(r.deploys[0]!.plan.specialize.hostname).toBe('back-525400123456');
    expect(term.transcript).toContain('Answer q to go back one question');
    expectNarrow(term.transcript);
  });

  it('takes the share as \\\\server\\share, and says how long it tries a server that does not answer', async () => {
    const mapped: string[] = [];
    const slowThenFine: SessionEnv['mapShare'] = async (source, options?: MapOptions) => {
      mapped.push(source.url);
      if (source.url.startsWith('smb://10.0.2.9/')) {
        // A server that never answers: only the console's own limit ends the wait.
        await new Promise((_, reject) => options?.signal?.addEventListener('abort', () => reject(new Error('mount was stopped'))));
      }
      return mapShare({ url: shareUrl, image: source.image }, options);
    };
    const r = recorder({ mapShare: slowThenFine, mapWait: { limitMs: 1_000, tickMs: 300 } });
    const term = new ScriptedTerminal([
      [QUESTIONS.mode, 'd'],
      [Q(QUESTIONS.share), '\\\\10.0.2.9\\qemu'],
      ['did not answer within 1 s', '//10.0.2.4/qemu/'],
      [Q(QUESTIONS.image), 'q'],
      [`${QUESTIONS.share} [smb://10.0.2.4/qemu]: `, '\\\\10.0.2.4\\qemu\\'],
      [Q(QUESTIONS.image), '1'],
      [Q(QUESTIONS.disk), '2'],
      [QUESTIONS.hostname, ''],
      [QUESTIONS.confirm, 'yes'],
      [QUESTIONS.next, 'p'],
    ]);
    await runTechnicianSession(term, r.env);
    const t = term.transcript;
    expect(t).toContain('\\\\server\\share[\\folder]');
    expect(t).toContain('  That is smb://10.0.2.9/qemu.');
    expect(t).toContain('Mapping smb://10.0.2.9/qemu (at most 1 s) ...');
    expect(t).toContain('  still trying: 0 s of at most 1 s ...');
    expect(t).toContain('Check the server name or address');
    expect(t).toContain('  That is smb://10.0.2.4/qemu.');
    expect(mapped).toEqual(['smb://10.0.2.9/qemu', 'smb://10.0.2.4/qemu', 'smb://10.0.2.4/qemu']);
    expect(r.deploys[0]!.plan.source.url).toBe('smb://10.0.2.4/qemu');
    // The log as the share shows it, in both forms.
    expect(t).toContain('Log on the share:\n    smb://10.0.2.4/qemu/logs/pe-525400123456.log\n    \\\\10.0.2.4\\qemu\\logs\\pe-525400123456.log\n');
    expectNarrow(t);
  });

  it('asks for credentials when the share refuses guest access, and never shows the password', async () => {
    // An SMB server that wants LAB\deploy with the right password, in front of the real folder.
    const smbUrl = 'smb://fileserver/images';
    const attempts: unknown[] = [];
    const smb: SessionEnv['mapShare'] = async (source, options?: MapOptions) => {
      attempts.push(source.credentials);
      const c = source.credentials;
      if (!c || c.username !== 'deploy' || c.domain !== 'LAB' || c.password !== 'R1ght-Pa55') {
        throw new CommandFailedError({ command: 'mount -t cifs //fileserver/images', args: [], exitCode: 32, signal: undefined, stderrTail: 'mount error(13): Permission denied' }, 'mounting //fileserver/images');
      }
      return mapShare({ url: shareUrl, image: source.image }, options);
    };
    const r = recorder({ mapShare: smb });
    const term = new ScriptedTerminal([
      [QUESTIONS.mode, 'd'],
      [Q(QUESTIONS.share), smbUrl],
      ['refused guest access', 'q'],
      [`${QUESTIONS.share} [${smbUrl}]: `, ''],
      ['refused guest access', 'LAB\\deploy'],
      [QUESTIONS.password, 'Wr0ng-Pa55'],
      ['refused these credentials', ''],
      [QUESTIONS.password, 'R1ght-Pa55'],
      [Q(QUESTIONS.image), '1'],
      [Q(QUESTIONS.disk), '2'],
      [QUESTIONS.hostname, ''],
      [QUESTIONS.confirm, 'yes'],
      [QUESTIONS.next, 'p'],
    ]);
    const result = await runTechnicianSession(term, r.env);
    expect(result.after).toBe('poweroff');
    expect(attempts).toHaveLength(4);
    expect(term.transcript).toContain(`${QUESTIONS.user} [LAB\\deploy]: `);
    const { plan } = r.deploys[0]!;
    expect(plan.source.url).toBe(smbUrl);
    expect(plan.source.credentials).toEqual({ username: 'deploy', password: 'R1ght-Pa55', domain: 'LAB' });
    expect(term.transcript).not.toContain('R1ght-Pa55');
    expect(term.transcript).not.toContain('Wr0ng-Pa55');
    expect(JSON.stringify(r.events)).not.toContain('R1ght-Pa55');
  });

  it('shows a failure with its step and what happened to the disk, and lets the technician go again', async () => {
    const r = recorder({ defaultShare: shareUrl }, true);
    const once: Turn[] = [...start, [QUESTIONS.image, '1'], [QUESTIONS.disk, '2'], [QUESTIONS.hostname, ''], [QUESTIONS.confirm, 'yes']];
    const term = new ScriptedTerminal([...once, [QUESTIONS.next, 'a'], ...once, [QUESTIONS.next, 's']]);
    const result = await runTechnicianSession(term, r.env);
    expect(result.outcomes.map((o) => o.ok)).toEqual([false, true]);
    expect(result.outcomes[0]!.failure).toMatchObject({ step: 'apply', code: 'COMMAND_FAILED', diskTouched: true });
    expect(term.transcript).toContain('at step apply (COMMAND_FAILED)');
    expect(term.transcript).toContain('The disk was written to and is NOT deployed: deploy it again.');
    expect(term.transcript).toContain('  | No space left on device');
    expect(r.deploys).toHaveLength(2);
    expectNarrow(term.transcript);
  });

  it('asks for the URL again when the share cannot be mapped or holds no images', async () => {
    const empty = join(work, 'empty-share');
    await mkdir(empty, { recursive: true });
    const r = recorder();
    const term = new ScriptedTerminal([
      [QUESTIONS.mode, 'd'],
      [Q(QUESTIONS.share), 'http://example.org/images'],
      ['Expected smb://server/share', `file://${join(work, 'missing')}`],
      ['could not be mapped', `file://${empty}`],
      ['No images (*.wim)', 'q'],
    ]);
    await expect(runTechnicianSession(term, r.env)).rejects.toBeInstanceOf(ConsoleClosedError);
    expect(term.transcript).toContain('does not exist');
  });
});

describe('capturing', () => {
  it('builds a capture plan for the chosen partition into a new WIM', async () => {
    const r = recorder({ defaultShare: shareUrl });
    const term = new ScriptedTerminal([
      [QUESTIONS.mode, 'c'],
      [QUESTIONS.share, ''],
      [Q(QUESTIONS.referenceDisk), '2'],
      ['it is blank', '1'],
      [`${QUESTIONS.partition} [r]: `, '2'],
      [`${QUESTIONS.generalize} [y]: `, ''],
      [`${QUESTIONS.destination} [n]: `, 'n'],
      [`${QUESTIONS.wimFile} [images/capture-${DAY}.wim]: `, ''],
      [`${QUESTIONS.imageName} [capture-${DAY}]: `, ''],
      [Q(QUESTIONS.description), 'golden image'],
      [`${QUESTIONS.compression} [lzx]: `, 'xpress'],
      [QUESTIONS.confirm, 'yes'],
      [QUESTIONS.next, 'p'],
    ]);
    const result = await runTechnicianSession(term, r.env);
    expect(result).toMatchObject({ after: 'poweroff', outcomes: [{ action: 'capture', ok: true }] });
    expect(r.captures).toHaveLength(1);
    expect(r.captures[0]!.plan).toEqual({
      kind: 'capture',
      source: { disk: { path: used.path }, partition: { number: 2 } },
      generalize: true,
      destination: { url: shareUrl, file: `images/capture-${DAY}.wim`, name: `capture-${DAY}`, description: 'golden image', compression: 'xpress', append: false, integrity: true, pipable: false },
      after: 'shell',
      logs: true,
    });
    const t = term.transcript;
    expect(t).toMatch(new RegExp(`${used.path}p2\\s+[\\d.]+ MiB\\s+ext4\\s+root`));
    expect(t).toContain('Generalize changes the reference system');
    expect(t).toContain('the machine-id');
    expect(t).toContain('SSH host keys');
    expect(t).toContain(`Captured partition 2 (${used.path}p2) of ${used.path}`);
    expectNarrow(t);
  });

  it('appends to an existing WIM under a name not yet in it, without generalizing', async () => {
    const r = recorder({ defaultShare: shareUrl });
    const term = new ScriptedTerminal([
      [QUESTIONS.mode, 'c'],
      [QUESTIONS.share, ''],
      [Q(QUESTIONS.referenceDisk), '1'],
      [QUESTIONS.partition, ''],
      [QUESTIONS.generalize, 'n'],
      [QUESTIONS.destination, '1'],
      [`${QUESTIONS.imageName} [base-${DAY}]: `, 'Base'],
      ['already has an image named "Base"', '42'],
      ['digits only', ''],
      [QUESTIONS.description, ''],
      [QUESTIONS.confirm, 'yes'],
      [QUESTIONS.next, 's'],
    ]);
    await runTechnicianSession(term, r.env);
    const plan = r.captures[0]!.plan;
    expect(plan.source).toEqual({ disk: { path: used.path }, partition: 'root' });
    expect(plan.generalize).toBe(false);
    expect(plan.destination).toMatchObject({ file: 'images/base.wim', append: true, name: `base-${DAY}`, description: '' });
    expect(term.transcript).toContain(`Nothing on ${used.path} is changed`);
    expect(term.transcript).not.toContain(QUESTIONS.compression);
  });
});

describe('capturing, going back', () => {
  it('keeps every capture answer after q and after a refused confirmation', async () => {
    const r = recorder({ defaultShare: shareUrl });
    const term = new ScriptedTerminal([
      [QUESTIONS.mode, 'c'],
      [QUESTIONS.share, ''],
      [Q(QUESTIONS.referenceDisk), '1'],
      [`${QUESTIONS.partition} [r]: `, '2'],
      [`${QUESTIONS.generalize} [y]: `, 'n'],
      [`${QUESTIONS.destination} [n]: `, '1'],
      [QUESTIONS.imageName, 'q'],
      [`${QUESTIONS.destination} [1]: `, ''],
      [QUESTIONS.imageName, 'Second'],
      [Q(QUESTIONS.description), 'kept text'],
      [QUESTIONS.confirm, 'no'],
      [`${QUESTIONS.mode} [c]: `, ''],
      [QUESTIONS.share, ''],
      [`${QUESTIONS.referenceDisk} [1]: `, ''],
      [`${QUESTIONS.partition} [2]: `, ''],
      [`${QUESTIONS.generalize} [n]: `, ''],
      [`${QUESTIONS.destination} [1]: `, ''],
      [`${QUESTIONS.imageName} [Second]: `, ''],
      [`${QUESTIONS.description} [kept text]: `, ''],
      [QUESTIONS.confirm, 'yes'],
      [QUESTIONS.next, 's'],
    ]);
    await runTechnicianSession(term, r.env);
    expect(r.captures).toHaveLength(1);
    expect(r.captures[0]!.plan).toMatchObject({
      source: { disk: { path: used.path }, partition: { number: 2 } },
      generalize: false,
      destination: { file: 'images/base.wim', append: true, name: 'Second', description: 'kept text' },
    });
  });
});

describe('runTechnicianConsole', () => {
  it('claims the console, tells the agent which, and returns what comes next', async () => {
    const r = recorder({ defaultShare: shareUrl });
    const term = new ScriptedTerminal([[CLAIM_PROMPT, ''], ...start, [Q(QUESTIONS.image), '1'], [Q(QUESTIONS.disk), '2'], [QUESTIONS.hostname, ''], [QUESTIONS.confirm, 'yes'], [QUESTIONS.next, 'r']]);
    const claimed: (string | undefined)[] = [];
    const machine = { vendor: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)', serial: '', uuid: '', firmware: { type: 'bios' as const, secureBoot: false, lockdown: 'none' }, nics: [{ mac: FACTS.mac, addresses: ['10.0.2.15/24'] }], disks: r.env.disks, bootMedium: '/dev/sr0' };
    const after = await runTechnicianConsole(['/dev/ttyS0'], { ...r.env, machine, claimed: (p) => claimed.push(p) }, { open: () => term });
    expect(after).toBe('reboot');
    // What the machine is comes first, above the Press Enter line.
    const first = term.transcript.slice(0, term.transcript.indexOf(CLAIM_PROMPT));
    expect(first).toContain('  Model     QEMU Standard PC (i440FX + PIIX, 1996)');
    expect(first).toContain(`  Network   ${FACTS.mac}  10.0.2.15/24`);
    expect(first).toContain(`  Disks     ${used.path}  64.0 MiB`);
    expect(claimed).toEqual(['/dev/ttyS0', undefined]);
    expect(term.remaining).toBe(0);
  });
});

describe('listShareImages', () => {
  it('lists each image of each WIM with its sizes, date and whether it records a layout', async () => {
    const { images, unreadable } = await listShareImages(share);
    expect(unreadable).toEqual([]);
    expect(images.map((i) => [i.file, i.index, i.name, i.description, i.layoutRecorded])).toEqual([
      ['images/base.wim', 1, 'Base', 'the base system', false],
      ['images/base.wim', 2, 'With layout', '', true],
    ]);
    expect(images[0]!.imageBytes).toBeGreaterThan(0);
    expect(images[0]!.wimBytes).toBeGreaterThan(0);
    expect(images[0]!.created).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it('names a damaged WIM instead of leaving it out', async () => {
    const damaged = join(work, 'damaged-share');
    await mkdir(damaged, { recursive: true });
    await writeFile(join(damaged, 'bad.wim'), 'not a WIM at all');
    const { images, unreadable } = await listShareImages(damaged);
    expect(images).toEqual([]);
    expect(unreadable.map((u) => u.file)).toEqual(['bad.wim']);
  });
});
