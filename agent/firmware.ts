import { readFileSync } from 'node:fs';
import type { FirmwareState } from './events/index.js';

/** UEFI's global variable GUID (UEFI specification, "Globally Defined Variables"). */
const EFI_GLOBAL = '8be4df61-93ca-11d2-aa0d-00e098032b8c';

/**
 * The SecureBoot variable as efivarfs gives it: 4 bytes of attributes, then the value (1 = the
 * firmware enforces signatures). undefined for anything shorter.
 */
export function secureBootFromEfivar(bytes: Buffer): boolean | undefined {
  return bytes.length >= 5 ? bytes[4] === 1 : undefined;
}

/** The active mode of /sys/kernel/security/lockdown ("none [integrity] confidentiality"). */
export function lockdownMode(text: string): string | undefined {
  return /\[(\w+)\]/.exec(text)?.[1];
}

/**
 * How this machine started the PE: firmware type, whether Secure Boot is enforced and the
 * kernel's lockdown mode (under Secure Boot Debian's kernel locks itself down: only modules
 * signed with its own key load). /init mounts efivarfs and securityfs; null where one is not
 * readable. `sys` is where sysfs is mounted (tests point it at a copy).
 */
export function readFirmwareState(sys = '/sys'): FirmwareState {
  const read = (path: string) => {
    try {
      return readFileSync(`${sys}/${path}`);
    } catch {
      return undefined;
    }
  };
  const uefi = read('firmware/efi/systab') !== undefined || read('firmware/efi/fw_platform_size') !== undefined;
  let secureBoot: boolean | null = null;
  if (uefi) {
    const v = read(`firmware/efi/efivars/SecureBoot-${EFI_GLOBAL}`);
    // Without the variable (efivarfs mounted, firmware without Secure Boot) it is off.
    secureBoot = v ? (secureBootFromEfivar(v) ?? null) : efivarsMounted(sys) ? false : null;
  } else secureBoot = false;
  const lock = read('kernel/security/lockdown');
  return { type: uefi ? 'uefi' : 'bios', secureBoot, lockdown: lock ? (lockdownMode(lock.toString('utf8')) ?? null) : null };
}

function efivarsMounted(sys: string): boolean {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[1] === `${sys}/firmware/efi/efivars` && l.split(' ')[2] === 'efivarfs');
  } catch {
    return false;
  }
}
