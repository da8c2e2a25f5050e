import { z } from 'zod';
import { PROGRESS_UNITS } from '../../core/progress.js';
import { CAPTURE_STEPS } from '../capture/steps/index.js';
import { DEPLOY_STEPS } from '../deploy/steps/index.js';
import { EVENT_SCHEMA_VERSION, MODES, eventJsonIn, stampEvent, type EventBody } from './line.js';

/**
 * The agent's events: one JSON object per line on the serial console, stdout and the log on the
 * share. The version changes only when an existing field changes meaning; step names come from
 * the deploy's and the capture's step lists, and the QEMU harness and log collection key on them.
 */

/** Every step name a step, progress or failed event may carry: the deploy's and the capture's. */
export const AGENT_STEPS = [...new Set<string>([...DEPLOY_STEPS, ...CAPTURE_STEPS])] as [AgentStep, ...AgentStep[]];
export type DeployStep = (typeof DEPLOY_STEPS)[number];
export type CaptureStep = (typeof CAPTURE_STEPS)[number];
export type AgentStep = DeployStep | CaptureStep;
export const AgentStepSchema = z.enum(AGENT_STEPS);
export { CAPTURE_STEPS, DEPLOY_STEPS };

const version = z.literal(EVENT_SCHEMA_VERSION);
const base = { imagepe: version, time: z.string() };
const after = z.enum(['reboot', 'poweroff', 'shell']);

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

export const FirmwareStateSchema = z.object({
  type: z.enum(['bios', 'uefi']),
  /** UEFI's SecureBoot variable: true when the firmware enforces signatures; null when it could not be read. */
  secureBoot: z.boolean().nullable(),
  /** The kernel's lockdown mode (none, integrity, confidentiality); null without securityfs. */
  lockdown: z.string().nullable(),
});
export type FirmwareState = z.infer<typeof FirmwareStateSchema>;

export const ReadyEventSchema = z.object({
  ...base,
  type: z.literal('ready'),
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
  /** How the PE was started; absent in events of PEs before Secure Boot support. */
  firmware: FirmwareStateSchema.optional(),
  /** Whether V8 took the agent's code cache made by the build (templates/agent-loader.cjs); absent outside the PE. */
  codeCache: z.enum(['accepted', 'rejected', 'none']).optional(),
  uptimeSeconds: z.number().nonnegative(),
});
export type ReadyEvent = z.infer<typeof ReadyEventSchema>;

/** A failure outside a deploy or a capture (a plan that cannot be read); those announce `failed`. */
export const ErrorEventSchema = z.object({
  ...base,
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
});
export type ErrorEvent = z.infer<typeof ErrorEventSchema>;

export const StepEventSchema = z.object({
  ...base,
  type: z.literal('step'),
  step: AgentStepSchema,
  status: z.enum(['started', 'done', 'skipped']),
  /** A short human description: the disk chosen, the image checked, the partition applied. */
  detail: z.string().optional(),
});
export type StepEvent = z.infer<typeof StepEventSchema>;

/** core/progress.ts's Progress, stamped with the step it belongs to. */
export const ProgressEventSchema = z.object({
  ...base,
  type: z.literal('progress'),
  step: AgentStepSchema,
  /** What the tool is doing, in its words: "Hashing image", "Extracting file data". */
  phase: z.string(),
  unit: z.enum(PROGRESS_UNITS),
  done: z.number().nonnegative(),
  total: z.number().nonnegative().optional(),
  /** Units per second, smoothed. */
  rate: z.number().nonnegative().optional(),
  etaSeconds: z.number().nonnegative().optional(),
});
export type ProgressEvent = z.infer<typeof ProgressEventSchema>;

