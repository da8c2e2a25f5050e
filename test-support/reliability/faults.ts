import { mkdir, mkdtemp, open, readdir, readFile, rm, rmdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ImagepeError, run, type ErrorCode } from '../../core/index.js';
import { stderrTailOf } from '../../core/index.js';
import { withAttachedImage } from '../../partition/index.js';
import { deploy, sha256File, type DeployOptions } from '../../agent/deploy/index.js';
import type { DeployEvent, DeployStep } from '../../agent/events/index.js';
import { parsePlan, type DeployPlanInput } from '../../agent/plan/index.js';
import type { ArgvRecorder } from './argv-recorder.js';
import type { ImageServers } from './servers.js';
import { basePlan, blankDisk, FACTS, IMAGES, loopsOf, MiB, type World } from './world.js';

// Faults injected into a host-side deploy, each with what must happen: the step the deploy
// stops at, the error code, whether the disk may have been written by then, and what the
// message must name. runFault runs one and judges it against its own expectation; the
// integration tests assert there is nothing to report, and the bench counts.

export interface FaultContext {
  world: World;
  /** Needed by the http group. */
  servers?: ImageServers;
  /** When given, every command the deploy runs is recorded and searched for the secrets. */
  recorder?: ArgvRecorder;
}

export interface Expectation {
  step: DeployStep;
  codes: ErrorCode[];
  /** Whether the disk may be written before the failure: only when the damage cannot be seen before apply. */
  diskTouched: boolean;
  /** What the failure message must name: the disk, the file, the index, what the disk holds. */
  mentions: (string | RegExp)[];
}

export type FaultGroup = 'image' | 'refusal' | 'share' | 'http';

export interface FaultCase {
  name: string;
  group: FaultGroup;
  /** The fault, in words. */
  what: string;
  diskBytes?: number;
  /** Puts something on the blank disk before the deploy (a filesystem, a partition table). */
  prepareDisk?: (disk: string) => Promise<void>;
  plan: (ctx: FaultContext) => DeployPlanInput;
  options?: (ctx: FaultContext, disk: string) => Promise<Partial<DeployOptions>> | Partial<DeployOptions>;
  expect: (ctx: FaultContext, disk: string) => Expectation;
  /** Reads the disk after the run; returns what is wrong with it. */
  inspect?: (disk: string) => Promise<string[]>;
}

const image = (name: string, what: string, plan: (w: World) => DeployPlanInput, expect: (w: World) => Omit<Expectation, 'diskTouched'> & { diskTouched?: boolean }, more: Partial<FaultCase> = {}): FaultCase => ({
  name,
  group: 'image',
  what,
  plan: (ctx) => plan(ctx.world),
  expect: (ctx) => ({ diskTouched: false, ...expect(ctx.world) }),
  ...more,
});

