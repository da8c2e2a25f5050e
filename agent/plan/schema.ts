import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ImagepeError } from '../../core/index.js';
import { DiskTargetSchema, LayoutSchema, layoutVolumes, mountPointsOf, type Layout } from '../../partition/index.js';
import { rawFormatOf } from '../../imaging/raw/index.js';
import { HOSTNAME_TOKENS, unknownTokens } from './hostname.js';

const SHA256 = /^[0-9a-fA-F]{64}$/;
export const SOURCE_URL_PATTERN = /^(smb|nfs|https?):\/\/[^/\s]+(\/.*)?$|^file:\/\/\/.*$|^(media|server):\/.*$/;

export const CredentialsSchema = z
  .union(
    [
      z.object({ file: z.string().min(1).describe('A file with username=, password= and optionally domain= lines (mount.cifs format)') }).strict(),
      z
        .object({
          username: z.string().min(1),
          password: z.string().optional().describe('Kept out of logs, events and command lines'),
          domain: z.string().optional(),
        })
        .strict(),
    ],
    { message: 'expected { file: PATH } or { username, password }' },
  )
  .describe('Share credentials; without them SMB shares are mounted as guest');

export const SourceSchema = z
  .object({
    url: z
      .string()
      .regex(SOURCE_URL_PATTERN, {
        message: 'expected smb://server/share[/path], nfs://server/export[/path], http(s)://host/path, file:///absolute/path, media:/path or server:/path',
      })
      // Refused here, not only when the share is mapped: by then the url has been in events and the log.
      .refine((u) => !/^[a-z]+:\/\/[^/@\s]*@/i.test(u), { message: 'expected no user or password in the URL; give them in source.credentials' })
      .describe('Where the image lives: smb://, nfs://, http(s)://, file:///, media:/ (the boot medium) or server:/ (the deployment server the PE booted from, over HTTP)'),
    image: z
      .string()
      .min(1)
      .refine((p) => !p.split('/').includes('..'), { message: 'expected a path inside the share, without ".."' })
      .describe('The image file, relative to the url: a WIM (.wim, the first .swm of a split WIM), or a raw disk image (.img, .raw, compressed .zst/.xz/.gz, .qcow2; see source.format)'),
    index: z.union([z.number().int().positive({ message: 'expected an image index (1, 2, ...) or an image name' }), z.string().min(1)], { message: 'expected an image index (1, 2, ...) or an image name' }).default(1),
    format: z
      .enum(['auto', 'wim', 'raw'])
      .default('auto')
      .describe('wim: a WIM whose images are applied to the layout\'s partitions; raw: a whole-disk image (partition table included) written block for block, then grown to the disk and specialized; auto: raw for .img, .raw, .bin, .qcow2 and their .zst/.xz/.gz, wim otherwise'),
    sha256: z.string().regex(SHA256, { message: 'expected 64 hexadecimal digits' }).optional().describe('Expected SHA-256 of the image file as stored (a compressed raw image: of the compressed file); without it, IMAGE.sha256 beside a raw image is used when there'),
    credentials: CredentialsSchema.optional(),
    multicast: z
      .enum(['auto', 'off'])
      .default('auto')
      .describe('auto: when the server runs a multicast session for a streamed image (imagepe serve --multicast), receive it from there with many machines at once, falling back to HTTP if reception fails; off: always HTTP'),
  })
  .strict();

/** A layout given in the plan's own terms, or the one recorded in the image by imagepe's capture mode. */
export const FROM_IMAGE = 'from-image';

export const TargetSchema = z
  .object({
    disk: DiskTargetSchema.optional().describe('The disk to deploy to; --disk overrides it'),
    layout: z
      .union([LayoutSchema, z.literal(FROM_IMAGE)], { message: `expected a layout ({ table, partitions }) or "${FROM_IMAGE}"` })
      .optional()
      .describe(`A partition/ layout, or "${FROM_IMAGE}": the layout imagepe's capture mode recorded in the WIM (IMAGEPE/LAYOUT). Required for a WIM; a raw image brings its own partition table, so it is left out`),
    wipe: z.boolean().default(false).describe('Erase whatever the disk holds; without it only a blank disk is deployed to'),
    identities: z
      .enum(['new', 'keep'])
      .default('new')
      .describe("new: every filesystem gets a new UUID and the system's references to the reference's are rewritten; keep: the filesystems are made with the reference's UUIDs and labels, so nothing needs rewriting (one copy per network or disk set: duplicates confuse mount by UUID)"),
    grow: z
      .string()
      .min(1)
      .optional()
      .describe(`With layout: ${FROM_IMAGE}, the recorded partition that takes what the disk has left (default: the one the image came from, the root); the others keep their recorded sizes. A raw image: its partition (by number or GPT name) grown with its filesystem to the disk's end (default: the last one; swap after it is moved to the end), or "none"`),
    minSwap: z
      .string()
      .regex(/^\s*\d+(\.\d+)?\s*([kmgtpKMGTP]i?[bB]?|[bB])?\s*$/, { message: 'expected a size such as 512MiB' })
      .optional()
      .describe(`With layout: ${FROM_IMAGE}, how far swap may shrink when the data would not fit the disk otherwise (default: swap keeps its recorded size)`),
  })
  .strict();

