import { z } from 'zod';
import { EVENT_SCHEMA_VERSION } from '../event-line.js';

/**
 * The deploy agent's events, in the line convention of ../events.ts: {"imagepe":1,"type":...,
 * "time":...}. The step names are part of the schema: the QEMU harness and log collection key
 * on them, so they change only with EVENT_SCHEMA_VERSION.
 */
export const DEPLOY_STEPS = ['plan', 'disk', 'share', 'check', 'partition', 'format', 'apply', 'specialize', 'bootloader', 'verify'] as const;
export const DeployStepSchema = z.enum(DEPLOY_STEPS);
export type DeployStep = z.infer<typeof DeployStepSchema>;

/** The capture mode's steps (agent/capture), in the same event stream. */
export const CAPTURE_STEPS = ['plan', 'disk', 'source', 'share', 'generalize', 'capture', 'verify'] as const;
export const CaptureStepSchema = z.enum(CAPTURE_STEPS);
export type CaptureStep = z.infer<typeof CaptureStepSchema>;

/** Every step name a step, progress or failed event may carry: the deploy's and the capture's. */
export const AGENT_STEPS = [...new Set([...DEPLOY_STEPS, ...CAPTURE_STEPS])] as [DeployStep | CaptureStep, ...(DeployStep | CaptureStep)[]];
export const AgentStepSchema = z.enum(AGENT_STEPS);
export type AgentStep = z.infer<typeof AgentStepSchema>;

const base = { imagepe: z.literal(EVENT_SCHEMA_VERSION), time: z.string() };

export const StepEventSchema = z.object({
  ...base,
  type: z.literal('step'),
  step: AgentStepSchema,
  status: z.enum(['started', 'done', 'skipped']),
  /** A short human description: the disk chosen, the image checked, the partition applied. */
  detail: z.string().optional(),
});
export type DeployStepEvent = z.infer<typeof StepEventSchema>;

export const ProgressEventSchema = z.object({
  ...base,
  type: z.literal('progress'),
  step: AgentStepSchema,
  /** What the tool is doing, in its words: "Hashing image", "Extracting file data". */
  phase: z.string(),
  unit: z.enum(['bytes', 'files', 'images', 'parts']),
  done: z.number().nonnegative(),
  total: z.number().nonnegative().optional(),
  /** Units per second, smoothed. */
  rate: z.number().nonnegative().optional(),
  etaSeconds: z.number().nonnegative().optional(),
});
export type DeployProgressEvent = z.infer<typeof ProgressEventSchema>;

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
  after: z.enum(['reboot', 'poweroff', 'shell']),
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
  after: z.enum(['reboot', 'poweroff', 'shell']),
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
  /** Whether any byte of the target disk was written before the failure. */
  diskTouched: z.boolean(),
});
export type FailedEvent = z.infer<typeof FailedEventSchema>;

/** Warnings and notes along the way, from the deploy and from the rest of the agent alike. */
export const LogEventSchema = z.object({
  ...base,
  type: z.literal('log'),
  level: z.enum(['info', 'warning']),
  text: z.string(),
});
export type LogEvent = z.infer<typeof LogEventSchema>;

// `captured` is here too: the agent hands one sink to whichever runner the plan asks for.
export const DeployEventSchema = z.discriminatedUnion('type', [StepEventSchema, ProgressEventSchema, DeployedEventSchema, CapturedEventSchema, FailedEventSchema, LogEventSchema]);
export type DeployEvent = z.infer<typeof DeployEventSchema>;
export type DeployEventSink = (event: DeployEvent) => void;

type Body<E> = E extends unknown ? Omit<E, 'imagepe' | 'time'> : never;
export type DeployEventBody = Body<DeployEvent>;

export function makeDeployEvent(body: DeployEventBody, now: Date = new Date()): DeployEvent {
  const { type, ...rest } = body;
  return { imagepe: EVENT_SCHEMA_VERSION, type, time: now.toISOString(), ...rest } as DeployEvent;
}

/** What the capture runner emits: the same step, progress, log and failed events, and `captured` at the end. */
export const CaptureEventSchema = z.discriminatedUnion('type', [StepEventSchema, ProgressEventSchema, CapturedEventSchema, FailedEventSchema, LogEventSchema]);
export type CaptureEvent = z.infer<typeof CaptureEventSchema>;
export type CaptureEventSink = (event: CaptureEvent) => void;
export type CaptureEventBody = Body<CaptureEvent>;

export function makeCaptureEvent(body: CaptureEventBody, now: Date = new Date()): CaptureEvent {
  const { type, ...rest } = body;
  return { imagepe: EVENT_SCHEMA_VERSION, type, time: now.toISOString(), ...rest } as CaptureEvent;
}