export const IMAGE_FAULTS: FaultCase[] = [
  image('truncated-wim', 'a WIM cut to 60% of its size, no sha256 in the plan', (w) => basePlan(w, { image: IMAGES.truncated, sha256: null }), () => ({ step: 'check', codes: ['WIM_CORRUPT'], mentions: ['truncated.wim'] })),
  image('corrupt-resource-integrity', 'one byte flipped in a file resource of a WIM with an integrity table, no sha256', (w) => basePlan(w, { image: IMAGES.corruptChecked, sha256: null }), () => ({ step: 'check', codes: ['WIM_CORRUPT'], mentions: ['corrupt-check.wim', /integrity/] })),
  image('corrupt-resource-sha256', 'one byte flipped in a file resource, the plan has the sha256 of the good WIM', (w) => basePlan(w, { image: IMAGES.corrupt, sha256: w.wimSha }), (w) => ({ step: 'check', codes: ['WIM_CORRUPT'], mentions: ['corrupt.wim', w.wimSha] })),
  image('wrong-sha256', 'the good WIM, the plan names another sha256', (w) => basePlan(w, { sha256: 'ab'.repeat(32) }), () => ({ step: 'check', codes: ['WIM_CORRUPT'], mentions: ['ref.wim', 'ab'.repeat(32)] })),
  image('missing-index', 'source.index 7 of a WIM with one image', (w) => basePlan(w, { index: 7 }), () => ({ step: 'check', codes: ['IMAGE_NOT_FOUND'], mentions: ['ref.wim', 'index 7', '1 "reference"'] })),
  image('missing-image-name', 'source.index names an image the WIM lacks', (w) => basePlan(w, { index: 'Windows 11 Pro' }), () => ({ step: 'check', codes: ['IMAGE_NOT_FOUND'], mentions: ['ref.wim', 'named "Windows 11 Pro"'] })),
  image('missing-apply-index', 'apply[0].index 3, source.index valid', (w) => basePlan(w, { applyIndex: 3 }), () => ({ step: 'check', codes: ['IMAGE_NOT_FOUND'], mentions: ['ref.wim', 'index 3'] })),
  image('not-a-wim', 'a text file named .wim', (w) => basePlan(w, { image: IMAGES.notWim, sha256: null }), () => ({ step: 'check', codes: ['WIM_CORRUPT'], mentions: ['not-a-wim.wim', 'not a WIM file'] })),
  image('empty-file', 'an empty file named .wim', (w) => basePlan(w, { image: IMAGES.empty, sha256: null }), () => ({ step: 'check', codes: ['WIM_CORRUPT'], mentions: ['empty.wim', 'not a WIM file'] })),
  image('missing-file', 'the image is not on the share', (w) => basePlan(w, { image: IMAGES.missing, sha256: null }), () => ({ step: 'check', codes: ['NOT_FOUND'], mentions: ['missing.wim'] })),
  // Without a sha256 or an integrity table nothing but reading every resource can see this
  // before apply; what must hold is that the failure is reported and nothing bootable is left.
  image(
    'corrupt-resource-unverified',
    'one byte flipped in a file resource, no integrity table and no sha256: found only by apply',
    (w) => basePlan(w, { image: IMAGES.corrupt, sha256: null, grub: true }),
    () => ({ step: 'apply', codes: ['WIM_CORRUPT'], diskTouched: true, mentions: ['corrupt.wim'] }),
    { inspect: (disk) => nothingBootable(disk) },
  ),
];

const refusal = (name: string, what: string, more: Partial<FaultCase> & Pick<FaultCase, 'expect'>): FaultCase => ({
  name,
  group: 'refusal',
  what,
  plan: (ctx) => basePlan(ctx.world),
  ...more,
});

export const REFUSAL_FAULTS: FaultCase[] = [
  refusal('disk-too-small', 'a 48 MiB disk for a layout with a 64 MiB ESP', {
    diskBytes: 48 * MiB,
    expect: (_, disk) => ({ step: 'disk', codes: ['LAYOUT_INVALID'], diskTouched: false, mentions: [disk, 'does not fit', '48.0 MiB'] }),
  }),
  refusal('holds-ext4', 'an ext4 filesystem on the whole disk, no wipe', {
    prepareDisk: (disk) => run('mkfs.ext4', ['-q', '-F', '-L', 'olddata', disk]).then(() => undefined),
    expect: (_, disk) => ({ step: 'disk', codes: ['REFUSED'], diskTouched: false, mentions: [disk, 'ext4 on the whole disk'] }),
  }),
  refusal('holds-gpt', 'a GPT partition table, no wipe', {
    prepareDisk: (disk) => run('sfdisk', ['--quiet', disk], { input: 'label: gpt\n,16MiB,L\n' }).then(() => undefined),
    expect: (_, disk) => ({ step: 'disk', codes: ['REFUSED'], diskTouched: false, mentions: [disk, 'a GPT partition table'] }),
  }),
  refusal('holds-mbr-with-ext4', 'an MBR table whose first partition holds ext4, no wipe', {
    prepareDisk: async (disk) => {
      await run('sfdisk', ['--quiet', disk], { input: 'label: dos\nstart=2048, size=32768, type=83\n' });
      await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'olddata', '-E', `offset=${MiB}`, disk, '16M']);
    },
    expect: (_, disk) => ({ step: 'disk', codes: ['REFUSED'], diskTouched: false, mentions: [disk, 'an MBR partition table', /ext4 on \/dev\/loop\d+p1/] }),
  }),
  refusal('boot-medium', 'the disk is the boot medium; the plan says wipe', {
    plan: (ctx) => basePlan(ctx.world, { wipe: true }),
    options: (_, disk) => ({ bootMedium: disk }),
    expect: (_, disk) => ({ step: 'disk', codes: ['REFUSED'], diskTouched: false, mentions: [disk, 'boot medium'] }),
  }),
  refusal('boot-medium-by-link', 'the boot medium named through a symlink, holding ext4; the plan says wipe', {
    plan: (ctx) => basePlan(ctx.world, { wipe: true }),
    prepareDisk: (disk) => run('mkfs.ext4', ['-q', '-F', '-L', 'pe-medium', disk]).then(() => undefined),
    options: async (_, disk) => {
      const link = `${disk}.link`;
      await rm(link, { force: true });
      await symlink(disk, link);
      return { bootMedium: link };
    },
    expect: (_, disk) => ({ step: 'disk', codes: ['REFUSED'], diskTouched: false, mentions: [disk, 'boot medium'] }),
  }),
];

