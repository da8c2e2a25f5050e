import { readdir, readFile, rm } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import type { AgentEvent } from '../agent/events/index.js';
import { QUESTIONS } from '../agent/console/questions.js';
import { sharedTestBuild } from './shared-build.js';
import { startVm, withVm, type Vm } from './vm.js';

// Leaving the PE's shell, and `imagepe vm` as a terminal. One boot drives the shell through
// everything (help, Ctrl-C, exit to the menu and back to the console, reboot, poweroff); a
// second runs the CLI under a pseudo-terminal.
const BOOT_TIMEOUT_MS = 120_000;
const STEP_MS = 60_000;

const literally = (text: string) => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
const readyEvents = (vm: Vm) => vm.events.filter((e): e is Extract<AgentEvent, { type: 'ready' }> => e.type === 'ready');

/** From the console's first question to the PE's shell: deploy with no disk fails at once, then "s". */
async function consoleToShell(vm: Vm): Promise<string> {
  await vm.expect(literally(QUESTIONS.claim), BOOT_TIMEOUT_MS);
  vm.sendSerial('\r');
  await vm.expect(literally(QUESTIONS.mode), STEP_MS);
  vm.sendSerial('d\r');
  await vm.expect(literally(QUESTIONS.next), STEP_MS);
  vm.sendSerial('s\r');
  // busybox's line editor asks the terminal where its cursor is (ESC [6n) after the prompt.
  const { before } = await vm.expect(/imagepe \/\S* # /, STEP_MS);
  return before;
}

describe('the PE shell', () => {
  it('says how to leave it; Ctrl-C reaches its commands; exit leads to the menu and the console, reboot restarts the PE, poweroff ends QEMU', async () => {
    const build = await sharedTestBuild();
    const workDir = await mkdtemp(join(tmpdir(), 'imagepe-e2e-shell-'));
    const started = Date.now();
    await withVm(
      'PE shell',
      startVm({
        kernel: { image: build.pxe.kernel, initrd: build.pxe.initrd, append: 'console=ttyS0,115200n8 quiet loglevel=3 panic=10' },
        workDir,
        allowReboot: true,
        lifetimeMs: 3 * BOOT_TIMEOUT_MS + 5 * STEP_MS,
      }),
      async (vm) => {
        const help = await consoleToShell(vm);
        expect(help).toMatch(/imagepe shell\. To leave it:/);
        expect(help).toMatch(/exit +back to the menu: \[s\]hell, \[r\]eboot, \[p\]ower off, \[c\]onsole/);
        expect(help).toMatch(/reboot +restart the machine/);
        expect(help).toMatch(/poweroff +switch the machine off/);
        for (const line of help.split(/\r?\n/)) expect(line.length).toBeLessThanOrEqual(80);

        // Ctrl-C interrupts a command: the shell did not start with SIGINT ignored.
        vm.sendSerial('sleep 300\r');
        await vm.expect(/sleep 300\r?\n/, STEP_MS);
        await new Promise((r) => setTimeout(r, 3_000));
        vm.sendSerial('\x03');
        vm.sendSerial('echo "status=$?"\r');
        await vm.expect(/status=130/, 30_000);

        // exit: the menu, and c starts the technician console again (the agent says ready again).
        vm.sendSerial('exit\r');
        await vm.expect(/the shell has ended\. \[s\]hell, \[r\]eboot, \[p\]ower off, \[c\]onsole\? $/m, STEP_MS);
        vm.sendSerial('c\r');
        await consoleToShell(vm);
        expect(readyEvents(vm)).toHaveLength(2);

        // reboot: the kernel starts again (direct kernel boot reloads it), and the agent says ready.
        const rebootAt = vm.elapsedSeconds();
        vm.sendSerial('reboot\r');
        await vm.expect(/imagepe: rebooting/, STEP_MS);
        await vm.expect(/imagepe: starting the preinstallation environment/, BOOT_TIMEOUT_MS);
        await consoleToShell(vm);
        const ready = readyEvents(vm);
        expect(ready).toHaveLength(3);
        // A new kernel: up for less time than has passed since the reboot.
        expect(ready[2]!.uptimeSeconds).toBeLessThan(vm.elapsedSeconds() - rebootAt);

        vm.sendSerial('poweroff\r');
        await vm.expect(/imagepe: powering off/, STEP_MS);
        const exit = await vm.waitForExit(STEP_MS);
        expect(exit.exitCode).toBe(0);
        process.stdout.write(`PE shell: three consoles, a reboot and a poweroff in ${((Date.now() - started) / 1000).toFixed(1)} s wall (${vm.accel.accel})\n`);
      },
    );
    await rm(workDir, { recursive: true, force: true });
  }, 3 * BOOT_TIMEOUT_MS + 6 * STEP_MS);
});

describe('imagepe vm in a terminal', () => {
  it('types on the serial console (the first question answered) and quits with Ctrl-A x, leaving no QEMU', async () => {
    const build = await sharedTestBuild();
    const started = Date.now();
    const cli = `node ${resolve('dist/cli/main.js')} vm --iso ${build.iso} --timeout 300`;
    // script(1) gives the CLI a pseudo-terminal as its standard input and output.
    const child = execa('script', ['-qfec', cli, '/dev/null'], { stdin: 'pipe', buffer: false, reject: false, timeout: BOOT_TIMEOUT_MS + 4 * STEP_MS, forceKillAfterDelay: 3_000 });
    let output = '';
    let cursor = 0;
    const listeners = new Set<() => void>();
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      for (const l of [...listeners]) l();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const expectOutput = (pattern: RegExp, timeoutMs: number) =>
      new Promise<RegExpExecArray>((resolvePromise, reject) => {
        const check = () => {
          const m = pattern.exec(output.slice(cursor));
          if (!m) return;
          cursor += m.index + m[0].length;
          listeners.delete(check);
          clearTimeout(timer);
          resolvePromise(m);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${pattern} from imagepe vm within ${timeoutMs / 1000} s; it printed:\n${output.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    try {
      const log = (await expectOutput(/serial log (\S+serial\.log)/, 30_000))[1]!;
      await expectOutput(/Ctrl-A x +quit/, 30_000);
      await expectOutput(literally(QUESTIONS.claim), BOOT_TIMEOUT_MS);
      child.stdin.write('\r');
      await expectOutput(/imagepe technician console\./, STEP_MS);
      await expectOutput(literally(QUESTIONS.mode), STEP_MS);
      // The keys went to the guest and nowhere else: the console answered on the serial port.
      expect(await readFile(log, 'utf8')).toContain('imagepe technician console.');
      child.stdin.write('\x01x');
      await expectOutput(/quit \(Ctrl-A x\)/, 30_000);
      const result = await child;
      expect(result.exitCode).toBe(0);
      // No QEMU left with this VM's folder on its command line.
      const workDir = log.slice(0, -'/serial.log'.length);
      const left: string[] = [];
      for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes('qemu-system') && cmdline.includes(workDir)) left.push(pid);
      }
      expect(left).toEqual([]);
      process.stdout.write(`imagepe vm in a terminal: answered and quit in ${((Date.now() - started) / 1000).toFixed(1)} s wall\n`);
      await rm(workDir, { recursive: true, force: true });
    } finally {
      child.stdin.end();
      if (child.exitCode === null) child.kill('SIGKILL');
      await child.catch(() => undefined);
    }
  }, BOOT_TIMEOUT_MS + 5 * STEP_MS);
});
