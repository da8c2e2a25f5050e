import { CommandFailedError, CommandTimeoutError, ImagepeError } from '../../core/index.js';
import { DeployLog } from './log.js';

type StepBody<S> = { type: 'step'; step: S; status: 'started' | 'done' | 'skipped'; detail?: string };
type FailedBody<S> = { type: 'failed'; step: S; code: string; message: string; stderrTail: string; diskTouched: boolean };
type LogBody = { type: 'log'; level: 'info' | 'warning'; text: string };

/**
 * The step bookkeeping a deploy and a capture share: every event goes to the log and to the
 * caller's sink; the step under way and whether the disk has been written are kept, so a
 * failure is announced with both.
 */
/** A progress report as the runners' tools give it; unit defaults to bytes. */
export interface ProgressReport {
  phase: string;
  done: number;
  total?: number | undefined;
  rate?: number | undefined;
  etaSeconds?: number | undefined;
  unit?: 'bytes' | 'files' | 'images' | 'parts' | undefined;
}

// Progress goes out at most four times a second per step and phase; the last report always does.
const PROGRESS_INTERVAL_MS = 250;

/**
 * The step bookkeeping a deploy and a capture share: every event goes to the log and to the
 * caller's sink; the step under way and whether the disk has been written are kept, so a
 * failure is announced with both. The methods are bound, so a runner can destructure them.
 */
export class StepReporter<S extends string, B extends { type: string }, E> {
  readonly log = new DeployLog();
  private current: S;
  private readonly lastProgress = new Map<string, number>();
  /** Set once the first byte of the disk (the target, or the reference for a capture) is written. */
  touched = false;

  constructor(
    private readonly make: (body: B) => E,
    private readonly sink: (event: E) => void,
    first: S,
  ) {
    this.current = first;
  }

  readonly emit = (body: B): void => {
    const e = this.make(body);
    this.log.add(e as Parameters<DeployLog['add']>[0]);
    this.sink(e);
  };

  readonly begin = (step: S, detail?: string): void => {
    this.current = step;
    this.emit({ type: 'step', step, status: 'started', ...(detail ? { detail } : {}) } as StepBody<S> as unknown as B);
  };

  readonly end = (step: S, detail?: string): void => {
    this.emit({ type: 'step', step, status: 'done', ...(detail ? { detail } : {}) } as StepBody<S> as unknown as B);
  };

  readonly skip = (step: S, detail: string): void => {
    this.emit({ type: 'step', step, status: 'skipped', detail } as StepBody<S> as unknown as B);
  };

  readonly warn = (text: string): void => {
    this.emit({ type: 'log', level: 'warning', text } as LogBody as unknown as B);
  };

  /** A `progress` event for the step, throttled per step and phase. */
  readonly progress = (step: S, p: ProgressReport): void => {
    const now = Date.now();
    const key = `${step}/${p.phase}`;
    if (p.done !== p.total && now - (this.lastProgress.get(key) ?? 0) < PROGRESS_INTERVAL_MS) return;
    this.lastProgress.set(key, now);
    this.emit({
      type: 'progress',
      step,
      unit: p.unit ?? 'bytes',
      phase: p.phase,
      done: p.done,
      ...(p.total !== undefined ? { total: p.total } : {}),
      ...(p.rate !== undefined ? { rate: p.rate } : {}),
      ...(p.etaSeconds !== undefined ? { etaSeconds: p.etaSeconds } : {}),
    } as unknown as B);
  };

  /** Announces `failed` at the step under way; the error's hint goes into the log. */
  readonly fail = (e: unknown): void => {
    const message = e instanceof Error ? e.message : String(e);
    this.emit({ type: 'failed', step: this.current, code: (e as { code?: string }).code ?? 'INTERNAL', message, stderrTail: stderrTailOf(e), diskTouched: this.touched } as FailedBody<S> as unknown as B);
    if (e instanceof ImagepeError && e.hint) this.log.note(`hint: ${e.hint}`);
  };
}

/** The stderr tail of the failing command, looking through causes (wimlib errors wrap it). */
export function stderrTailOf(e: unknown): string {
  for (let cur: unknown = e, i = 0; cur && i < 5; cur = (cur as { cause?: unknown }).cause, i++) {
    if (cur instanceof CommandFailedError || cur instanceof CommandTimeoutError) return cur.stderrTail;
  }
  return '';
}

