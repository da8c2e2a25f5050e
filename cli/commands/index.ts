import type { CommandModule } from 'yargs';
import { buildCommand } from './build.js';
import { burnCommand } from './burn.js';
import { captureRawCommand } from './capture-raw.js';
import { deployCommand } from './deploy.js';
import { doctorCommand } from './doctor.js';
import { generalizeCommand } from './generalize.js';
import { partitionCommand } from './partition.js';
import { planCommand } from './plan.js';
import { serveCommand } from './serve.js';
import { setupCommand } from './setup.js';
import { vmCommand } from './vm.js';
import { wimCommands } from './wim.js';

// Every CLI command, in the order --help lists them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [...wimCommands, captureRawCommand, generalizeCommand, partitionCommand, planCommand, deployCommand, buildCommand, burnCommand, vmCommand, serveCommand, doctorCommand, setupCommand];
