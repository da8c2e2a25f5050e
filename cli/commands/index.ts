import type { CommandModule } from 'yargs';
import { doctorCommand } from './doctor.js';
import { generalizeCommand } from './generalize.js';
import { partitionCommand } from './partition.js';
import { wimCommands } from './wim.js';

// Every CLI command, in the order --help lists them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [...wimCommands, generalizeCommand, partitionCommand, doctorCommand];