const share = (name: string, what: string, url: (ctx: FaultContext) => string, mentions: (string | RegExp)[], codes: ErrorCode[] = ['COMMAND_FAILED']): FaultCase => ({
  name,
  group: 'share',
  what,
  plan: (ctx) => basePlan(ctx.world, { url: url(ctx), sha256: null }),
  expect: () => ({ step: 'share', codes, diskTouched: false, mentions }),
});

export const SHARE_FAULTS: FaultCase[] = [
  share('file-share-missing', 'a file:/// share folder that does not exist', (ctx) => `file://${ctx.world.dir}/no-such-share`, ['no-such-share'], ['NOT_FOUND']),
  // This host's kernel has no cifs module, so mount fails either way; what is checked is that
  // the failure is at share, the disk untouched, and the password nowhere but in the 0600 file.
  share('smb-unknown-host', 'an smb server name that does not resolve', () => 'smb://imagepe-no-such-host.invalid/images', ['//imagepe-no-such-host.invalid/images']),
  share('smb-closed-port', 'an smb server on a port nothing listens on', () => 'smb://127.0.0.1:1/images', ['//127.0.0.1/images']),
];

const http = (name: string, what: string, url: (s: ImageServers) => string, sha: (w: World) => string, mentions: (s: ImageServers) => (string | RegExp)[], codes: ErrorCode[]): FaultCase => ({
  name,
  group: 'http',
  what,
  plan: (ctx) => basePlan(ctx.world, { url: url(serversOf(ctx)), image: 'ref.wim', sha256: sha(ctx.world) }),
  expect: (ctx) => ({ step: 'check', codes, diskTouched: false, mentions: mentions(serversOf(ctx)) }),
});

export const HTTP_FAULTS: FaultCase[] = [
  http('http-wrong-sha256', 'an image over http whose sha256 differs from the plan', (s) => `${s.http}/images/`, () => 'cd'.repeat(32), (s) => [`${s.http}/images/ref.wim`, 'cd'.repeat(32)], ['WIM_CORRUPT']),
  http('https-self-signed', 'https with a self-signed certificate', (s) => `${s.https}/images/`, (w) => w.wimSha, (s) => [`${s.https}/images/ref.wim`, /certificate/i], ['NOT_FOUND']),
  http('http-cut-off', 'the server drops the connection halfway through the image', (s) => `${s.http}/short/images/`, (w) => w.wimSha, (s) => [`${s.http}/short/images/ref.wim`, /broke off|ended after/], ['COMMAND_FAILED']),
  http('http-404', 'the image is not on the server', (s) => `${s.http}/elsewhere/`, (w) => w.wimSha, (s) => [`${s.http}/elsewhere/ref.wim`, 'HTTP 404'], ['NOT_FOUND']),
];

export const ALL_FAULTS: FaultCase[] = [...IMAGE_FAULTS, ...REFUSAL_FAULTS, ...SHARE_FAULTS, ...HTTP_FAULTS];

