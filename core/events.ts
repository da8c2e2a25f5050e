/**
 * Progress is data: library code emits typed events and never prints; the CLI renders them
 * (listr2 bars on a terminal, JSON lines with --json) and the agent forwards them to the serial
 * console. Every event has a `type`; the rest of its shape depends on it.
 */
export interface ProgressEvent {
  type: 'progress';
  /** The operation this belongs to: "capture", "apply", "export", ... */
  operation: string;
  /** What the tool is doing right now, in its own words: "Archiving file data". */
  phase: string;
  unit: 'bytes' | 'files' | 'images' | 'parts';
  done: number;
  total: number;
  /** Units per second, smoothed; absent until two samples exist. */
  rate?: number;
  etaSeconds?: number;
}

export interface MessageEvent {
  type: 'message';
  operation: string;
  level: 'info' | 'warning';
  text: string;
}

export interface StepEvent {
  type: 'step';
  operation: string;
  step: string;
  status: 'started' | 'done' | 'skipped';
  detail?: string;
}

export type ImagepeEvent = ProgressEvent | MessageEvent | StepEvent;
export type EventSink = (event: ImagepeEvent) => void;

export const ignoreEvents: EventSink = () => {};

/**
 * Turns (done, total) samples into a smoothed rate and an ETA. The smoothing window keeps the
 * rate steady when a tool reports in bursts (wimlib reports per chunk, not per second).
 */
export class RateMeter {
  private lastTime: number | undefined;
  private lastDone = 0;
  private smoothed: number | undefined;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly halfLifeMs = 2_000,
  ) {}

  sample(done: number, total: number): { rate?: number; etaSeconds?: number } {
    const t = this.now();
    if (this.lastTime === undefined || done < this.lastDone) {
      this.lastTime = t;
      this.lastDone = done;
      this.smoothed = undefined;
      return {};
    }
    const dt = t - this.lastTime;
    if (dt <= 0) return this.result(done, total);
    const instant = ((done - this.lastDone) * 1000) / dt;
    const alpha = 1 - Math.pow(0.5, dt / this.halfLifeMs);
    this.smoothed = this.smoothed === undefined ? instant : this.smoothed + alpha * (instant - this.smoothed);
    this.lastTime = t;
    this.lastDone = done;
    return this.result(done, total);
  }

  private result(done: number, total: number): { rate?: number; etaSeconds?: number } {
    if (this.smoothed === undefined) return {};
    const rate = this.smoothed;
    const etaSeconds = rate > 0 && total >= done ? (total - done) / rate : undefined;
    return etaSeconds === undefined ? { rate } : { rate, etaSeconds };
  }
}
