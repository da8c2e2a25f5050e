import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ImagepeError } from '../core/index.js';

const MenuEntry = z
  .object({
    id: z.string().regex(/^[a-z0-9-]+$/, 'use lower-case letters, digits and dashes'),
    title: z.string().min(1),
    mode: z.enum(['deploy', 'capture', 'shell']),
    /** Extra kernel arguments for this entry only. */
    args: z.array(z.string()).default([]),
  })
  .strict();

export const BuildConfigSchema = z
  .object({
    kernel: z
      .object({
        /** A vmlinuz file; its version is read from the file name or given below. */
        path: z.string().optional(),
        /** A version under /lib/modules, e.g. 6.1.0-56-amd64; the kernel is /boot/vmlinuz-<version>. */
        version: z.string().optional(),
      })
      .strict()
      .default({}),
    /** The Node.js binary to run the agent with; by default the one running imagepe. */
    node: z.string().optional(),
    /** More programs to copy with their libraries: names looked up on PATH, or absolute paths. */
    tools: z.array(z.string()).default([]),
    /** More kernel modules: names (r8152) or module-tree directories ending in '/' (kernel/drivers/net/usb/). */
    modules: z.array(z.string()).default([]),
    /** Files copied into the PE as they are. */
    files: z
      .array(
        z
          .object({
            source: z.string(),
            target: z.string().regex(/^\//, 'must be an absolute path inside the PE'),
            mode: z.number().int().min(0).max(0o7777).optional(),
          })
          .strict(),
      )
      .default([]),
    /** A deploy plan embedded in the PE as /etc/imagepe/plan.json, used when imagepe.plan= is not given. */
    plan: z.record(z.string(), z.unknown()).optional(),
    menu: z
      .object({
        timeoutSeconds: z.number().int().min(0).max(600).default(2),
        /** unattended: no countdown when a plan is embedded or named on the command line (Shift held while GRUB starts still shows the menu); always: count down every time. */
        countdown: z.enum(['unattended', 'always']).default('unattended'),
        default: z.string().default('deploy'),
        entries: z
          .array(MenuEntry)
          .min(1)
          .default([
            { id: 'deploy', title: 'imagepe: deploy', mode: 'deploy', args: [] },
            { id: 'capture', title: 'imagepe: capture', mode: 'capture', args: [] },
            { id: 'shell', title: 'imagepe: shell', mode: 'shell', args: [] },
          ]),
      })
      .strict()
      .default({ timeoutSeconds: 2, countdown: 'unattended', default: 'deploy', entries: [
        { id: 'deploy', title: 'imagepe: deploy', mode: 'deploy', args: [] },
        { id: 'capture', title: 'imagepe: capture', mode: 'capture', args: [] },
        { id: 'shell', title: 'imagepe: shell', mode: 'shell', args: [] },
      ] }),
    console: z
      .object({
        /** Serial console device, or null for none. */
        serial: z.string().regex(/^ttyS\d+$/).nullable().default('ttyS0'),
        speed: z.number().int().positive().default(115200),
        /** Also show the boot menu and progress on the screen (tty1). */
        screen: z.boolean().default(true),
      })
      .strict()
      .default({ serial: 'ttyS0', speed: 115200, screen: true }),
    /** Kernel arguments added to every menu entry. */
    kernelArgs: z.array(z.string()).default(['quiet', 'loglevel=3', 'panic=10']),
    /**
     * Where the big part of the PE (Node.js, the tools, their libraries) lives: a squashfs image
     * next to the kernel that /init copies to RAM and mounts — firmware and GRUB load files
     * slowly, Linux reads the medium fast — or everything in the one initramfs.
     */
    payload: z.enum(['squashfs', 'initramfs']).default('squashfs'),
    /**
     * The UEFI boot chain of the ISO and the PXE bundle. true: Debian's signed shim and GRUB from
     * this machine's shim-signed and grub-efi-amd64-signed, so machines with Secure Boot on start
     * the PE (whose kernel must then be signed as well: Debian's is), and the PE carries them to
     * install on deployed disks. false: a GRUB built here, which Secure Boot refuses.
     */
    secureBoot: z.boolean().default(true),
    /** zstd level of the initramfs: higher is smaller and slower to build. */
    compressionLevel: z.number().int().min(1).max(19).default(9),
    /** Fixed timestamp for every file of the outputs; SOURCE_DATE_EPOCH overrides it. */
    sourceDateEpoch: z.number().int().nonnegative().optional(),
    volumeId: z.string().regex(/^[A-Z0-9_]{1,32}$/, 'ISO volume ids are upper-case letters, digits and _, at most 32').default('IMAGEPE'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.menu.entries.some((e) => e.id === c.menu.default)) {
      ctx.addIssue({ code: 'custom', path: ['menu', 'default'], message: `no menu entry has id "${c.menu.default}"` });
    }
  });

export type BuildConfig = z.output<typeof BuildConfigSchema>;
export type BuildConfigInput = z.input<typeof BuildConfigSchema>;

/** The JSON Schema of imagepe.yaml, for editors. */
export function buildConfigJsonSchema(): unknown {
  return z.toJSONSchema(BuildConfigSchema, { io: 'input' });
}

/** Validates a parsed config; errors name the field path ("menu.entries.0.mode: ..."). */
export function parseBuildConfig(value: unknown, source = 'build config'): BuildConfig {
  const result = BuildConfigSchema.safeParse(value ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
  throw new ImagepeError('INVALID_INPUT', `${source} is not valid:\n${lines.map((l) => `  ${l}`).join('\n')}`, {
    hint: 'See docs/pe.md for the fields of imagepe.yaml.',
  });
}

/**
 * Reads imagepe.yaml. Relative paths in it (kernel.path, node, files[].source) are taken
 * relative to the file, so a config works from any working directory.
 */
export async function loadBuildConfig(path: string | undefined): Promise<{ config: BuildConfig; file: string | undefined }> {
  if (path === undefined) {
    const fallback = resolve('imagepe.yaml');
    const text = await readFile(fallback, 'utf8').catch(() => undefined);
    if (text === undefined) return { config: parseBuildConfig({}), file: undefined };
    path = fallback;
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ImagepeError('NOT_FOUND', `build config ${path} cannot be read: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ImagepeError('INVALID_INPUT', `${path} is not valid YAML: ${(e as Error).message}`);
  }
  const config = parseBuildConfig(doc, path);
  const base = dirname(resolve(path));
  const abs = (p: string) => resolve(base, p);
  if (config.kernel.path) config.kernel.path = abs(config.kernel.path);
  if (config.node) config.node = abs(config.node);
  for (const f of config.files) f.source = abs(f.source);
  return { config, file: resolve(path) };
}