function serversOf(ctx: FaultContext): ImageServers {
  if (!ctx.servers) throw new Error('the http faults need startImageServers()');
  return ctx.servers;
}

export interface FaultOutcome {
  name: string;
  group: FaultGroup;
  disk: string;
  events: DeployEvent[];
  error: unknown;
  /** A deployed event came, or deploy() returned: the one outcome that must never happen here. */
  reportedDeployed: boolean;
  /** The disk image's sha256 differs from before the run. */
  bytesChanged: boolean;
  /** Everything that differs from the expectation; empty when the fault was handled as it must be. */
  problems: string[];
  /** Where a secret of the plan was found: must be empty. */
  secretLeaks: string[];
  /** The argv of every command the deploy ran, when a recorder was given. */
  calls: string[][];
  /** The logs the deploy wrote to the share during the run. */
  logs: string[];
  durationMs: number;
}

/** Runs one fault on a fresh disk image and judges the outcome. */
export async function runFault(ctx: FaultContext, c: FaultCase): Promise<FaultOutcome> {
  const w = ctx.world;
  await mkdir(join(w.dir, 'disks'), { recursive: true });
  const disk = await blankDisk(join(w.dir, 'disks', `${c.name}.img`), c.diskBytes);
  try {
    if (c.prepareDisk) await c.prepareDisk(disk);
    const before = await sha256File(disk);
    const logsBefore = new Set(await readdir(join(w.share, 'logs')).catch(() => [] as string[]));
    const expectation = c.expect(ctx, disk);
    const options: DeployOptions = { disk, yes: true, facts: FACTS, scratchDir: w.dir, ...(await c.options?.(ctx, disk)) };
    const plan = parsePlan(c.plan(ctx), `${c.name} plan`);
    const events: DeployEvent[] = [];
    await ctx.recorder?.clear();
    const started = Date.now();
    let error: unknown;
    let returned = false;
    const go = () => deploy(plan, { ...options, events: (e) => events.push(e) });
    try {
      await (ctx.recorder ? ctx.recorder.around(go) : go());
      returned = true;
    } catch (e) {
      error = e;
    }
    const durationMs = Date.now() - started;
    const bytesChanged = (await sha256File(disk)) !== before;
    const logs: string[] = [];
    for (const f of await readdir(join(w.share, 'logs')).catch(() => [] as string[])) if (!logsBefore.has(f)) logs.push(await readFile(join(w.share, 'logs', f), 'utf8'));
    const calls = (await ctx.recorder?.calls()) ?? [];

    const reportedDeployed = returned || events.some((e) => e.type === 'deployed');
    const problems: string[] = [];
    if (returned) problems.push('deploy() returned instead of failing');
    if (events.some((e) => e.type === 'deployed')) problems.push('a deployed event was emitted');
    const last = events[events.length - 1];
    if (last?.type !== 'failed') problems.push(`the last event is ${last?.type ?? 'missing'}, not failed`);
    else {
      if (last.step !== expectation.step) problems.push(`failed at ${last.step}, expected ${expectation.step}: ${last.message}`);
      if (!(expectation.codes as string[]).includes(last.code)) problems.push(`code ${last.code}, expected ${expectation.codes.join(' or ')}: ${last.message}`);
      if (last.diskTouched !== expectation.diskTouched) problems.push(`diskTouched is ${last.diskTouched}, expected ${expectation.diskTouched}`);
      for (const m of expectation.mentions) if (!(typeof m === 'string' ? last.message.includes(m) : m.test(last.message))) problems.push(`the message does not name ${String(m)}: ${last.message}`);
      if (error instanceof Error && error.message !== last.message) problems.push('the thrown error and the failed event differ');
    }
    if (bytesChanged && !expectation.diskTouched) problems.push('the disk was written although the fault is visible before any write');
    if (bytesChanged && last?.type === 'failed' && !last.diskTouched) problems.push('diskTouched is false but the disk bytes changed');
    const attached = await loopsOf(disk);
    if (attached) problems.push(`the disk is still attached as ${attached}`);
    if (c.inspect) problems.push(...(await c.inspect(disk)));

    const secretLeaks = findSecrets(w, {
      events: events.map((e) => JSON.stringify(e)).join('\n'),
      'error message': error instanceof Error ? error.message : String(error ?? ''),
      'error hint': error instanceof ImagepeError ? (error.hint ?? '') : '',
      stderrTail: stderrTailOf(error),
      'share log': logs.join('\n'),
      'command lines': calls.map((argv) => argv.join(' ')).join('\n'),
    });
    return { name: c.name, group: c.group, disk, events, error, reportedDeployed, bytesChanged, problems, secretLeaks, calls, logs, durationMs };
  } finally {
    await rm(disk, { force: true });
    await rm(`${disk}.link`, { force: true });
  }
}

