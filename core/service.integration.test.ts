import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, ToolMissingError } from './errors.js';
import { ServiceExitedError, ServiceNotReadyError, startService, type Service } from './service.js';

// Real programs (busybox httpd, sh, sleep) stand in for dnsmasq: the wrapper must not care what it runs.
const started: Service[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
});
const track = (s: Service) => (started.push(s), s);

/** Whether a process exists and has not exited (a zombie waiting for its parent to reap it has). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('startService', () => {
  it('resolves once the start line appears, hands every line to the callbacks, and stop() ends it with SIGTERM', async () => {
    const lines: string[] = [];
    const s = track(await startService('sh', ['-c', 'echo starting; sleep 0.2; echo "listening on 1234" >&2; exec sleep 60'], { readyLine: /listening on \d+/, onStdoutLine: (l) => lines.push(`out:${l}`), onStderrLine: (l) => lines.push(`err:${l}`) }));
    expect(s.running).toBe(true);
    expect(lines).toEqual(['out:starting', 'err:listening on 1234']);
    const exit = await s.stop();
    expect(exit).toEqual({ exitCode: undefined, signal: 'SIGTERM' });
    expect(s.running).toBe(false);
    expect(alive(s.pid)).toBe(false);
  });

  it('waits for a condition: busybox httpd answering on its port', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imagepe-service-'));
    try {
      await writeFile(join(dir, 'hello.txt'), 'hello\n');
      const port = await freePort();
      const s = track(
        await startService('busybox', ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', dir], {
          readyCheck: async () => (await fetch(`http://127.0.0.1:${port}/hello.txt`, { signal: AbortSignal.timeout(1_000) })).ok,
          startTimeoutMs: 10_000,
        }),
      );
      expect(await (await fetch(`http://127.0.0.1:${port}/hello.txt`)).text()).toBe('hello\n');
      await s.stop();
      await expect(fetch(`http://127.0.0.1:${port}/hello.txt`, { signal: AbortSignal.timeout(1_000) })).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a program that exits before it started, with its status and stderr tail', async () => {
    const err = await startService('sh', ['-c', 'echo "dnsmasq: failed to bind DHCP server socket: Address in use" >&2; exit 2'], { readyLine: /started/, what: 'starting the DHCP server' }).catch((e) => e);
    expect(err).toBeInstanceOf(ServiceExitedError);
    expect(err.code).toBe('COMMAND_FAILED');
    expect(err.exitCode).toBe(2);
    expect(err.stderrTail).toBe('dnsmasq: failed to bind DHCP server socket: Address in use');
    expect(err.message).toMatch(/^starting the DHCP server: sh -c .* exited with status 2/);
  });

  it('stops a program whose start check does not pass in time', async () => {
    let pid = 0;
    const err = await startService('sh', ['-c', 'echo $$; echo "still loading" >&2; exec sleep 60'], { readyLine: /never/, startTimeoutMs: 300, onStdoutLine: (l) => (pid = Number(l)) }).catch((e) => e);
    expect(err).toBeInstanceOf(ServiceNotReadyError);
    expect(err.code).toBe('COMMAND_TIMEOUT');
    expect(err.message).toContain('still loading');
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
  });

  it('sends SIGKILL when SIGTERM is ignored, after the grace period', async () => {
    const s = track(await startService('sh', ['-c', 'trap "" TERM; echo up; while :; do sleep 0.1; done'], { readyLine: /^up$/, stopGraceMs: 300 }));
    const t0 = Date.now();
    expect(await s.stop()).toEqual({ exitCode: undefined, signal: 'SIGKILL' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('stops the helpers the program started (its process group)', async () => {
    let helper = 0;
    const s = track(await startService('sh', ['-c', 'sleep 60 & echo "helper $!"; wait'], { readyLine: /^helper/, onStdoutLine: (l) => (helper = Number(l.split(' ')[1])) }));
    expect(alive(helper)).toBe(true);
    await s.stop();
    // The kernel reaps the orphan through init; give it a moment.
    for (let i = 0; i < 50 && alive(helper); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(helper)).toBe(false);
  });

  it('reports an exit after the start as unexpected, with the stderr tail', async () => {
    const reported = new Promise<ServiceExitedError>((resolve) => {
      void startService('sh', ['-c', 'echo up; sleep 0.2; echo "lost the interface" >&2; exit 3'], { readyLine: /^up$/, what: 'the DHCP server', onUnexpectedExit: resolve }).then(track);
    });
    const err = await reported;
    expect(err).toBeInstanceOf(ServiceExitedError);
    expect(err.exitCode).toBe(3);
    expect(err.stderrTail).toBe('lost the interface');
  });

  it('does not report an exit that stop() asked for', async () => {
    let reports = 0;
    const s = await startService('sleep', ['60'], { onUnexpectedExit: () => reports++ });
    await s.stop();
    await new Promise((r) => setTimeout(r, 50));
    expect(reports).toBe(0);
  });

  it('stops when its signal aborts, during the start and after it', async () => {
    const during = new AbortController();
    setTimeout(() => during.abort(), 100);
    await expect(startService('sleep', ['60'], { readyLine: /never/, signal: during.signal })).rejects.toBeInstanceOf(CancelledError);
    const after = new AbortController();
    const s = await startService('sleep', ['60'], { signal: after.signal });
    after.abort();
    expect((await s.exited).signal).toBe('SIGTERM');
  });

  it('names the Debian package of a program that is not installed', async () => {
    await expect(startService('imagepe-no-such-daemon', [])).rejects.toBeInstanceOf(ToolMissingError);
  });
});
