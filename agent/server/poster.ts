import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentEvent } from '../events/index.js';

export interface EventPosterOptions {
  /** POST target: the server's /events/<mac>. */
  url: URL;
  /** Events held while the server cannot be reached; the oldest progress events go first. */
  maxQueued?: number;
  /** Per request. */
  timeoutMs?: number;
  /** Wait between failed posts. */
  retryMs?: number;
}

/**
 * Sends the agent's events to the deployment server as JSON arrays, one request at a time, so
 * `imagepe serve` can show what each machine is doing. Posting never holds the deploy up: events
 * queue while a request is out or the server is away, progress events are thinned to the
 * latest of each phase, and a server that never answers only costs the events it missed.
 */
export class EventPoster {
  private queue: AgentEvent[] = [];
  private sending: Promise<void> | undefined;
  private stopped = false;
  /** Events the server accepted, and requests that failed, for the log line at the end. */
  readonly counts = { sent: 0, failedPosts: 0, dropped: 0 };

  constructor(private readonly options: EventPosterOptions) {}

  push(event: AgentEvent): void {
    if (this.stopped) return;
    if (event.type === 'progress') {
      // Only the newest progress of a phase matters to a status table.
      const i = this.queue.findIndex((q) => q.type === 'progress' && q.phase === event.phase);
      if (i >= 0) this.queue.splice(i, 1);
    }
    this.queue.push(event);
    const max = this.options.maxQueued ?? 2_000;
    while (this.queue.length > max) {
      const i = this.queue.findIndex((q) => q.type === 'progress');
      this.queue.splice(i >= 0 ? i : 0, 1);
      this.counts.dropped++;
    }
    this.sending ??= this.drain().finally(() => {
      this.sending = undefined;
    });
  }

  /** Waits until everything queued is sent or `timeoutMs` passes; the PE calls it before it reboots. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while ((this.queue.length > 0 || this.sending) && Date.now() < deadline) {
      this.sending ??= this.drain().finally(() => {
        this.sending = undefined;
      });
      await Promise.race([this.sending, sleep(Math.max(0, deadline - Date.now()), undefined, { ref: false })]);
    }
    const done = this.queue.length === 0 && !this.sending;
    this.stopped = true;
    return done;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped) {
      const batch = this.queue.slice(0, 200);
      try {
        const response = await fetch(this.options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(batch),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        });
        await response.body?.cancel();
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        this.queue.splice(0, batch.length);
        this.counts.sent += batch.length;
      } catch {
        this.counts.failedPosts++;
        if (this.stopped) return;
        await sleep(this.options.retryMs ?? 2_000, undefined, { ref: false });
      }
    }
  }
}
