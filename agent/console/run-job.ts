import { formatDuration } from '../../core/index.js';
import type { FailedEvent, RunEvent } from '../events/index.js';
import type { Outcome, SessionEnv } from './env.js';
import { eventPrinter } from './progress.js';
import type { Terminal } from './terminal.js';

/**
 * Runs a deploy or capture with its events shown on the terminal (and passed on to env.events),
 * and turns the end into an Outcome: `describe` words a success; a failure is worded from the
 * runner's `failed` event (the step, and whether the disk was touched) or from the error alone.
 * `shareUrl` is the run's share, named by its address where the run names its mount.
 */
export async function runJob<R>(
  term: Terminal,
  env: SessionEnv,
  action: Outcome['action'],
  what: string,
  shareUrl: string,
  job: (events: (event: RunEvent) => void) => Promise<R>,
  describe: (result: R, durationMs: number) => string[],
  now: () => number = Date.now,
): Promise<Outcome> {
  const show = eventPrinter(term, now, shareUrl);
  let failed: FailedEvent | undefined;
  const events = (event: RunEvent) => {
    if (event.type === 'failed') failed = event;
    show(event);
    env.events?.(event);
  };
  const started = now();
  try {
    const result = await job(events);
    const durationMs = now() - started;
    return { action, ok: true, lines: describe(result, durationMs), durationMs };
  } catch (e) {
    const durationMs = now() - started;
    const code = failed?.code ?? (e as { code?: string }).code ?? 'INTERNAL';
    const message = failed?.message ?? (e instanceof Error ? e.message : String(e));
    const step = failed?.step ?? 'plan';
    const diskTouched = failed?.diskTouched;
    return {
      action,
      ok: false,
      durationMs,
      failure: { step, code, message, diskTouched },
      lines: [`FAILED: ${what}`, `at step ${step} (${code}) after ${formatDuration(durationMs / 1000)}:`, ...message.split('\n').slice(0, 8).map((l) => `  ${l}`), touchedLine(action, diskTouched)],
    };
  }
}

/** A failure before the run began (no disk, an answer the plan schema refused). */
export function failedBeforeRun(action: Outcome['action'], what: string, e: unknown): Outcome {
  const code = (e as { code?: string }).code ?? 'INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  return {
    action,
    ok: false,
    durationMs: 0,
    failure: { step: 'plan', code, message, diskTouched: false },
    lines: [`FAILED: ${what}`, `before it began (${code}):`, ...message.split('\n').slice(0, 8).map((l) => `  ${l}`), touchedLine(action, false)],
  };
}

function touchedLine(action: Outcome['action'], touched: boolean | undefined): string {
  if (action === 'deploy') {
    if (touched === undefined) return 'Whether the disk was written to is not known: deploy it again before using it.';
    return touched ? 'The disk was written to and is NOT deployed: deploy it again.' : 'The disk was not touched.';
  }
  if (touched === undefined) return 'Whether the reference system was changed is not known.';
  return touched ? 'The reference system was generalized, but no image was kept.' : 'The reference system was not touched.';
}
