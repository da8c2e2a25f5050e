import { Listr } from 'listr2';
import { ProgressGate, formatBytes, formatDuration, formatRate, type EventSink, type ImagepeEvent, type Progress, type ProgressEvent } from '../core/index.js';

/**
 * Runs a long job and renders its events: listr2 with a progress bar on a terminal, a line per
 * tenth of each phase when output is a log or a pipe, JSON lines with --json.
 */
export async function withProgress<T>(title: string, json: boolean, job: (events: EventSink) => Promise<T>): Promise<T> {
  if (json) return job(jsonSink());
  if (!process.stderr.isTTY) return job(plainSink(title));

  let result: T | undefined;
  const warnings: string[] = [];
  const list = new Listr(
    [
      {
        title,
        task: async (_ctx, task) => {
          const gate = new ProgressGate({ everyMs: 100 });
          result = await job((event) => {
            if (event.type === 'message') {
              if (event.level === 'warning') warnings.push(event.text);
              return;
            }
            if (event.type !== 'progress' || !gate.pass('bar', event)) return;
            task.output = progressLine(event, 30);
          });
        },
        rendererOptions: { outputBar: 1, persistentOutput: false },
      },
    ],
    { rendererOptions: { collapseErrors: false }, exitOnError: true, registerSignalListeners: true },
  );
  await list.run();
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  return result as T;
}

/** One line for a progress report: a bar with the percentage, the amounts, the rate and the ETA. */
export function progressLine(event: Progress | ProgressEvent, barWidth: number): string {
  const isBytes = event.unit === 'bytes';
  const fmt = (n: number) => (isBytes ? formatBytes(n) : `${n} ${event.unit}`);
  if (event.total === undefined || event.total === 0) return `${event.phase}: ${fmt(event.done)}`;
  const fraction = Math.min(1, event.done / event.total);
  const filled = Math.round(fraction * barWidth);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}`;
  const rate = event.rate !== undefined && isBytes ? `  ${formatRate(event.rate)}` : '';
  const eta = event.etaSeconds !== undefined && event.done < event.total ? `  ETA ${formatDuration(event.etaSeconds)}` : '';
  return `${event.phase} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}%  ${fmt(event.done)} / ${fmt(event.total)}${rate}${eta}`;
}

function jsonSink(): EventSink {
  // wimlib reports every 32 KiB chunk; five lines a second per phase is plenty for a consumer,
  // and the last line of each phase always goes out.
  const gate = new ProgressGate({ everyMs: 200 });
  return (event: ImagepeEvent) => {
    if (event.type === 'progress' && !gate.pass(event.phase, event)) return;
    process.stdout.write(`${JSON.stringify({ ...event, time: new Date().toISOString() })}\n`);
  };
}

function plainSink(title: string): EventSink {
  const tenths = new ProgressGate({ tenths: true });
  process.stderr.write(`${title}\n`);
  return (event) => {
    if (event.type === 'message') {
      process.stderr.write(`${event.level}: ${event.text}\n`);
      return;
    }
    if (event.type !== 'progress' || !tenths.pass(event.phase, event)) return;
    process.stderr.write(`  ${progressLine(event, 20)}\n`);
  };
}
