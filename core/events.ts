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
  /** Absent while the total is not known yet (wimlib's scan phase). */
  total?: number;
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
  private startTime: number | undefined;
  private startDone = 0;
  private lastTime = 0;
  private lastDone = 0;
  private smoothed: number | undefined;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly halfLifeMs = 2_000,
  ) {}

  sample(done: number, total: number | undefined): { rate?: number; etaSeconds?: number } {
    const t = this.now();
    if (this.startTime === undefined || done < this.lastDone) {
      this.startTime = this.lastTime = t;
      this.startDone = this.lastDone = done;
      this.smoothed = undefined;
      return {};
    }
    const dt = t - this.lastTime;
    if (dt <= 0) return this.result(done, total);
    const elapsed = t - this.startTime;
    if (elapsed < this.halfLifeMs) {
      // Too early for a moving average: the average since the start is steadier than the first instants.
      this.smoothed = ((done - this.startDone) * 1000) / elapsed;
    } else {
      const instant = ((done - this.lastDone) * 1000) / dt;
      const alpha = 1 - Math.pow(0.5, dt / this.halfLifeMs);
      this.smoothed = this.smoothed === undefined ? instant : this.smoothed + alpha * (instant - this.smoothed);
    }
    this.lastTime = t;
    this.lastDone = done;
    return this.result(done, total);
  }

  private result(done: number, total: number | undefined): { rate?: number; etaSeconds?: number } {
    if (this.smoothed === undefined) return {};
    const rate = this.smoothed;
    const etaSeconds = rate > 0 && total !== undefined && total >= done ? (total - done) / rate : undefined;
    return etaSeconds === undefined ? { rate } : { rate, etaSeconds };
  }
}
