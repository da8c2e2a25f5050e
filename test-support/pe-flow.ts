import { join } from 'node:path';
import { buildPe, parseBuildConfig, projectRoot, type BuildResult } from '../builder/index.js';
import type { AgentEvent } from '../agent/events/index.js';
import { startVm, withVm, type StartVmOptions, type Vm } from '../qemu-tests/index.js';
import { parseReport, REPORT_MARK } from './debian-reference.js';

// The PE driven from plans on QEMU's SMB share, and deployed disks booted until the system says
// how its boot went: the steps the end-to-end tests and the bench take with a real system.

/** Where QEMU's built-in Samba serves the share to the guest. */
export const SHARE_URL = 'smb://10.0.2.4/qemu';

const built = new Map<string, Promise<BuildResult>>();

/** A PE whose default menu entry runs `kind` with the plan at KIND.yaml on the share; built once per tag and process. */
export function planPe(kind: 'capture' | 'deploy', tag: string): Promise<BuildResult> {
  const key = `${tag}-${kind}`;
  if (!built.has(key)) {
    built.set(
      key,
      buildPe({
        config: parseBuildConfig({
          kernelArgs: ['quiet', 'loglevel=3', 'panic=10'],
          menu: { timeoutSeconds: 1, default: kind, entries: [{ id: kind, title: `imagepe: ${kind}`, mode: kind, args: [`imagepe.plan=${SHARE_URL}/${kind}.yaml`] }] },
        }),
        outputDir: join(projectRoot(), '.cache', `test-output-${key}`),
      }),
    );
  }
  return built.get(key)!;
}

/** What a PE run said: its end event, its steps' `done`/`skipped` details, its warnings, and when each step ended (seconds since QEMU started). */
export interface AgentRun {
  end: AgentEvent;
  steps: string[];
  warnings: string[];
  stepSeconds: Record<string, number>;
  seconds: number;
}

/** Waits for the agent's `done` event (a `failed` or `error` fails at once, with the event), then for QEMU to exit. */
export async function runAgent(vm: Vm, done: 'captured' | 'deployed', timeoutMs: number): Promise<AgentRun> {
  await vm.waitForLine(new RegExp(`"type":"(${done}|failed|error)"`), timeoutMs);
  const end = vm.events.find((e) => e.type === done || e.type === 'failed' || e.type === 'error')!;
  if (end.type !== done) throw new Error(`the agent did not finish: ${JSON.stringify(end)}`);
  const seconds = vm.elapsedSeconds();
  await vm.waitForExit(120_000);
  const started = new Map<string, number>();
  const stepSeconds: Record<string, number> = {};
  for (const e of vm.events) {
    if (e.type !== 'step') continue;
    if (e.status === 'started') started.set(e.step, Date.parse(e.time));
    else if (started.has(e.step)) stepSeconds[e.step] = (Date.parse(e.time) - started.get(e.step)!) / 1000;
  }
  return {
    end,
    steps: vm.events.filter((e) => e.type === 'step' && e.status !== 'started').map((e) => (e.type === 'step' ? `${e.step}: ${e.detail ?? ''}` : '')),
    warnings: vm.events.filter((e) => e.type === 'log' && e.level === 'warning').map((e) => (e.type === 'log' ? e.text : '')),
    stepSeconds,
    seconds,
  };
}

/** Boots a disk alone until the system's report unit prints how the boot went; `seconds` is QEMU start to that line. */
export async function bootReport(
  name: string,
  disk: string,
  o: { format: 'raw' | 'qcow2'; uefi: boolean; secureBoot?: boolean; workDir: string; timeoutMs: number; mac?: string; guestForwards?: StartVmOptions['guestForwards'] },
): Promise<Record<string, string> & { seconds: string }> {
  const net = { ...(o.mac ? { mac: o.mac } : {}), ...(o.guestForwards ? { guestForwards: o.guestForwards } : {}) };
  return withVm(`${name} boot`, startVm({ uefi: o.uefi, ...(o.secureBoot ? { secureBoot: true } : {}), ...net, disks: [{ path: disk, format: o.format }], memoryMiB: 1024, workDir: o.workDir, lifetimeMs: o.timeoutMs + 60_000 }), async (vm) => {
    const line = await vm.waitForLine(new RegExp(REPORT_MARK), o.timeoutMs);
    const seconds = vm.elapsedSeconds().toFixed(1);
    await vm.waitForExit(120_000);
    return { ...parseReport(line), seconds };
  });
}

/** The values of settled promises, or the first failure once all have ended (so no VM is left running). */
export function settled<T extends unknown[]>(results: { [K in keyof T]: PromiseSettledResult<T[K]> }): T {
  const failed = (results as PromiseSettledResult<unknown>[]).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return (results as PromiseFulfilledResult<unknown>[]).map((r) => r.value) as T;
}
