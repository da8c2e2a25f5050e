import type { EventSink, Progress, RunOptions } from '../../core/index.js';
import type { CleanupStack } from './cleanup.js';

/** A step that decided, once started, that there was nothing for it to do. */
export interface Skipped {
  skipped: string;
}

export function skipped(reason: string): Skipped {
  return { skipped: reason };
}

/** What a step's run gives back: the detail of its `done` event, or that it skipped after all. */
export type StepEnd = string | undefined | void | Skipped;

/**
 * What the runner lends a step while it runs. Everything here belongs to the run: progress is
 * stamped with the step's name and throttled, resources go on the run's cleanup stack.
 */
export interface StepIO {
  readonly signal: AbortSignal | undefined;
  /** Every mount, loop device, mapped share and temporary file the step makes goes here as it is made. */
  readonly cleanup: CleanupStack;
  /** Options for core's run(): what the command is for, its timeout (default 60 s) and the run's signal. */
  runOpts(what: string, timeoutMs?: number): RunOptions;
  info(text: string): void;
  warn(text: string): void;
  /** A `progress` event for this step; at most four a second per phase, the last always. */
  progress(p: Progress): void;
  /** A sink for a library call's core events: progress and warnings go out as this step's. */
  readonly events: EventSink;
}

/**
 * One named stage of a run (a deploy, a capture), over the run's context `C`. Steps are data in
 * the manner of Ironic Python Agent's deploy steps: the name is part of the event schema, the
 * title is what the CLI lists, `writesDisk` says whether a failure from here on leaves the disk
 * changed. The runner announces, times, throttles and cleans up; a step only does its work.
 */
export interface Step<C, N extends string = string> {
  readonly name: N;
  /** The CLI's words for the step once done: "Image checked". */
  readonly title: string;
  /** Whether the step writes to the disk the run works on (the target, or a capture's reference). */
  readonly writesDisk: boolean;
  /**
   * Whether the runner lets go of the run's resources (all but the log's destination) before
   * this step is done, strictly: a disk that cannot be unmounted cleanly is not reported good.
   */
  readonly releasesResources?: boolean;
  /** A reason to skip the step without starting it; asked when its turn comes. */
  skipIf?(ctx: C): string | undefined;
  /** The detail of the step's `started` event. */
  describe?(ctx: C): string | undefined;
  run(ctx: C, io: StepIO): Promise<StepEnd>;
}

/** Keeps the step's name as a literal type, so a list of steps yields the union of its names. */
export function defineStep<C, const N extends string>(step: Step<C, N>): Step<C, N> {
  return step;
}

type NamesOf<T extends readonly { name: string }[]> = { -readonly [K in keyof T]: T[K] extends { name: infer N extends string } ? N : never };

/** The names of a list of steps, in order, as a tuple type (zod's enum wants one). */
export function stepNames<const T extends readonly [{ name: string }, ...{ name: string }[]]>(steps: T): NamesOf<T> {
  return steps.map((s) => s.name) as NamesOf<T>;
}

/** The CLI's titles of a list of steps, by name. */
export function stepTitles(steps: readonly { name: string; title: string }[]): Map<string, string> {
  return new Map(steps.map((s) => [s.name, s.title]));
}
