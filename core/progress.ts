/**
 * One shape for progress, whoever reports it (wimlib's meter, a hash over an image, mkfs one
 * partition after another) and whoever shows it (listr2 bars, JSON lines, a serial console, a
 * technician's screen), and one gate that decides how often a consumer passes it on.
 */

export const PROGRESS_UNITS = ['bytes', 'files', 'images', 'parts'] as const;
export type ProgressUnit = (typeof PROGRESS_UNITS)[number];

/** How far a piece of work got. */
export interface Progress {
  /** What the tool is doing right now, in its own words: "Archiving file data", "Hashing image". */
  phase: string;
  unit: ProgressUnit;
  done: number;
  /** Absent while the total is not known yet (wimlib's scan phase). */
  total?: number | undefined;
  /** Units per second, smoothed; absent until two samples exist. */
  rate?: number | undefined;
  etaSeconds?: number | undefined;
}

/** The last report of a phase: consumers always pass it on, so a bar ends at 100%. */
export function isFinalProgress(p: Pick<Progress, 'done' | 'total'>): boolean {
  return p.total !== undefined && p.done >= p.total;
}

/** Progress without its unset optional fields, so JSON lines and event schemas stay tidy. */
export function progressFields(p: Progress): Progress {
  return {
    phase: p.phase,
    unit: p.unit,
    done: p.done,
    ...(p.total !== undefined ? { total: p.total } : {}),
    ...(p.rate !== undefined ? { rate: p.rate } : {}),
    ...(p.etaSeconds !== undefined ? { etaSeconds: p.etaSeconds } : {}),
  };
}

export type ProgressGateMode =
  /** At most one report per key every `everyMs` milliseconds. */
  | { everyMs: number }
  /** One report per key each time it crosses a tenth of its total: what a log or a pipe wants. */
  | { tenths: true };

/**
 * Decides which progress reports a consumer passes on: by time (a screen, a serial line, the
 * agent's own events) or by tenths (plain logs). Keys keep phases (or steps and phases) apart.
 * The final report of a phase always passes; in tenths mode a report without a total never does.
 */
export class ProgressGate {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly mode: ProgressGateMode,
    private readonly now: () => number = Date.now,
  ) {}

  pass(key: string, p: Pick<Progress, 'done' | 'total'>): boolean {
    if ('tenths' in this.mode) {
      if (!p.total) return false;
      const tenth = Math.floor(Math.min(1, p.done / p.total) * 10);
      if ((this.last.get(key) ?? -1) >= tenth) return false;
      this.last.set(key, tenth);
      return true;
    }
    if (isFinalProgress(p)) return true;
    const t = this.now();
    if (t - (this.last.get(key) ?? Number.NEGATIVE_INFINITY) < this.mode.everyMs) return false;
    this.last.set(key, t);
    return true;
  }
}

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
