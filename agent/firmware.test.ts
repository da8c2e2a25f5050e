import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockdownMode, readFirmwareState, secureBootFromEfivar } from './firmware.js';

describe('firmware state', () => {
  it('reads the SecureBoot variable after its 4 attribute bytes', () => {
    expect(secureBootFromEfivar(Buffer.from([6, 0, 0, 0, 1]))).toBe(true);
    expect(secureBootFromEfivar(Buffer.from([6, 0, 0, 0, 0]))).toBe(false);
    expect(secureBootFromEfivar(Buffer.from([6, 0, 0]))).toBeUndefined();
  });
  it('reads the active lockdown mode', () => {
    expect(lockdownMode('none [integrity] confidentiality\n')).toBe('integrity');
    expect(lockdownMode('[none] integrity confidentiality\n')).toBe('none');
    expect(lockdownMode('')).toBeUndefined();
  });
  it('tells UEFI with Secure Boot from BIOS on a sysfs tree', async () => {
    const sys = await mkdtemp(join(tmpdir(), 'imagepe-sys-'));
    try {
      expect(readFirmwareState(sys)).toEqual({ type: 'bios', secureBoot: false, lockdown: null });
      await mkdir(join(sys, 'firmware/efi/efivars'), { recursive: true });
      await mkdir(join(sys, 'kernel/security'), { recursive: true });
      await writeFile(join(sys, 'firmware/efi/fw_platform_size'), '64\n');
      await writeFile(join(sys, 'firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c'), Buffer.from([6, 0, 0, 0, 1]));
      await writeFile(join(sys, 'kernel/security/lockdown'), 'none [integrity] confidentiality\n');
      expect(readFirmwareState(sys)).toEqual({ type: 'uefi', secureBoot: true, lockdown: 'integrity' });
    } finally {
      await rm(sys, { recursive: true, force: true });
    }
  });
});
