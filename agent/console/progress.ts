import { ProgressGate } from '../../core/progress.js';
import type { RunEvent } from '../events/index.js';
import { screenLine } from '../screen.js';
import { sharePlaces } from './log-place.js';
import { ascii, truncate, WIDTH, wrap } from './render.js';
import type { Terminal } from './terminal.js';

/** A serial log reads best with a progress line now and then; a screen redraws one line often. */
export const LINE_PROGRESS_MS = 2_000;
export const REDRAW_PROGRESS_MS = 250;

const ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]/g;

/**
 * Fits one screenLine() text to a terminal: lines cut to the width, and on a 'lines' terminal
 * no escape sequences and a progress line ended with \n instead of being redrawn with \r.
 */
export function fitEventText(text: string, style: Terminal['progress']): string {
  const body = text.replace(ESCAPES, '');
  const clear = style === 'redraw' ? '\x1b[K' : '';
  if (body.endsWith('\r')) {
    const line = truncate(ascii(body.slice(0, -1)), WIDTH);
    return style === 'redraw' ? `${line}${clear}\r` : `${line}\n`;
  }
  const lines = body
    .replace(/\n$/, '')
    .split('\n')
    .flatMap((l) => wrap(l, WIDTH, '    '));
  return `${clear}${lines.join('\n')}\n`;
}

/**
 * Shows a deploy's or capture's events on the technician's terminal, in words, with progress
 * throttled to what the terminal can show: a redraw four times a second on a screen, a line
 * every two seconds on a serial line. The last progress event of a phase always shows. With
 * `shareUrl`, the run's own mount of the share is said as the share's address.
 */
export function eventPrinter(term: Terminal, now: () => number = Date.now, shareUrl?: string): (event: RunEvent) => void {
  // One gate for every phase: a terminal shows one progress line at a time.
  const gate = new ProgressGate({ everyMs: term.progress === 'lines' ? LINE_PROGRESS_MS : REDRAW_PROGRESS_MS }, now);
  return (event) => {
    if (event.type === 'progress' && !gate.pass('progress', event)) return;
    // The session asks what comes next; the run's own `after` (shell) is not the technician's choice.
    const text = screenLine(event, { next: false });
    if (text !== undefined) term.write(fitEventText(shareUrl ? sharePlaces(text, shareUrl) : text, term.progress));
  };
}
