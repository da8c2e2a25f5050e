import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError, ImagepeError } from '../../core/index.js';
import { defineStep, runSteps, skipped, stepNames, type Step } from './index.js';

interface Ctx {
  trail: string[];
}

type Done = { type: 'done'; trail: string };
type Event = { type: string; step?: string; status?: string; detail?: string; diskTouched?: boolean; code?: string; text?: string; done?: number };

const finish = (c: Ctx): Done => ({ type: 'done', trail: c.trail.join(',') });

function record(): { events: Event[]; sink: (e: Event) => void } {
  const events: Event[] = [];
  return { events, sink: (e) => events.push(e) };
}

/** A step that registers a resource whose release is written to the trail. */
function holding(name: string, o: { writesDisk?: boolean; fail?: boolean; holdsLog?: boolean } = {}): Step<Ctx, string> {
  return defineStep({
    name,
    title: name,
    writesDisk: o.writesDisk ?? false,
    async run(ctx: Ctx, io) {
      ctx.trail.push(`made ${name}`);
      io.cleanup.add(`release ${name}`, async () => void ctx.trail.push(`released ${name}`), o.holdsLog ? { holdsLog: true } : {});
      if (o.fail) throw new ImagepeError('COMMAND_FAILED', `${name} broke`);
      return `${name} ok`;
    },
  });
}

