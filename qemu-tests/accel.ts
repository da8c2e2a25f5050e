import { constants } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/index.js';

export type Accelerator = 'kvm' | 'tcg';
export type AcceleratorChoice = Accelerator | 'auto';

export interface AccelDecision {
  accel: Accelerator;
  reason: string;
}

/** Whether /proc/cpuinfo advertises hardware virtualization (Intel VT-x or AMD-V). */
export function cpuHasVirtualization(cpuinfo: string): boolean {
  return cpuinfo.split('\n').some((l) => /^flags\s*:/.test(l) && /\b(vmx|svm)\b/.test(l));
}

/**
 * KVM only when the user forces it, or when the CPU advertises vmx/svm, /dev/kvm opens, and a
 * probe boot gets as far as the kernel banner. A /dev/kvm that opens is not enough: in nested
 * setups without the CPU flag, KVM guests hang right after the kernel decompresses.
 */
export function chooseAccelerator(input: { force: AcceleratorChoice; cpuinfo: string; kvmAccessible: boolean; probeOk?: boolean }): AccelDecision {
  if (input.force === 'kvm') return { accel: 'kvm', reason: 'forced by the user' };
  if (input.force === 'tcg') return { accel: 'tcg', reason: 'forced by the user' };
  if (!input.kvmAccessible) return { accel: 'tcg', reason: '/dev/kvm cannot be opened' };
  if (!cpuHasVirtualization(input.cpuinfo)) return { accel: 'tcg', reason: 'the CPU does not advertise vmx or svm' };
  if (input.probeOk === false) return { accel: 'tcg', reason: 'a probe boot under KVM did not reach the kernel banner' };
  return { accel: 'kvm', reason: 'hardware virtualization available' };
}

let cached: Promise<AccelDecision> | undefined;

/** chooseAccelerator on this host; the probe boot runs at most once per process. */
export function detectAccelerator(force: AcceleratorChoice = 'auto', probe?: () => Promise<boolean>): Promise<AccelDecision> {
  if (force !== 'auto') return Promise.resolve(chooseAccelerator({ force, cpuinfo: '', kvmAccessible: false }));
  const envForce = process.env.IMAGEPE_ACCEL;
  if (envForce === 'kvm' || envForce === 'tcg') return Promise.resolve(chooseAccelerator({ force: envForce, cpuinfo: '', kvmAccessible: false }));
  cached ??= (async () => {
    const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
    const kvmAccessible = await access('/dev/kvm', constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    );
    const first = chooseAccelerator({ force: 'auto', cpuinfo, kvmAccessible });
    if (first.accel !== 'kvm' || !probe) return first;
    return chooseAccelerator({ force: 'auto', cpuinfo, kvmAccessible, probeOk: await probe() });
  })();
  return cached;
}

/**
 * Boots the host kernel under KVM with no root filesystem: a working KVM prints the kernel
 * banner within a second or two and panics; a broken one hangs after decompression.
 */
export async function kvmProbe(bootDir = '/boot', timeoutMs = 20_000): Promise<boolean> {
  const kernel = (await readdir(bootDir).catch(() => [] as string[])).filter((n) => n.startsWith('vmlinuz-')).sort().at(-1);
  if (!kernel) return false;
  try {
    const r = await run(
      'qemu-system-x86_64',
      ['-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nodefaults', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', '-kernel', join(bootDir, kernel), '-append', 'console=ttyS0 panic=-1'],
      { timeoutMs, what: 'probing KVM', okExitCodes: [0, 1] },
    );
    return /Linux version/.test(r.stdout);
  } catch {
    return false;
  }
}
