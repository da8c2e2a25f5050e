import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { stat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MulticastReceiveError, receiveMulticast, type MulticastReception } from '../agent/deploy/multicast.js';
import * as imaging from '../imaging/index.js';
import { removeDir, snapshotTree, tempDir } from '../test-support/tree.js';
import { serveMulticastSessions, startMulticastSession, type MulticastSession, type MulticastSessionOptions, type MulticastSessions } from './multicast.js';
import type { UdpSenderEvent } from './udpcast-log.js';

/**
 * Multicast sessions with no packet leaving the host: a namespace holds a Linux bridge, and the
 * sender's namespace and one namespace per receiver join it by veth pairs (made in beforeAll,
 * removed in afterAll). udp-sender and each udp-receiver run in their namespace through
 * `ip netns exec`; each receiver's stream goes into imaging.applyStream, whose wimlib runs in
 * this process's namespace (it needs no network).
 */
const exec = promisify(execFile);
const id = `${process.pid % 100000}`;
const BRIDGE_NS = `ipe-mcb-${id}`;
const SENDER_NS = `ipe-mcs-${id}`;
const RECEIVER_NS = [1, 2, 3].map((i) => `ipe-mcr${i}-${id}`);
const NET = '10.231.9';
const WAIT_MS = 15_000;

let work: string;
let src: string;
let wimPath: string;
let wimBytes: number;
let sourceFiles: Record<string, { size?: number; sha256?: string }>;
let targetN = 0;
const sessions: Array<MulticastSession | MulticastSessions> = [];
const receptions: MulticastReception[] = [];
const figures: string[] = [];

async function ip(...args: string[]): Promise<void> {
  await exec('ip', args, { timeout: 10_000 });
}

/** Rejects when `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function session(options: Partial<MulticastSessionOptions> & { portbase: number; minReceivers: number; maxWaitSeconds: number }, events: Array<{ at: number; event: UdpSenderEvent }> = []): MulticastSession {
  const s = startMulticastSession({ file: wimPath, interface: 'eth0', netns: SENDER_NS, onEvent: (event) => events.push({ at: Date.now(), event }), ...options });
  sessions.push(s);
  return s;
}

/** One machine: udp-receiver in namespace `ns` into applyStream into an empty directory of its own. */
async function machine(ns: string, portbase: number, timeouts = { startTimeoutSeconds: 30, receiveTimeoutSeconds: 15 }) {
  const target = join(work, `target-${++targetN}`);
  await mkdir(target);
  const reception = receiveMulticast({ interface: 'eth0', netns: ns, portbase, ...timeouts });
  receptions.push(reception);
  let received = 0;
  const applied = imaging.applyStream(reception.stream, 1, target, { from: `the multicast session on port ${portbase}`, idleTimeoutMs: 60_000, onBytes: (n) => (received = n) });
  applied.catch(() => {});
  return { target, reception, applied, received: () => received };
}

/** Path → size and sha256 of every file of a tree. */
async function filesOf(root: string): Promise<Record<string, { size?: number; sha256?: string }>> {
  const out: Record<string, { size?: number; sha256?: string }> = {};
  for (const [path, e] of Object.entries(await snapshotTree(root))) if (e.type === 'file') out[path] = { size: e.size, sha256: e.sha256 };
  return out;
}

