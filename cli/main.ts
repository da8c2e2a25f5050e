#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ImagepeError } from '../core/index.js';
import { commands } from './commands/index.js';
import { exitStatusFor, printError } from './output.js';

const argv = hideBin(process.argv);
const json = argv.includes('--json');

try {
  await yargs(argv)
    .scriptName('imagepe')
    .usage('$0 <command> [options]\n\nImage-based deployment of bare-metal machines: WIM imaging, partitioning, a Linux PE.')
    .command(commands)
    .option('json', { type: 'boolean', default: false, global: true, describe: 'Machine-readable output: results and progress events as JSON lines' })
    .demandCommand(1, 'Name a command; imagepe --help lists them.')
    .strict()
    .recommendCommands()
    .wrap(Math.min(120, process.stdout.columns || 120))
    .fail((message, error) => {
      if (error) throw error;
      throw new ImagepeError('INVALID_INPUT', message, { hint: 'Run imagepe <command> --help for the options of a command.' });
    })
    .parseAsync();
} catch (error) {
  printError(error, json);
  process.exitCode = exitStatusFor(error);
}
