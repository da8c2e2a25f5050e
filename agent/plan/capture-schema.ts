import { z } from 'zod';
import { DiskTargetSchema } from '../../partition/index.js';
import { CredentialsSchema, PlanError, planProblems, planValueFromText, readPlanFile } from './schema.js';

/** Where a capture may write: a share mounted read-write, or a local folder. */
export const DESTINATION_URL_PATTERN = /^(smb|nfs):\/\/[^/\s]+(\/.*)?$|^file:\/\/\/.*$/;

export const CaptureSourceSchema = z
  .object({
    disk: DiskTargetSchema.optional().describe('The reference disk; default: the only disk that is not the boot medium; --disk overrides it'),
    partition: z
      .union([z.literal('root'), z.object({ label: z.string().min(1) }).strict(), z.object({ number: z.number().int().positive() }).strict()], {
        message: 'expected "root", { label: FILESYSTEM_LABEL } or { number: N }',
      })
      .default('root')
      .describe('The partition to capture: "root" (the one holding an operating system), a filesystem label, or a partition number'),
  })
  .strict();

export const DestinationSchema = z
  .object({
    url: z
      .string()
      .regex(DESTINATION_URL_PATTERN, { message: 'expected smb://server/share[/path], nfs://server/export[/path] or file:///absolute/path (a place that can be written)' })
      .refine((u) => !/^[a-z]+:\/\/[^/@\s]*@/i.test(u), { message: 'expected no user or password in the URL; give them in destination.credentials' })
      .describe('The folder the WIM goes to: smb://, nfs:// or file:///'),
    file: z
      .string()
      .min(1)
      .refine((p) => !p.startsWith('/'), { message: 'expected a path relative to the url' })
      .refine((p) => !p.split('/').includes('..'), { message: 'expected a path inside the share, without ".."' })
      .describe('The WIM file, relative to the url (images/reference.wim)'),
    credentials: CredentialsSchema.optional(),
    name: z.string().min(1).describe('The image name, unique within the WIM'),
    description: z.string().default(''),
    compression: z.enum(['none', 'xpress', 'lzx', 'lzms']).default('lzx').describe('For a new WIM; an appended image takes the compression the WIM has'),
    append: z.boolean().default(false).describe('false: the file must not exist yet; true: add an image (the WIM is created when missing)'),
    integrity: z.boolean().default(true).describe("Write wimlib's integrity table (--check), which deploy verifies before it touches a disk"),
    pipable: z
      .boolean()
      .default(false)
      .describe('A new WIM in wimlib\'s pipable format, which a deploy over HTTP (imagepe serve) applies as it downloads instead of holding it in memory first'),
  })
  .strict()
  .refine((d) => !(d.pipable && d.append), { message: 'pipable: an existing WIM cannot be made pipable by appending; export it with imagepe export SRC all DEST --pipable', path: ['pipable'] });

export const CapturePlanSchema = z
  .object({
    kind: z.literal('capture').describe('Says this is a capture plan'),
    source: CaptureSourceSchema.default({ partition: 'root' }),
    generalize: z.boolean().default(true).describe('Remove machine-specific state (machine-id, SSH host keys, logs, ...) from a Linux reference before the capture, as imagepe generalize does'),
    destination: DestinationSchema,
    after: z.enum(['reboot', 'poweroff', 'shell']).default('poweroff'),
    logs: z.boolean().default(true).describe('Write the full log to logs/ beside the WIM'),
  })
  .strict()
  .describe('An imagepe capture plan: which partition of the reference machine, where the WIM goes, and how');

export type CapturePlan = z.output<typeof CapturePlanSchema>;
export type CapturePlanInput = z.input<typeof CapturePlanSchema>;
export type CaptureSource = z.output<typeof CaptureSourceSchema>;
export type Destination = z.output<typeof DestinationSchema>;

export function parseCapturePlan(value: unknown, source = 'capture plan'): CapturePlan {
  const result = CapturePlanSchema.safeParse(value);
  if (result.success) return result.data;
  throw new PlanError(planProblems(result.error.issues), source, CAPTURE_HINT);
}

const CAPTURE_HINT = 'See docs/capture.md for the capture plan format; imagepe plan schema --kind capture prints its JSON Schema.';

export function parseCapturePlanText(text: string, source = 'capture plan'): CapturePlan {
  return parseCapturePlan(planValueFromText(text, source), source);
}

export async function loadCapturePlan(file: string): Promise<CapturePlan> {
  return parseCapturePlanText(await readPlanFile(file), file);
}

/** The JSON Schema of a capture plan file, as published in docs/schema/capture-plan.schema.json. */
export function capturePlanJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(CapturePlanSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { $id: 'https://imagepe.dev/schema/capture-plan.schema.json', title: 'imagepe capture plan', ...schema };
}
