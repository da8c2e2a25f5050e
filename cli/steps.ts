import { Listr } from 'listr2';
import { ProgressGate } from '../core/index.js';
import { deploySteps } from '../agent/deploy/index.js';
import type { RunEvent, RunEventSink } from '../agent/events/index.js';
import { progressLine } from './progress.js';

/** A step as the CLI lists it: its name in the events, its title on the screen. */
type ListedStep = { readonly name: string; readonly title: string };

interface Deferred {
  promise: Promise<{ skipped?: string; detail?: string }>;
  resolve(v: { skipped?: string; detail?: string }): void;
  reject(e: unknown): void;
}

function deferred(): Deferred {
  let resolve!: Deferred['resolve'];
  let reject!: Deferred['reject'];
  const promise = new Promise<{ skipped?: string; detail?: string }>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * Runs a job that reports a run's steps (a deploy's by default) and renders them: one listr2 task
 * per step on a terminal, titled from the step list (with the running step's progress bar), one
 * line per step and per tenth of progress otherwise, and the event lines themselves with --json.
 */
export async function withSteps<T>(json: boolean, plain: boolean, job: (events: RunEventSink) => Promise<T>, stepList: readonly ListedStep[] = deploySteps): Promise<T> {
  const titles = new Map(stepList.map((s) => [s.name, s.title]));
  const title = (name: string) => titles.get(name) ?? name;
  if (json) return job((e) => process.stdout.write(`${JSON.stringify(e)}\n`));
  if (plain || !process.stderr.isTTY) return job(plainSink(title));

  const steps = new Map<string, Deferred>(stepList.map((s) => [s.name, deferred()]));
  const outputs = new Map<string, (text: string) => void>();
  const warnings: string[] = [];
  let running: string | undefined;
  // The bar redraws at most ten times a second, whichever phase reports.
  const gate = new ProgressGate({ everyMs: 100 });
  const sink: RunEventSink = (e: RunEvent) => {
    if (e.type === 'step') {
      if (e.status === 'started') running = e.step;
      else steps.get(e.step)?.resolve(e.status === 'skipped' ? { skipped: e.detail ?? 'skipped' } : e.detail ? { detail: e.detail } : {});
    } else if (e.type === 'progress') {
      if (!gate.pass('bar', e)) return;
      outputs.get(e.step)?.(progressLine(e, 30));
    } else if (e.type === 'failed') {
      steps.get(e.step)?.reject(new Error(e.message.split('\n')[0]));
    } else if (e.type === 'log' && e.level === 'warning') warnings.push(e.text);
  };

  const list = new Listr(
    stepList.map(({ name: step }) => ({
      title: title(step),
      task: async (_ctx: unknown, task: { output: string; title: string; skip(msg?: string): void }) => {
        outputs.set(step, (text) => {
          task.output = text;
        });
        const r = await steps.get(step)!.promise;
        if (r.skipped) task.skip(`${title(step)}: ${r.skipped}`);
        else if (r.detail) task.title = `${title(step)}: ${r.detail}`;
      },
      rendererOptions: { outputBar: 1, persistentOutput: false },
    })),
    { rendererOptions: { collapseErrors: false, collapseSkips: false }, exitOnError: true, registerSignalListeners: false },
  );
  const jobPromise = job(sink);
  // A failure before any step started (no failed event) must still stop the list.
  jobPromise.catch((e) => steps.get(running ?? 'plan')!.reject(e));
  await list.run().catch(() => undefined);
  const result = await jobPromise;
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  return result;
}

function plainSink(title: (step: string) => string): RunEventSink {
  const tenths = new ProgressGate({ tenths: true });
  return (e) => {
    if (e.type === 'step') {
      if (e.status === 'started') process.stderr.write(`==> ${title(e.step)}...\n`);
      else process.stderr.write(`    ${e.status === 'skipped' ? 'skipped' : 'done'}${e.detail ? `: ${e.detail}` : ''}\n`);
    } else if (e.type === 'progress' && e.total) {
      if (!tenths.pass(`${e.step}/${e.phase}`, e)) return;
      process.stderr.write(`    ${progressLine(e, 20)}\n`);
    } else if (e.type === 'log') {
      process.stderr.write(`    ${e.level}: ${e.text}\n`);
    } else if (e.type === 'failed') {
      process.stderr.write(`failed at ${e.step}${e.diskTouched ? '' : ' (the disk was not touched)'}\n`);
    }
  };
}
