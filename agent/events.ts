import { z } from 'zod';

/**
 * The agent's events: one JSON object per line on the serial console and stdout. Every line
 * starts with {"imagepe":1,"type":...} so a reader can pick them out of kernel and shell noise;
 * the version number changes only when an existing field changes meaning. Later steps add
 * types to the union below.
 */
import { EVENT_SCHEMA_VERSION, MODES, formatEventLine, stampEvent, type EventBody } from './event-line.js';
import { CapturedEventSchema, DeployedEventSchema, FailedEventSchema, LogEventSchema, ProgressEventSchema, StepEventSchema } from './deploy/events.js';

export { EVENT_SCHEMA_VERSION, MODES, formatEventLine } from './event-line.js';

export const DiskSchema = z.object({
  /** /dev/vda, /dev/sda, /dev/nvme0n1 */
  path: z.string(),
  /** Bytes. */
  size: z.number().int().nonnegative(),
  model: z.string().nullable(),
  removable: z.boolean(),
  readOnly: z.boolean(),
});
export type Disk = z.infer<typeof DiskSchema>;

export const ModeSchema = z.enum(MODES);
export type Mode = z.infer<typeof ModeSchema>;

const version = z.literal(EVENT_SCHEMA_VERSION);

export const ReadyEventSchema = z.object({
  imagepe: version,
  type: z.literal('ready'),
  time: z.string(),
  /** process.version of the PE's Node.js. */
  node: z.string(),
  /** Kernel release (uname -r). */
  kernel: z.string(),
  mode: ModeSchema,
  /** imagepe.plan= from the kernel command line, else the embedded plan's path, else null. */
  plan: z.string().nullable(),
  /** Disks the agent may work on: the boot medium, loop, ram and empty drives are left out. */
  disks: z.array(DiskSchema),
  /** The device the PE was booted from (/dev/sr0), or null (PXE, or not found). */
  bootMedium: z.string().nullable(),
  uptimeSeconds: z.number().nonnegative(),
});
export type ReadyEvent = z.infer<typeof ReadyEventSchema>;

export const ErrorEventSchema = z.object({
  imagepe: version,
  type: z.literal('error'),
  time: z.string(),
  code: z.string(),
  message: z.string(),
});
export type ErrorEvent = z.infer<typeof ErrorEventSchema>;

// The log event is defined with the deploy's events (they cannot import this module, which imports theirs).
export { LogEventSchema, type LogEvent } from './deploy/events.js';

// The deploy and capture steps' events are part of the same stream.
export const AgentEventSchema = z.discriminatedUnion('type', [ReadyEventSchema, ErrorEventSchema, LogEventSchema, StepEventSchema, ProgressEventSchema, DeployedEventSchema, CapturedEventSchema, FailedEventSchema]);
export type AgentEvent = z.infer<typeof AgentEventSchema>;

/** An event with the version and time filled in, keys in the order the line starts with. */
export function makeEvent(body: EventBody<AgentEvent>, now: Date = new Date()): AgentEvent {
  return stampEvent(body, now) as AgentEvent;
}

/** The line the agent writes for an event (no trailing newline). */
export function formatEvent(event: AgentEvent): string {
  return formatEventLine(event);
}

const MARKER = `{"imagepe":${EVENT_SCHEMA_VERSION},`;

/**
 * Finds an event in one line of console output. The serial console mixes kernel messages,
 * carriage returns and escape sequences into the same stream, so the event may not start the
 * line; anything that does not parse as a known event is ignored (undefined).
 */
export function parseEventLine(line: string): AgentEvent | undefined {
  const start = line.indexOf(MARKER);
  if (start < 0) return undefined;
  const end = line.lastIndexOf('}');
  if (end < start) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line.slice(start, end + 1));
  } catch {
    return undefined;
  }
  const parsed = AgentEventSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
