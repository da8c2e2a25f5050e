import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

/** The built entry point (npm test builds first): the CLI as users run it. */
export const CLI_MAIN = resolve('dist/cli/main.js');

const exec = promisify(execFile);

/** Runs `imagepe ARGS` with stdin a pipe (no terminal: nobody can answer a question); its exit code and output, whatever the code. */
export async function runImagepe(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec('node', [CLI_MAIN, ...args], { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