export const ApplyEntrySchema = z
  .object({
    index: z.union([z.number().int().positive({ message: 'expected an image index (1, 2, ...) or an image name' }), z.string().min(1)], { message: 'expected an image index (1, 2, ...) or an image name' }).optional().describe('Default: source.index'),
    partition: z.string().min(1).describe('The name of a partition of target.layout'),
    mode: z.enum(['auto', 'linux', 'ntfs']).default('auto').describe('auto: NTFS mode for ntfs partitions, a Linux tree with UNIX metadata otherwise'),
  })
  .strict();

const MODE_MESSAGE = 'expected an octal mode such as "0644"';
const fileMode = z.union([z.number().int().min(0, { message: MODE_MESSAGE }).max(0o7777, { message: MODE_MESSAGE }), z.string().regex(/^0?[0-7]{3,4}$/, { message: MODE_MESSAGE })], { message: MODE_MESSAGE });

export const FileSchema = z
  .object({
    path: z.string().regex(/^\//, { message: 'expected an absolute path inside the deployed system' }).refine((p) => !p.split('/').includes('..'), { message: 'expected a path without ".."' }),
    content: z.string().optional(),
    base64: z.string().regex(/^[A-Za-z0-9+/=\s]*$/, { message: 'expected base64 text' }).optional(),
    mode: fileMode.default('0644'),
  })
  .strict()
  .refine((f) => (f.content === undefined) !== (f.base64 === undefined), { message: 'expected exactly one of content or base64' });

export const SpecializeSchema = z
  .object({
    hostname: z
      .string()
      .min(1)
      .refine((t) => unknownTokens(t).length === 0, { message: `expected only the tokens ${HOSTNAME_TOKENS.map((t) => `{${t}}`).join(' ')}` })
      .optional()
      .describe(`Hostname template; tokens: ${HOSTNAME_TOKENS.map((t) => `{${t}}`).join(' ')}`),
    machineId: z.enum(['new', 'keep', 'empty']).default('new').describe('new: a fresh random id; empty: systemd makes one on first boot; keep: leave it'),
    removeSshHostKeys: z.boolean().default(true).describe("Remove the image's /etc/ssh/ssh_host_*, which every copy would otherwise share"),
    sshHostKeys: z.enum(['new', 'none']).default('new').describe("new: make this machine's own SSH host keys with the image's ssh-keygen (Debian does not make missing ones on boot); none: leave it without"),
    files: z.array(FileSchema).default([]),
    unattend: z
      .union([z.object({ file: z.string().min(1) }).strict(), z.object({ xml: z.string().min(1) }).strict()], { message: 'expected { file: PATH } or { xml: TEXT }' })
      .optional()
      .describe('Windows answer file, written to Windows/Panther/unattend.xml'),
  })
  .strict();

export const BootloaderSchema = z
  .object({
    type: z.enum(['grub', 'none']).default('grub'),
    firmware: z.enum(['bios', 'uefi', 'both']).default('both'),
    kernelArgs: z.string().default('').describe("Added to the kernel command line: in a generated grub.cfg, or through /etc/default/grub.d when the image's own GRUB is used"),
    initramfs: z.enum(['rebuild', 'keep']).default('rebuild').describe("rebuild: every initramfs is rebuilt with the image's own tool on this machine (its resume device, host-only drivers); keep: leave the image's as they are"),
    secureBoot: z
      .boolean()
      .default(true)
      .describe("UEFI: boot through shim and Debian's signed GRUB (the image's shim-signed and grub-efi-amd64-signed when it has them, else the PE's), so the disk starts with Secure Boot on; its kernel must be signed too. false: an unsigned GRUB, which Secure Boot refuses. BIOS boot is the same either way"),
  })
  .strict();

export const PlanSchema = z
  .object({
    kind: z.literal('deploy').optional().describe('Says this is a deploy plan (the default); a capture plan says kind: capture'),
    source: SourceSchema,
    target: TargetSchema,
    // Left out only with layout: from-image, where it means source.index to the recorded partition.
    apply: z
      .array(ApplyEntrySchema)
      .min(1, { message: 'expected at least one image to apply' })
      .default([])
      .describe(`Which image goes to which partition; with target.layout: ${FROM_IMAGE} it may be left out`),
    specialize: SpecializeSchema.default({ machineId: 'new', removeSshHostKeys: true, sshHostKeys: 'new', files: [] }),
    bootloader: BootloaderSchema.default({ type: 'grub', firmware: 'both', kernelArgs: '', initramfs: 'rebuild', secureBoot: true }),
    after: z.enum(['reboot', 'poweroff', 'shell']).default('reboot'),
    logs: z.boolean().default(true).describe('Write the full log to logs/ on the share when it is writable'),
  })
  .strict()
  .superRefine((plan, ctx) => {
    if (isRawSource(plan.source)) {
      for (const p of rawPlanProblems(plan)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
      return;
    }
    if (plan.target.layout === undefined) {
      ctx.addIssue({ code: 'custom', path: ['target', 'layout'], message: `required (expected a layout ({ table, partitions }) or "${FROM_IMAGE}")` });
      return;
    }
    // A from-image layout is known only once the WIM is read; the deploy runs the same checks then.
    if (plan.target.layout === FROM_IMAGE) return;
    for (const key of ['grow', 'minSwap'] as const) {
      if (plan.target[key] !== undefined) ctx.addIssue({ code: 'custom', path: ['target', key], message: `only with layout: ${FROM_IMAGE}; an explicit layout gives every size itself` });
    }
    if (plan.apply.length === 0) ctx.addIssue({ code: 'custom', path: ['apply'], message: 'required with an explicit target.layout (expected at least one image to apply)' });
    for (const p of layoutProblems(plan.target.layout, plan)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
  })
  .describe('An imagepe deploy plan: where the image is, which disk and layout, how to specialize and boot it');

/**
 * Whether the plan's source is a raw disk image: `format: raw`, or `auto` with a raw image's file
 * name (imaging/raw's rawFormatOf: .img, .raw, .bin, .qcow2, and those compressed).
 */
export function isRawSource(source: { image: string; format: 'auto' | 'wim' | 'raw' }): boolean {
  return source.format === 'raw' || (source.format === 'auto' && rawFormatOf(source.image) !== undefined);
}

/**
 * What a raw image's plan may not say: the image carries its partition table, filesystems and
 * boot loader, so the plan gives no layout, apply entries or answer file, and nothing to re-plan.
 */
function rawPlanProblems(plan: { target: { layout?: unknown; minSwap?: string | undefined }; apply: readonly unknown[]; specialize: { unattend?: unknown } }): PlanProblem[] {
  const out: PlanProblem[] = [];
  if (plan.target.layout !== undefined && plan.target.layout !== FROM_IMAGE) out.push({ path: ['target', 'layout'], message: `a raw image is written whole, partition table included: leave target.layout out (or "${FROM_IMAGE}")` });
  if (plan.apply.length > 0) out.push({ path: ['apply'], message: 'a raw image is written whole: expected no apply entries' });
  if (plan.target.minSwap !== undefined) out.push({ path: ['target', 'minSwap'], message: 'a raw image keeps its partitions\' sizes (only target.grow grows one): expected no minSwap' });
  if (plan.specialize.unattend) out.push({ path: ['specialize', 'unattend'], message: 'not for a raw image: unattend.xml is placed on an NTFS partition a WIM is applied to' });
  return out;
}

/** The plan's layout; a raw image's plan has none and means the image's own table, as from-image does. */
export function planLayout(plan: { target: { layout?: Layout | typeof FROM_IMAGE | undefined } }): Layout | typeof FROM_IMAGE {
  return plan.target.layout ?? FROM_IMAGE;
}

export interface PlanProblem {
  path: (string | number)[];
  message: string;
}

/**
 * The checks that relate fields to the layout: apply names a partition that can take an image,
 * GRUB finds the partitions it needs, unattend.xml has an NTFS target. The schema runs them on an
 * explicit layout; the deploy runs them on a from-image layout once it has read it.
 */
export function layoutProblems(layout: Layout, plan: { apply: readonly ApplyEntry[]; bootloader: Bootloader; specialize: Specialize }, layoutName = 'target.layout'): PlanProblem[] {
  const out: PlanProblem[] = [];
  const issue = (path: (string | number)[], message: string) => out.push({ path, message });
  const volumes = layoutVolumes(layout);
  const names = new Set(volumes.map((p) => p.name));
  plan.apply.forEach((a, i) => {
    if (!names.has(a.partition)) {
      issue(['apply', i, 'partition'], `expected the name of a partition or logical volume (VG/LV) of ${layoutName} (${[...names].join(', ')})`);
      return;
    }
    const part = volumes.find((p) => p.name === a.partition)!;
    if (!['ext4', 'xfs', 'btrfs', 'ntfs'].includes(part.format)) issue(['apply', i, 'partition'], `expected a partition formatted ext4, xfs, btrfs or ntfs; ${a.partition} is ${part.format}`);
    if (a.mode === 'ntfs' && part.format !== 'ntfs') issue(['apply', i, 'mode'], `ntfs mode needs an ntfs partition; ${a.partition} is ${part.format}`);
    if (a.mode === 'linux' && part.format === 'ntfs') issue(['apply', i, 'mode'], `linux mode needs an ext4, xfs or btrfs partition; ${a.partition} is ntfs`);
    if (part.format !== 'ntfs' && !part.mount) issue(['apply', i, 'partition'], `expected partition ${a.partition} to have a mount point in ${layoutName}`);
  });
  if (plan.bootloader.type === 'grub') {
    if (!volumes.some((p) => mountPointsOf(p).includes('/'))) issue(['bootloader', 'type'], `grub needs a partition or logical volume with mount: / in ${layoutName}`);
    const fw = plan.bootloader.firmware;
    if ((fw === 'uefi' || fw === 'both') && !layout.partitions.some((p) => p.type === 'esp' && p.format === 'vfat')) {
      issue(['bootloader', 'firmware'], `${fw} needs an esp partition formatted vfat in ${layoutName}`);
    }
    if ((fw === 'bios' || fw === 'both') && layout.table === 'gpt' && !layout.partitions.some((p) => p.type === 'bios-boot')) {
      issue(['bootloader', 'firmware'], `${fw} on GPT needs a bios-boot partition in ${layoutName}`);
    }
  }
  if (plan.specialize.unattend && !plan.apply.some((a) => volumes.find((p) => p.name === a.partition)?.format === 'ntfs')) {
    issue(['specialize', 'unattend'], 'expected an apply entry to an ntfs partition to place unattend.xml on');
  }
  return out;
}

export type DeployPlan = z.output<typeof PlanSchema>;
export type DeployPlanInput = z.input<typeof PlanSchema>;
export type Source = z.output<typeof SourceSchema>;
export type Specialize = z.output<typeof SpecializeSchema>;
export type Bootloader = z.output<typeof BootloaderSchema>;
export type ApplyEntry = z.output<typeof ApplyEntrySchema>;

/** A plan that failed validation; each problem names the field path and the form expected. */
export class PlanError extends ImagepeError {
  constructor(
    readonly problems: string[],
    source: string,
    hint = 'See docs/deploy.md for the plan format; imagepe plan schema prints its JSON Schema.',
  ) {
    super('INVALID_INPUT', `${source} is not a valid plan:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { hint });
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), problems: this.problems };
  }
}

export function parsePlan(value: unknown, source = 'plan'): DeployPlan {
  const result = PlanSchema.safeParse(value);
  if (result.success) return result.data;
  throw new PlanError(planProblems(result.error.issues), source);
}

/** One line per problem: the field path and what was expected there. */
export function planProblems(issues: readonly z.core.$ZodIssue[]): string[] {
  return unwrapUnions(issues).map((issue) => `${formatPath(issue.path)}: ${issueMessage(issue)}`);
}

/**
 * A union whose other branches rejected the value's very type (an object given where the other
 * choice is a string) failed in the branch that fits: its own issues name the field that is wrong.
 */
function unwrapUnions(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== 'invalid_union') return [issue];
    const typeOnly = (branch: z.core.$ZodIssue[]) => branch.length === 1 && branch[0]!.path.length === 0 && (branch[0]!.code === 'invalid_type' || branch[0]!.code === 'invalid_value');
    const fitting = issue.errors.filter((branch) => !typeOnly(branch));
    if (fitting.length !== 1 || fitting[0]!.some((b) => b.path.length === 0)) return [issue];
    return unwrapUnions(fitting[0]!.map((b) => ({ ...b, path: [...issue.path, ...b.path] })));
  });
}

// zod's own message for a missing key is "Invalid input: expected string, received undefined";
// saying "required" is what the user needs to read.
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return `required (${issue.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, '')})`;
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  return issue.message;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

export function parsePlanText(text: string, source = 'plan'): DeployPlan {
  return parsePlan(planValueFromText(text, source), source);
}

/** A plan file's text as data: JSON when the name ends in .json, YAML otherwise. */
export function planValueFromText(text: string, source = 'plan'): unknown {
  const isJson = extname(source).toLowerCase() === '.json';
  try {
    return isJson ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new PlanError([`(file): not valid ${isJson ? 'JSON' : 'YAML'}: ${(e as Error).message}`], source);
  }
}

export async function loadPlan(file: string): Promise<DeployPlan> {
  return parsePlanText(await readPlanFile(file), file);
}

export async function readPlanFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ImagepeError('NOT_FOUND', `plan file ${file} does not exist`);
    throw e;
  }
}

/** The JSON Schema of a plan file, as published in docs/schema/plan.schema.json. */
export function planJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(PlanSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { $id: 'https://imagepe.dev/schema/plan.schema.json', title: 'imagepe deploy plan', ...schema };
}
