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

const base = { imagepe: z.literal(EVENT_SCHEMA_VERSION), time: z.string() };

export const StepEventSchema = z.object({
  ...base,
  type: z.literal('step'),
  step: DeployStepSchema,
  status: z.enum(['started', 'done', 'skipped']),
  /** A short human description: the disk chosen, the image checked, the partition applied. */
  detail: z.string().optional(),
});
export type DeployStepEvent = z.infer<typeof StepEventSchema>;

export const ProgressEventSchema = z.object({
  ...base,
  type: z.literal('progress'),
  step: DeployStepSchema,
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

export const FailedEventSchema = z.object({
  ...base,
  type: z.literal('failed'),
  step: DeployStepSchema,
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

export const DeployEventSchema = z.discriminatedUnion('type', [StepEventSchema, ProgressEventSchema, DeployedEventSchema, FailedEventSchema, LogEventSchema]);
export type DeployEvent = z.infer<typeof DeployEventSchema>;
export type DeployEventSink = (event: DeployEvent) => void;

type Body<E> = E extends unknown ? Omit<E, 'imagepe' | 'time'> : never;
export type DeployEventBody = Body<DeployEvent>;

export function makeDeployEvent(body: DeployEventBody, now: Date = new Date()): DeployEvent {
  const { type, ...rest } = body;
  return { imagepe: EVENT_SCHEMA_VERSION, type, time: now.toISOString(), ...rest } as DeployEvent;
}
