import type { Argv, CommandModule } from 'yargs';
import { formatBytes, formatDuration } from '../../core/index.js';
import { buildConfigJsonSchema, buildPe, loadBuildConfig } from '../../builder/index.js';
import { printJson } from '../output.js';
import { withProgress } from '../progress.js';

interface BuildArgs {
  json: boolean;
  config?: string;
  output: string;
  cache: boolean;
  'cache-dir'?: string;
  schema: boolean;
}

export const buildCommand: CommandModule<{ json: boolean }, BuildArgs> = {
  command: 'build',
  describe: 'Build the preinstallation environment: a hybrid BIOS/UEFI ISO and a PXE bundle',
  builder: (y) =>
    (y as Argv<{ json: boolean }>)
      .option('config', { alias: 'c', type: 'string', describe: 'Build config (default: ./imagepe.yaml if present, else built-in defaults)' })
      .option('output', { alias: 'o', type: 'string', default: 'out', describe: 'Directory for imagepe.iso and pxe/' })
      .option('cache', { type: 'boolean', default: true, describe: 'Reuse a cached build of the same inputs (--no-cache to rebuild)' })
      .option('cache-dir', { type: 'string', describe: 'Build cache (default: $IMAGEPE_CACHE_DIR, $XDG_CACHE_HOME/imagepe, .cache/ in a checkout, ~/.cache/imagepe when installed)' })
      .option('schema', { type: 'boolean', default: false, describe: 'Print the JSON Schema of imagepe.yaml and exit' })
      .example('$0 build', 'build out/imagepe.iso and out/pxe/ from the defaults')
      .example('SOURCE_DATE_EPOCH=1700000000 $0 build -c imagepe.yaml -o dist', 'a reproducible build') as Argv<BuildArgs>,
  handler: async (a) => {
    if (a.schema) {
      process.stdout.write(`${JSON.stringify(buildConfigJsonSchema(), null, 2)}\n`);
      return;
    }
    const { config, file } = await loadBuildConfig(a.config);
    const r = await withProgress(`Building the PE${file ? ` from ${file}` : ''}`, a.json, (events) =>
      buildPe({ config, outputDir: a.output, useCache: a.cache, cacheDir: a['cache-dir'], events }),
    );
    if (a.json) {
      printJson({ type: 'result', operation: 'build', ...r });
      return;
    }
    process.stdout.write(
      [
        `ISO:  ${r.iso} (${formatBytes(r.isoBytes)}, volume ${r.volumeId})`,
        `PXE:  ${r.pxe.dir}/ (vmlinuz, initrd.img ${formatBytes(r.initrdBytes)}, boot.ipxe, grub.cfg)`,
        `Kernel ${r.kernel.version}; ${r.cached ? 'from the cache' : 'built'} in ${formatDuration(r.durationMs / 1000)}`,
        '',
      ].join('\n'),
    );
  },
};