beforeAll(async () => {
  work = await tempDir('multicast');
  src = join(work, 'src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await mkdir(join(src, 'var/lib/data'), { recursive: true });
  await writeFile(join(src, 'etc/hostname'), 'reference\n');
  await writeFile(join(src, 'etc/empty'), '');
  // Random bytes, so the WIM is as big as the tree: about 7 MiB.
  await writeFile(join(src, 'var/lib/data/a.bin'), randomBytes(3 * 1024 * 1024));
  await writeFile(join(src, 'var/lib/data/b.bin'), randomBytes(2 * 1024 * 1024 + 12345));
  await writeFile(join(src, 'c.bin'), randomBytes(2 * 1024 * 1024 - 1));
  wimPath = join(work, 'image.wim');
  await imaging.capture(src, wimPath, { pipable: true, compression: 'xpress', name: 'multicast' });
  wimBytes = (await stat(wimPath)).size;
  sourceFiles = await filesOf(src);

  await ip('netns', 'add', BRIDGE_NS);
  await ip('-n', BRIDGE_NS, 'link', 'add', 'br0', 'type', 'bridge');
  await ip('-n', BRIDGE_NS, 'link', 'set', 'br0', 'up');
  const members = [SENDER_NS, ...RECEIVER_NS];
  for (const [i, ns] of members.entries()) {
    await ip('netns', 'add', ns);
    await ip('-n', BRIDGE_NS, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await ip('-n', BRIDGE_NS, 'link', 'set', `v${i}`, 'master', 'br0', 'up');
    // udpcast finds its peers by broadcast: the address needs its broadcast address (brd +).
    await ip('-n', ns, 'addr', 'add', `${NET}.${i + 1}/24`, 'brd', '+', 'dev', 'eth0');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([...sessions.map((s) => s.stop()), ...receptions.map((r) => r.stop())]);
  // Deleting a namespace deletes its end of each veth pair, and with it the other end.
  for (const ns of [SENDER_NS, ...RECEIVER_NS, BRIDGE_NS]) await ip('netns', 'del', ns).catch(() => undefined);
  if (work) await removeDir(work);
  if (figures.length > 0) process.stderr.write(`multicast figures (WIM ${wimBytes} bytes):\n${figures.map((f) => `  ${f}`).join('\n')}\n`);
}, 60_000);

describe('multicast sessions on a network of namespaces', () => {
  it('sends the image once to three machines, which each apply the exact files', async () => {
    const s = session({ portbase: 9000, minReceivers: 3, maxWaitSeconds: 30 });
    const machines = await Promise.all(RECEIVER_NS.map((ns) => machine(ns, 9000)));
    const started = Date.now();
    const applied = await within(Promise.all(machines.map((m) => m.applied)), 60_000, 'the three applies');
    const result = await within(s.done, WAIT_MS, 'the end of the session');
    const elapsed = Date.now() - started;

    for (const [i, m] of machines.entries()) {
      expect(await filesOf(m.target)).toEqual(sourceFiles);
      expect(applied[i]).toMatchObject({ bytes: wimBytes });
      expect(await within(m.reception.done, WAIT_MS, 'the end of a reception')).toMatchObject({ bytes: wimBytes, sender: `${NET}.1` });
    }
    expect(result).toMatchObject({ outcome: 'sent', finished: 3, dropped: 0, fileBytes: wimBytes, bytesAcknowledged: wimBytes });
    expect(result.receivers.map((r) => r.address).sort()).toEqual([`${NET}.2`, `${NET}.3`, `${NET}.4`]);
    // Three machines received the file; the wire carried it about once.
    expect(result.interfaceTxBytes).toBeGreaterThan(wimBytes);
    expect(result.interfaceTxBytes!).toBeLessThan(1.5 * wimBytes);
    expect(s.state).toBe('done');
    figures.push(
      `3 receivers: ${elapsed} ms from the receivers' start to the last apply, transfer ${result.transferMs} ms; ` +
        `sender tx ${result.interfaceTxBytes} bytes (${(result.interfaceTxBytes! / wimBytes).toFixed(2)} × the file), ` +
        `${result.retransmittedBlocks} blocks retransmitted; received ${3 * wimBytes} bytes in all`,
    );
  }, 90_000);

  it('starts max-wait seconds after the first machine joined when fewer than minReceivers come, and both finish', async () => {
    const events: Array<{ at: number; event: UdpSenderEvent }> = [];
    const s = session({ portbase: 9002, minReceivers: 3, maxWaitSeconds: 3 }, events);
    const machines = await Promise.all(RECEIVER_NS.slice(0, 2).map((ns) => machine(ns, 9002)));
    await within(Promise.all(machines.map((m) => m.applied)), 60_000, 'the two applies');
    const result = await within(s.done, WAIT_MS, 'the end of the session');

    for (const m of machines) expect(await filesOf(m.target)).toEqual(sourceFiles);
    expect(result).toMatchObject({ outcome: 'sent', finished: 2, dropped: 0 });
    const firstJoin = events.find((e) => e.event.kind === 'joined')!.at;
    const start = events.find((e) => e.event.kind === 'started')!.at;
    // udp-sender counts whole seconds and looks every 2 s.
    expect(start - firstJoin).toBeGreaterThanOrEqual(2_000);
    expect(start - firstJoin).toBeLessThan(3_000 + 2_000 + 1_000);
    figures.push(`2 of 3 receivers, max-wait 3 s: transfer started ${start - firstJoin} ms after the first joined`);
  }, 90_000);

  it('drops a machine killed midway after a bounded time; the others finish and its apply fails with the reason, its target left empty', async () => {
    const events: Array<{ at: number; event: UdpSenderEvent }> = [];
    // Slowed to about 6 s for the file, so the kill lands in the middle of the transfer.
    const s = session({ portbase: 9004, minReceivers: 3, maxWaitSeconds: 30, maxBitrate: '10m' }, events);
    const [victim, ...others] = await Promise.all(RECEIVER_NS.map((ns) => machine(ns, 9004)));
    const deadline = Date.now() + 30_000;
    while (victim!.received() < wimBytes / 4) {
      if (Date.now() > deadline) throw new Error('the transfer did not reach a quarter of the file within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const killedAt = Date.now();
    const killedAtBytes = victim!.received();
    process.kill(victim!.reception.pid!, 'SIGKILL');

    const error = await within(victim!.applied.then(() => undefined, (e: unknown) => e), WAIT_MS, 'the failure of the killed machine');
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/receiving the image by multicast on eth0, port 9004: udp-receiver was killed by SIGKILL/);
    const cause = await victim!.reception.done.then(() => undefined, (e: unknown) => e);
    expect(cause).toBeInstanceOf(MulticastReceiveError);
    expect(cause).toMatchObject({ reason: 'killed', code: 'COMMAND_FAILED', hint: expect.stringMatching(/over HTTP/) });
    expect(await readdir(victim!.target)).toEqual([]);

    // The default drop (30 unanswered requests) holds the others about 20 s.
    await within(Promise.all(others.map((m) => m.applied)), 60_000, 'the applies of the machines that were not killed');
    const finishedAt = Date.now();
    for (const m of others) expect(await filesOf(m.target)).toEqual(sourceFiles);
    const result = await within(s.done, WAIT_MS, 'the end of the session');
    expect(result).toMatchObject({ outcome: 'sent', finished: 2, dropped: 1 });
    const droppedAt = events.find((e) => e.event.kind === 'dropped')!.at;
    figures.push(`a receiver killed at ${killedAtBytes} bytes: dropped ${droppedAt - killedAt} ms after the kill; the others finished ${finishedAt - killedAt} ms after it`);
  }, 120_000);

  it('serves session after session: a machine that comes after one ended gets the next', async () => {
    const served = serveMulticastSessions({ file: wimPath, interface: 'eth0', netns: SENDER_NS, portbase: 9006, minReceivers: 1, maxWaitSeconds: 1 });
    sessions.push(served);
    const first = await machine(RECEIVER_NS[0]!, 9006);
    await within(first.applied, 60_000, 'the first machine');
    await within(first.reception.done, WAIT_MS, 'the first reception');
    const second = await machine(RECEIVER_NS[1]!, 9006);
    await within(second.applied, 60_000, 'the second machine');
    for (const m of [first, second]) expect(await filesOf(m.target)).toEqual(sourceFiles);

    const results = await within(served.stop(), WAIT_MS, 'the stop of the sessions');
    expect(results.filter((r) => r.outcome === 'sent').map((r) => r.finished)).toEqual([1, 1]);
    expect(results[results.length - 1]!.outcome).toBe('stopped');
    expect(served.current).toBeUndefined();
  }, 90_000);

  it('fails a machine whose session never comes at apply, with the reason and a hint, its target left empty', async () => {
    const lonely = await machine(RECEIVER_NS[0]!, 9008, { startTimeoutSeconds: 3, receiveTimeoutSeconds: 3 });
    const error = await within(lonely.applied.then(() => undefined, (e: unknown) => e), WAIT_MS, 'the failure');
    expect(error).toBeInstanceOf(MulticastReceiveError);
    expect(error).toMatchObject({ reason: 'no-sender', message: expect.stringContaining('no multicast session answered within 3 s'), hint: expect.stringMatching(/UDP ports 9008 and 9009.*over HTTP/) });
    expect(await readdir(lonely.target)).toEqual([]);
  }, 30_000);

  it('fails the machines of a session stopped in the middle once the sender is silent for the receive timeout', async () => {
    const s = session({ portbase: 9010, minReceivers: 2, maxWaitSeconds: 30, maxBitrate: '10m' });
    const machines = await Promise.all(RECEIVER_NS.slice(0, 2).map((ns) => machine(ns, 9010, { startTimeoutSeconds: 30, receiveTimeoutSeconds: 3 })));
    const deadline = Date.now() + 30_000;
    while (machines[0]!.received() < wimBytes / 4) {
      if (Date.now() > deadline) throw new Error('the transfer did not reach a quarter of the file within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    await within(s.stop(), WAIT_MS, 'the stop of the session');
    expect(await s.done).toMatchObject({ outcome: 'stopped' });
    for (const m of machines) {
      const error = await within(m.reception.done.then(() => undefined, (e: unknown) => e), WAIT_MS, 'the failure of a machine');
      expect(error).toMatchObject({ reason: 'sender-silent', message: expect.stringMatching(/the sender went silent for 3 s after/) });
      await expect(m.applied).rejects.toThrow(/the sender went silent/);
      expect(await readdir(m.target)).toEqual([]);
    }
  }, 60_000);
});