describe('the step runner', () => {
  it('announces each step, then the final event, and releases in reverse order', async () => {
    const { events, sink } = record();
    const ctx: Ctx = { trail: [] };
    await runSteps({ steps: [holding('a'), holding('b'), holding('c')], context: ctx, events: sink, finish });
    expect(events.map((e) => `${e.type}${e.step ? ` ${e.step}` : ''}${e.status ? ` ${e.status}` : ''}`)).toEqual([
      'step a started',
      'step a done',
      'step b started',
      'step b done',
      'step c started',
      'step c done',
      'done',
    ]);
    expect(events[1]).toMatchObject({ detail: 'a ok' });
    expect(ctx.trail).toEqual(['made a', 'made b', 'made c', 'released c', 'released b', 'released a']);
    for (const e of events) expect(e).toMatchObject({ imagepe: 1, time: expect.any(String) });
  });

  it('says the disk was touched only once a step that writes it has started', async () => {
    for (const [failAt, touched] of [
      ['read', false],
      ['write', true],
      ['after', true],
    ] as const) {
      const { events, sink } = record();
      const steps = [holding('read', { fail: failAt === 'read' }), holding('write', { writesDisk: true, fail: failAt === 'write' }), holding('after', { fail: failAt === 'after' })];
      await expect(runSteps({ steps, context: { trail: [] }, events: sink, finish })).rejects.toThrow(`${failAt} broke`);
      expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: failAt, code: 'COMMAND_FAILED', diskTouched: touched });
    }
  });

  it('releases everything made before a failure, most recent first, and starts no later step', async () => {
    const { events, sink } = record();
    const ctx: Ctx = { trail: [] };
    await expect(runSteps({ steps: [holding('a'), holding('b', { fail: true }), holding('c')], context: ctx, events: sink, finish })).rejects.toThrow('b broke');
    expect(ctx.trail).toEqual(['made a', 'made b', 'released b', 'released a']);
    expect(events.some((e) => e.step === 'c')).toBe(false);
    expect(events.some((e) => e.type === 'done')).toBe(false);
  });

  it('skips a step that says so before it starts, and one that finds nothing to do', async () => {
    const { events, sink } = record();
    const never = defineStep({ name: 'never', title: 'Never', writesDisk: true, skipIf: () => 'not asked for', run: async () => 'ran' });
    const nothing = defineStep({ name: 'nothing', title: 'Nothing', writesDisk: false, run: async () => skipped('nothing to do') });
    const { events: after, sink: afterSink } = record();
    await runSteps({ steps: [never, nothing], context: { trail: [] }, events: sink, finish });
    expect(events.filter((e) => e.type === 'step')).toEqual([
      expect.objectContaining({ step: 'never', status: 'skipped', detail: 'not asked for' }),
      expect.objectContaining({ step: 'nothing', status: 'started' }),
      expect.objectContaining({ step: 'nothing', status: 'skipped', detail: 'nothing to do' }),
    ]);
    // A skipped writing step never started, so the disk was not touched.
    const failing = holding('fails', { fail: true });
    await expect(runSteps({ steps: [never, failing], context: { trail: [] }, events: afterSink, finish })).rejects.toThrow();
    expect(after[after.length - 1]).toMatchObject({ type: 'failed', step: 'fails', diskTouched: false });
  });

  it('releases strictly before a releasing step is done, and fails that step when a release fails', async () => {
    const ctx: Ctx = { trail: [] };
    const { events, sink } = record();
    const settle = defineStep({ name: 'settle', title: 'Settle', writesDisk: false, releasesResources: true, run: async () => 'settled' });
    await runSteps({ steps: [holding('share', { holdsLog: true }), holding('mount'), settle], context: ctx, events: sink, finish });
    // The mount is gone before settle is done; the share, which holds the log, only after the final event.
    expect(ctx.trail).toEqual(['made share', 'made mount', 'released mount', 'released share']);

    const stuck = defineStep({
      name: 'mount',
      title: 'Mount',
      writesDisk: false,
      async run(c: Ctx, io) {
        io.cleanup.add('unmount', async ({ strict, warn }) => {
          if (strict) throw new ImagepeError('COMMAND_FAILED', 'target is busy');
          warn('could not unmount cleanly');
          c.trail.push('lazy unmount');
        });
      },
    });
    const bad: Ctx = { trail: [] };
    const { events: badEvents, sink: badSink } = record();
    await expect(runSteps({ steps: [stuck, settle], context: bad, events: badSink, finish })).rejects.toThrow('target is busy');
    expect(badEvents.filter((e) => e.step === 'settle').map((e) => e.type + (e.status ? ` ${e.status}` : ''))).toEqual(['step started', 'failed']);
    expect(badEvents).toContainEqual(expect.objectContaining({ type: 'log', level: 'warning', text: 'could not unmount cleanly' }));
    expect(bad.trail).toEqual(['lazy unmount']);
    expect(events.length).toBeGreaterThan(0);
  });

  it('writes the log, with the final event, before it releases where the log goes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imagepe-runner-'));
    try {
      const ctx: Ctx = { trail: [] };
      const share = defineStep({
        name: 'share',
        title: 'Share',
        writesDisk: false,
        async run(c: Ctx, io) {
          io.cleanup.add('release the share', async () => void c.trail.push(`logs: ${(await readdir(join(dir, 'logs')).catch(() => [])).length}`), { holdsLog: true });
        },
      });
      const outcome = await runSteps({ steps: [share, holding('work')], context: ctx, finish, logDestination: () => ({ dir, name: 'host/1', shown: `to ${dir}` }) });
      expect(ctx.trail).toEqual(['made work', 'released work', 'logs: 1']);
      expect(outcome.logFile).toMatch(new RegExp(`^${dir}/logs/host_1-.*\\.log$`));
      const lines = (await readFile(outcome.logFile!, 'utf8')).trim().split('\n');
      expect(JSON.parse(lines[lines.length - 1]!)).toMatchObject({ type: 'done', trail: 'made work,released work' });

      // A failure's log carries the failed event and the hint.
      const failed = await runSteps({ steps: [defineStep({ name: 'x', title: 'X', writesDisk: false, run: async () => { throw new ImagepeError('REFUSED', 'no', { hint: 'try yes' }); } })], context: { trail: [] }, finish, logDestination: () => ({ dir, name: 'fail', shown: 'there' }) }).catch((e: Error) => e);
      expect(failed).toBeInstanceOf(ImagepeError);
      const failLog = (await readdir(join(dir, 'logs'))).find((n) => n.startsWith('fail-'))!;
      const text = await readFile(join(dir, 'logs', failLog), 'utf8');
      expect(text).toContain('"type":"failed"');
      expect(text).toContain('# hint: try yes');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('warns, and carries on, when the log cannot be written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imagepe-runner-'));
    try {
      // A file where the logs folder should be: no folder can be made there.
      await writeFile(join(dir, 'logs'), 'not a folder\n');
      const { events, sink } = record();
      const outcome = await runSteps({ steps: [holding('a')], context: { trail: [] }, events: sink, finish, logDestination: () => ({ dir, name: 'x', shown: 'to nowhere' }) });
      expect(outcome.logFile).toBeUndefined();
      expect(events[events.length - 1]).toMatchObject({ type: 'log', level: 'warning', text: expect.stringMatching(/^the log could not be written to nowhere: /) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('on cancel, stops the running step, releases what it made and starts no other step', async () => {
    const controller = new AbortController();
    const ctx: Ctx = { trail: [] };
    const { events, sink } = record();
    const waits = defineStep({
      name: 'waits',
      title: 'Waits',
      writesDisk: true,
      async run(c: Ctx, io) {
        io.cleanup.add('release the mount', async () => void c.trail.push('released mount'));
        try {
          await sleep(10_000, undefined, { signal: io.signal });
        } catch {
          throw new CancelledError('waiting');
        }
      },
    });
    const run = runSteps({ steps: [holding('a'), waits, holding('never')], context: ctx, events: sink, signal: controller.signal, finish });
    setTimeout(() => controller.abort(), 50);
    await expect(run).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: 'waits', code: 'CANCELLED', diskTouched: true });
    expect(ctx.trail).toEqual(['made a', 'released mount', 'released a']);
    expect(events.some((e) => e.step === 'never')).toBe(false);
  });

  it('passes at most four progress reports a second per phase, and always the last', async () => {
    const { events, sink } = record();
    const busy = defineStep({
      name: 'busy',
      title: 'Busy',
      writesDisk: false,
      async run(_c: Ctx, io) {
        for (let done = 1; done <= 1000; done++) io.progress({ phase: 'Working', unit: 'files', done, total: 1000 });
      },
    });
    await runSteps({ steps: [busy], context: { trail: [] }, events: sink, finish });
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeLessThanOrEqual(3);
    expect(progress[0]).toMatchObject({ step: 'busy', phase: 'Working', unit: 'files', done: 1, total: 1000 });
    expect(progress[progress.length - 1]).toMatchObject({ done: 1000 });
  });

  it('lists the names of a step list as a tuple, in order', () => {
    expect(stepNames([holding('x'), holding('y')] as const)).toEqual(['x', 'y']);
  });
});
