import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

// openTerminal on a real pseudo-terminal: util-linux script(1) gives the child one, with no
// native pty module. The child opens its tty by path, as the agent opens /dev/ttyS0, puts it in
// raw mode and talks; the test types into script's stdin like a harness into a serial port.
let dir: string;
let child: ChildProcessWithoutNullStreams | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagepe-tty-'));
  const entry = join(dir, 'child.ts');
  await writeFile(
    entry,
    `import { readlinkSync } from 'node:fs';
import { openTerminal } from ${JSON.stringify(resolve('agent/console/terminal.ts'))};
const term = openTerminal(readlinkSync('/proc/self/fd/0'));
term.write('Name: ');
const name = await term.readLine();
const secret = await term.readSecret('Secret: ');
term.write('got [' + name + '], a secret of ' + secret.length + ' characters\\n');
term.close();
`,
  );
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: join(dir, 'child.mjs'), logLevel: 'silent' });
});

afterAll(async () => {
  child?.kill();
  await rm(dir, { recursive: true, force: true });
});

it('reads lines in raw mode, echoing them itself, and never echoes a secret', async () => {
  child = spawn('script', ['-qefc', `${process.execPath} ${join(dir, 'child.mjs')}`, '/dev/null'], { stdio: 'pipe' });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const waitFor = async (text: string) => {
    for (let i = 0; i < 500 && !out.includes(text); i++) await new Promise((r) => setTimeout(r, 10));
    if (!out.includes(text)) throw new Error(`no "${text}" in: ${JSON.stringify(out)}`);
  };
  await waitFor('Name: ');
  // CR as a serial terminal sends it; Backspace as DEL; an arrow key's escape sequence.
  child.stdin.write('ax\x7fb\x1b[Dc\r');
  await waitFor('Secret: ');
  child.stdin.write('pw123\r');
  await waitFor('characters');
  expect(out).toContain('got [abc], a secret of 5 characters');
  expect(out).toContain('Name: ax\b \bbc\r');
  expect(out).not.toContain('pw123');
  const code = await new Promise<number | null>((r) => child!.on('exit', r));
  expect(code).toBe(0);
});