export const DeployedEventSchema = z.object({
  ...base,
  type: z.literal('deployed'),
  /** The disk as the plan or --disk named it (an image file on a host). */
  disk: z.string(),
  hostname: z.string().nullable(),
  machineId: z.string().nullable(),
  partitions: z.array(
    z.object({ number: z.number().int(), name: z.string(), fsType: z.string().nullable(), uuid: z.string().nullable(), mount: z.string().nullable() }),
  ),
  durationMs: z.number().nonnegative(),
  /** What the agent does next, from the plan. */
  after,
});
export type DeployedEvent = z.infer<typeof DeployedEventSchema>;

export const CapturedEventSchema = z.object({
  ...base,
  type: z.literal('captured'),
  /** The WIM file, relative to the destination url. */
  wim: z.string(),
  /** The index of the new image in the WIM. */
  index: z.number().int().positive(),
  name: z.string(),
  /** The WIM file's size after the capture. */
  sizeBytes: z.number().nonnegative(),
  durationMs: z.number().nonnegative(),
  after,
});
export type CapturedEvent = z.infer<typeof CapturedEventSchema>;

export const FailedEventSchema = z.object({
  ...base,
  type: z.literal('failed'),
  step: AgentStepSchema,
  code: z.string(),
  message: z.string(),
  /** The last lines a failing command printed, or "" when no command failed. */
  stderrTail: z.string(),
  /** Whether any byte of the disk (the target, or a capture's reference) was written before the failure. */
  diskTouched: z.boolean(),
});
export type FailedEvent = z.infer<typeof FailedEventSchema>;

/** Warnings and notes along the way, from a run and from the rest of the agent alike. */
export const LogEventSchema = z.object({
  ...base,
  type: z.literal('log'),
  level: z.enum(['info', 'warning']),
  text: z.string(),
});
export type LogEvent = z.infer<typeof LogEventSchema>;

/** What a deploy emits: its steps' events, and `deployed` at the end. */
export const DeployEventSchema = z.discriminatedUnion('type', [StepEventSchema, ProgressEventSchema, DeployedEventSchema, FailedEventSchema, LogEventSchema]);
export type DeployEvent = z.infer<typeof DeployEventSchema>;
export type DeployEventSink = (event: DeployEvent) => void;
export type DeployEventBody = EventBody<DeployEvent>;

/** What a capture emits: the same step, progress, log and failed events, and `captured` at the end. */
export const CaptureEventSchema = z.discriminatedUnion('type', [StepEventSchema, ProgressEventSchema, CapturedEventSchema, FailedEventSchema, LogEventSchema]);
export type CaptureEvent = z.infer<typeof CaptureEventSchema>;
export type CaptureEventSink = (event: CaptureEvent) => void;
export type CaptureEventBody = EventBody<CaptureEvent>;

/** Either run's events: what the console and the PE's outputs pass on. */
export type RunEvent = DeployEvent | CaptureEvent;
export type RunEventSink = (event: RunEvent) => void;

/** Every line the agent writes. */
export const AgentEventSchema = z.discriminatedUnion('type', [ReadyEventSchema, ErrorEventSchema, LogEventSchema, StepEventSchema, ProgressEventSchema, DeployedEventSchema, CapturedEventSchema, FailedEventSchema]);
export type AgentEvent = z.infer<typeof AgentEventSchema>;

export function makeDeployEvent(body: DeployEventBody, now: Date = new Date()): DeployEvent {
  return stampEvent(body, now) as DeployEvent;
}

export function makeCaptureEvent(body: CaptureEventBody, now: Date = new Date()): CaptureEvent {
  return stampEvent(body, now) as CaptureEvent;
}

/** An event with the version and time filled in, keys in the order the line starts with. */
export function makeEvent(body: EventBody<AgentEvent>, now: Date = new Date()): AgentEvent {
  return stampEvent(body, now) as AgentEvent;
}

/**
 * Finds an event in one line of console output; anything that does not parse as a known event
 * (kernel noise, a line cut by a carriage return) is undefined.
 */
export function parseEventLine(line: string): AgentEvent | undefined {
  const value = eventJsonIn(line);
  if (value === undefined) return undefined;
  const parsed = AgentEventSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
