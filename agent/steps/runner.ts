import { CancelledError, ImagepeError, ProgressGate, progressFields, stderrTailOf, type EventSink, type Progress, type RunOptions } from '../../core/index.js';
import { stampEvent, type Stamped } from '../events/line.js';
import { CleanupStack } from './cleanup.js';
import { RunLog } from './run-log.js';
import type { Step, StepIO } from './step.js';

/** The events the runner itself makes, before the version and time are stamped on. */
export type RunnerEventBody<N extends string> =
  | { type: 'step'; step: N; status: 'started' | 'done' | 'skipped'; detail?: string }
  | ({ type: 'progress'; step: N } & Progress)
  | { type: 'log'; level: 'info' | 'warning'; text: string }
  | { type: 'failed'; step: N; code: string; message: string; stderrTail: string; diskTouched: boolean };

/** Where a run's log is written when it ends. */
export interface LogDestination {
  /** The folder logs/ is made in. */
  dir: string;
  /** The log's name, before its time stamp: the host name, the disk. */
  name: string;
  /** How a warning names the place when the log cannot be written: "to smb://server/share/logs". */
  shown: string;
}

export interface RunSpec<C, N extends string, F extends { type: string }> {
  steps: readonly Step<C, N>[];
  context: C;
  events?: ((event: Stamped<RunnerEventBody<N> | F>) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** The event after the last step (`deployed`, `captured`), made from the finished context. */
  finish(ctx: C, durationMs: number): F;
  /** Where the log goes; undefined when there is nowhere to write it (no share, a read-only medium). */
  logDestination?(ctx: C): LogDestination | undefined;
}

export interface RunOutcome {
  durationMs: number;
  /** Where the log was written, if it was. */
  logFile: string | undefined;
}

// Progress goes out at most four times a second per step and phase; the last report always does.
const PROGRESS_INTERVAL_MS = 250;
const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;

/**
 * Runs a list of steps over one context. The runner owns the bookkeeping every run shares:
 * `step` started/done/skipped events; throttled `progress`; `failed` with the step under way and
 * `diskTouched`, true once a step that writes the disk has started; the cleanup stack, unwound
 * in reverse order on success, failure and cancel; and the log, written where the flow says
 * after the final or failed event, before the resource it goes to is released.
 *
 * Throws whatever a step threw (after announcing it as `failed`); a cancel through `signal`
 * stops the step under way (its tools take the signal) and starts no further step.
 */
export async function runSteps<C, N extends string, F extends { type: string }>(spec: RunSpec<C, N, F>): Promise<RunOutcome> {
  const started = Date.now();
  const sink = spec.events ?? (() => {});
  const log = new RunLog();
  const emit = (body: RunnerEventBody<N> | F): void => {
    const event = stampEvent(body) as unknown as Stamped<RunnerEventBody<N> | F>;
    log.add(event);
    sink(event);
  };
  const warn = (text: string) => emit({ type: 'log', level: 'warning', text });
  const cleanup = new CleanupStack(warn);
  const gate = new ProgressGate({ everyMs: PROGRESS_INTERVAL_MS });
  const { signal, context: ctx } = spec;
  let current = spec.steps[0]!.name;
  let touched = false;

  const io = (step: N): StepIO => {
    const progress = (p: Progress) => {
      if (gate.pass(`${step}/${p.phase}`, p)) emit({ type: 'progress', step, ...progressFields(p) });
    };
    const events: EventSink = (e) => {
      if (e.type === 'progress') progress(e);
      else if (e.type === 'message' && e.level === 'warning') warn(e.text);
    };
    return {
      signal,
      cleanup,
      runOpts: (what: string, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): RunOptions => ({ what, timeoutMs, ...(signal ? { signal } : {}) }),
      info: (text) => emit({ type: 'log', level: 'info', text }),
      warn,
      progress,
      events,
    };
  };

  const writeLog = async (): Promise<string | undefined> => {
    const where = spec.logDestination?.(ctx);
    if (!where) return undefined;
    try {
      return await log.writeTo(where.dir, where.name);
    } catch (e) {
      // A read-only share is normal; the events went to the consoles anyway.
      warn(`the log could not be written ${where.shown}: ${(e as Error).message}`);
      return undefined;
    }
  };

  try {
    for (const step of spec.steps) {
      current = step.name;
      if (signal?.aborted) throw new CancelledError(`the run, before ${step.name},`);
      const reason = step.skipIf?.(ctx);
      if (reason !== undefined) {
        emit({ type: 'step', step: step.name, status: 'skipped', detail: reason });
        continue;
      }
      if (step.writesDisk) touched = true;
      const startDetail = step.describe?.(ctx);
      emit({ type: 'step', step: step.name, status: 'started', ...(startDetail ? { detail: startDetail } : {}) });
      const end = await step.run(ctx, io(step.name));
      if (step.releasesResources) await cleanup.unwind({ strict: true });
      if (end && typeof end === 'object') emit({ type: 'step', step: step.name, status: 'skipped', detail: end.skipped });
      else emit({ type: 'step', step: step.name, status: 'done', ...(end ? { detail: end } : {}) });
    }
    // Whatever no step let go of goes now, before the final event; the log's destination stays.
    await cleanup.unwind({ strict: false });
    const durationMs = Date.now() - started;
    emit(spec.finish(ctx, durationMs));
    const logFile = await writeLog();
    await cleanup.unwind({ strict: false, includeLog: true });
    return { durationMs, logFile };
  } catch (e) {
    emit({
      type: 'failed',
      step: current,
      code: (e as { code?: string }).code ?? 'INTERNAL',
      message: e instanceof Error ? e.message : String(e),
      stderrTail: stderrTailOf(e),
      diskTouched: touched,
    });
    if (e instanceof ImagepeError && e.hint) log.note(`hint: ${e.hint}`);
    await cleanup.unwind({ strict: false });
    await writeLog();
    await cleanup.unwind({ strict: false, includeLog: true });
    throw e;
  }
}

/** A context value a later step needs from an earlier one; a missing one is a bug in the step list. */
export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not known yet: a step ran before the one that finds it`);
  return value;
}
