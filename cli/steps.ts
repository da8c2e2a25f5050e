import { Listr } from 'listr2';
import { DEPLOY_STEPS, type AgentStep, type DeployEvent, type DeployEventSink } from '../agent/deploy/events.js';
import { progressLine } from './progress.js';

const TITLES: Record<AgentStep, string> = {
  plan: 'Plan loaded',
  disk: 'Disk chosen',
  share: 'Share mapped',
  check: 'Image checked',
  partition: 'Partitioned',
  format: 'Formatted',
  apply: 'Applied',
  specialize: 'Specialized',
  bootloader: 'Bootloader',
  verify: 'Verified',
  source: 'Source found',
  generalize: 'Generalized',
  capture: 'Captured',
};

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
 * Runs a job that reports deploy steps and renders them: one listr2 task per step on a terminal
 * (with the running step's progress bar), one line per step and per tenth of progress otherwise,
 * and the event lines themselves with --json.
 */
export async function withSteps<T>(json: boolean, plain: boolean, job: (events: DeployEventSink) => Promise<T>, stepNames: readonly AgentStep[] = DEPLOY_STEPS): Promise<T> {
  if (json) return job((e) => process.stdout.write(`${JSON.stringify(e)}\n`));
  if (plain || !process.stderr.isTTY) return job(plainSink());

  const steps = new Map<AgentStep, Deferred>(stepNames.map((s) => [s, deferred()]));
  const outputs = new Map<AgentStep, (text: string) => void>();
  const warnings: string[] = [];
  let running: AgentStep | undefined;
  let lastDraw = 0;
  const sink: DeployEventSink = (e: DeployEvent) => {
    if (e.type === 'step') {
      if (e.status === 'started') running = e.step;
      else steps.get(e.step)?.resolve(e.status === 'skipped' ? { skipped: e.detail ?? 'skipped' } : e.detail ? { detail: e.detail } : {});
    } else if (e.type === 'progress') {
      const now = Date.now();
      if (now - lastDraw < 100 && e.done !== e.total) return;
      lastDraw = now;
      outputs.get(e.step)?.(progressLine({ type: 'progress', operation: e.step, phase: e.phase, unit: e.unit, done: e.done, ...(e.total !== undefined ? { total: e.total } : {}), ...(e.rate !== undefined ? { rate: e.rate } : {}), ...(e.etaSeconds !== undefined ? { etaSeconds: e.etaSeconds } : {}) }, 30));
    } else if (e.type === 'failed') {
      steps.get(e.step)?.reject(new Error(e.message.split('\n')[0]));
    } else if (e.type === 'log' && e.level === 'warning') warnings.push(e.text);
  };

  const list = new Listr(
    stepNames.map((step) => ({
      title: TITLES[step],
      task: async (_ctx: unknown, task: { output: string; title: string; skip(msg?: string): void }) => {
        outputs.set(step, (text) => {
          task.output = text;
        });
        const r = await steps.get(step)!.promise;
        if (r.skipped) task.skip(`${TITLES[step]}: ${r.skipped}`);
        else if (r.detail) task.title = `${TITLES[step]}: ${r.detail}`;
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

function plainSink(): DeployEventSink {
  const decile = new Map<string, number>();
  return (e) => {
    if (e.type === 'step') {
      if (e.status === 'started') process.stderr.write(`==> ${TITLES[e.step]}...\n`);
      else process.stderr.write(`    ${e.status === 'skipped' ? 'skipped' : 'done'}${e.detail ? `: ${e.detail}` : ''}\n`);
    } else if (e.type === 'progress' && e.total) {
      const key = `${e.step}/${e.phase}`;
      const d = Math.floor((e.done / e.total) * 10);
      if ((decile.get(key) ?? -1) >= d) return;
      decile.set(key, d);
      process.stderr.write(`    ${progressLine({ type: 'progress', operation: e.step, phase: e.phase, unit: e.unit, done: e.done, total: e.total, ...(e.rate !== undefined ? { rate: e.rate } : {}), ...(e.etaSeconds !== undefined ? { etaSeconds: e.etaSeconds } : {}) }, 20)}\n`);
    } else if (e.type === 'log') {
      process.stderr.write(`    ${e.level}: ${e.text}\n`);
    } else if (e.type === 'failed') {
      process.stderr.write(`failed at ${e.step}${e.diskTouched ? '' : ' (the disk was not touched)'}\n`);
    }
  };
}
