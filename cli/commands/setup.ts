import type { Argv, CommandModule } from 'yargs';
import { ImagepeError, PACKAGE_GROUPS, installPackages, missingPackages, packagesOf, type PackageGroup } from '../../core/index.js';
import { printJson } from '../output.js';

interface SetupArgs {
  json: boolean;
  with: string[];
  'dry-run': boolean;
}

const EXTRA_GROUPS = (Object.keys(PACKAGE_GROUPS) as PackageGroup[]).filter((g) => g !== 'core');

export const setupCommand: CommandModule<{ json: boolean }, SetupArgs> = {
  command: 'setup',
  describe: 'Install the Debian packages imagepe uses (as root, with apt-get; only what is missing)',
  builder: (y) =>
    (y as Argv<{ json: boolean }>)
      .option('with', { type: 'array', string: true, default: [], choices: EXTRA_GROUPS, describe: "Also what imagepe's own tests need (tests) or the container runtime for QEMU (container)" })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Only say what is missing; install nothing' })
      .example('sudo $0 setup', 'install what build, deploy, vm and serve need')
      .example('$0 setup --dry-run', 'list what is missing') as Argv<SetupArgs>,
  handler: async (a) => {
    const groups: PackageGroup[] = ['core', ...a.with.map((g) => g as PackageGroup)];
    const packages = packagesOf(groups);
    if (a['dry-run']) {
      const missing = await missingPackages(packages);
      if (a.json) printJson({ type: 'result', operation: 'setup', dryRun: true, missing, present: packages.length - missing.length });
      else process.stdout.write(missing.length === 0 ? `All ${packages.length} packages are installed.\n` : `Missing ${missing.length} of ${packages.length}: ${missing.join(' ')}\nInstall them with: sudo imagepe setup${a.with.length ? ` --with ${a.with.join(' ')}` : ''}\n`);
      if (missing.length > 0) process.exitCode = 7;
      return;
    }
    const r = await installPackages(packages, { onStep: (what) => !a.json && process.stderr.write(`imagepe setup: ${what}\n`) });
    if (a.json) printJson({ type: 'result', operation: 'setup', ...r });
    else process.stdout.write(r.installed.length === 0 ? `All ${packages.length} packages were already installed; nothing to do.\n` : `Installed ${r.installed.length} packages: ${r.installed.join(' ')}\n(${r.present.length} were already there.)\n`);
    checkNode();
  },
};

/** The PE carries this Node.js, so the version matters beyond running the CLI. */
function checkNode(): void {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    throw new ImagepeError('UNSUPPORTED', `Node.js ${process.versions.node} is too old: imagepe and the PE it builds need 20.19 or newer`, { hint: 'Install Node.js 22 LTS (or 20.19+) and run imagepe with it.' });
  }
}