/** Where the plan's secrets appear among the texts given, by name. */
export function findSecrets(w: World, texts: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [what, secret] of Object.entries(w.secrets)) {
    for (const [where, text] of Object.entries(texts)) if (text.includes(secret)) out.push(`the ${what} secret is in the ${where}`);
  }
  return out;
}

/**
 * A disk left by a failed deploy must not boot into what is on it: no boot code in the MBR and
 * no deployed marker on the root filesystem (if one was made at all).
 */
export async function nothingBootable(disk: string): Promise<string[]> {
  const problems: string[] = [];
  const fh = await open(disk, 'r');
  try {
    const mbr = Buffer.alloc(440);
    await fh.read(mbr, 0, 440, 0);
    if (mbr.some((b) => b !== 0)) problems.push('the MBR holds boot code');
  } finally {
    await fh.close();
  }
  await withAttachedImage(disk, async (loop) => {
  const mnt = await mkdtemp(join(disk, '..', 'inspect-'));
  try {
    const root = `${loop}p3`;
    const fs = await run('blkid', ['--probe', '--match-tag', 'TYPE', '--output', 'value', root], { okExitCodes: [0, 2] }).catch(() => undefined);
    if (fs?.stdout.trim() === 'ext4') {
      await run('mount', ['-o', 'ro,noload', root, mnt]);
      try {
        const marker = await readFile(join(mnt, 'var/lib/imagepe/deployed.json'), 'utf8').catch(() => undefined);
        if (marker !== undefined) problems.push('the root holds /var/lib/imagepe/deployed.json');
      } finally {
        await run('umount', [mnt]);
      }
    }
  } finally {
    await rmdir(mnt).catch(() => undefined);
  }
  }, { readOnly: true });
  return problems;
}

export interface FaultFigures {
  injected: number;
  /** Ended as expected: the step, the code, the message, the disk as it must be. */
  handled: number;
  /** Runs that ended with the disk reported deployed: must be 0. */
  deployedWrongly: number;
  /** Runs whose disk changed although the fault is visible before any write: must be 0. */
  disksTouchedWrongly: number;
  /** Runs in which a secret of the plan showed up in events, logs, errors or command lines: must be 0. */
  secretLeaks: number;
  byGroup: Record<string, number>;
  /** Each case that was not handled as it must be, with why. */
  mismatches: string[];
}

/** Runs the fault cases one after another and counts. */
export async function runFaultSeries(ctx: FaultContext, cases: readonly FaultCase[]): Promise<{ figures: FaultFigures; outcomes: FaultOutcome[] }> {
  const f: FaultFigures = { injected: 0, handled: 0, deployedWrongly: 0, disksTouchedWrongly: 0, secretLeaks: 0, byGroup: {}, mismatches: [] };
  const outcomes: FaultOutcome[] = [];
  for (const c of cases) {
    const o = await runFault(ctx, c);
    outcomes.push(o);
    f.injected++;
    f.byGroup[c.group] = (f.byGroup[c.group] ?? 0) + 1;
    if (o.reportedDeployed) f.deployedWrongly++;
    if (o.bytesChanged && !c.expect(ctx, o.disk).diskTouched) f.disksTouchedWrongly++;
    if (o.secretLeaks.length) f.secretLeaks++;
    if (o.problems.length === 0 && o.secretLeaks.length === 0) f.handled++;
    else f.mismatches.push(`${c.name}: ${[...o.problems, ...o.secretLeaks].join('; ')}`);
  }
  return { figures: f, outcomes };
}
