import { formatBytes, formatDuration, formatRate } from '../core/units.js';
import { CAPTURE_STEPS, DEPLOY_STEPS, type AgentEvent } from './events/index.js';

// A failure at a step only a capture has concerns the reference machine's disk, not a target.
const CAPTURE_ONLY_STEPS = new Set<string>(CAPTURE_STEPS.filter((s) => !(DEPLOY_STEPS as readonly string[]).includes(s)));

export interface ScreenLineOptions {
  /**
   * Whether the end of a run says what the PE does next (the plan's `after`). The technician
   * console asks that itself, so there it would contradict the question that follows.
   */
  next?: boolean;
}

/**
 * What a technician reads on the machine's screen: the same events as the serial port's JSON
 * lines, in words. Progress lines end in \r so the next one overwrites them on a text console;
 * everything else ends a line. Undefined: nothing to show.
 */
export function screenLine(event: AgentEvent, options: ScreenLineOptions = {}): string | undefined {
  const next = (after: string) => (options.next === false ? '' : `; next: ${after}`);
  switch (event.type) {
    case 'ready': {
      const disks = event.disks.map((d) => `${d.path} ${formatBytes(d.size)}${d.model ? ` ${d.model}` : ''}`).join(', ') || 'none';
      const fw = event.firmware;
      const firmware = fw ? `\n  firmware: ${fw.type === 'uefi' ? `UEFI, Secure Boot ${fw.secureBoot === null ? 'unknown' : fw.secureBoot ? 'on' : 'off'}` : 'BIOS'}${fw.lockdown && fw.lockdown !== 'none' ? `, kernel lockdown: ${fw.lockdown}` : ''}` : '';
      return `imagepe ${event.mode}: node ${event.node}, kernel ${event.kernel}${firmware}\n  disks: ${disks}\n  plan: ${event.plan ?? 'none'}\n`;
    }
    case 'step':
      if (event.status === 'started') return `\x1b[K> ${event.step}${event.detail ? `: ${event.detail}` : ''}\n`;
      if (event.status === 'skipped') return `\x1b[K- ${event.step} skipped${event.detail ? `: ${event.detail}` : ''}\n`;
      return `\x1b[K+ ${event.step} done${event.detail ? `: ${event.detail}` : ''}\n`;
    case 'progress': {
      const bytes = event.unit === 'bytes';
      const amount = (n: number) => (bytes ? formatBytes(n) : `${n} ${event.unit}`);
      const pct = event.total ? ` ${Math.floor((event.done / event.total) * 100)}%` : '';
      const total = event.total !== undefined ? ` / ${amount(event.total)}` : '';
      const rate = bytes && event.rate !== undefined ? `  ${formatRate(event.rate)}` : '';
      const eta = event.etaSeconds !== undefined && event.total !== undefined && event.done < event.total ? `  ETA ${formatDuration(event.etaSeconds)}` : '';
      return `  ${event.phase}${pct}  ${amount(event.done)}${total}${rate}${eta}\x1b[K\r`;
    }
    case 'deployed':
      return `\x1b[KDEPLOYED ${event.disk}${event.hostname ? ` as ${event.hostname}` : ''} in ${formatDuration(event.durationMs / 1000)}${next(event.after)}\n`;
    case 'captured':
      return `\x1b[KCAPTURED image ${event.index} "${event.name}" into ${event.wim} (${formatBytes(event.sizeBytes)}) in ${formatDuration(event.durationMs / 1000)}${next(event.after)}\n`;
    case 'failed': {
      const tail = event.stderrTail ? `${event.stderrTail.split('\n').map((l) => `  | ${l}`).join('\n')}\n` : '';
      const disk = CAPTURE_ONLY_STEPS.has(event.step)
        ? event.diskTouched
          ? 'The reference disk was generalized; no image was kept: run the plan again.'
          : 'The reference disk was not touched.'
        : event.diskTouched
          ? 'The disk was written to and is NOT deployed: run the plan again.'
          : 'The disk was not touched.';
      return `\x1b[KFAILED at ${event.step}: ${event.message}\n${tail}${disk}\n`;
    }
    case 'log':
      return `\x1b[K${event.level === 'warning' ? 'warning: ' : '  '}${event.text}\n`;
    case 'error':
      return `\x1b[KERROR (${event.code}): ${event.message}\n`;
  }
}
