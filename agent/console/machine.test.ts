import { logLines, placeOnShare, sharePlaces } from './log-place.js';
import { machineLines, type MachineSummary } from './machine.js';
import { hostnameHelp } from './deploy-job.js';
import { WIDTH } from './render.js';

const GiB = 1024 ** 3;

const qemu: MachineSummary = {
  vendor: 'QEMU',
  product: 'Standard PC (i440FX + PIIX, 1996)',
  serial: '',
  uuid: '00000000-0000-0000-0000-000000000000',
  firmware: { type: 'uefi', secureBoot: false, lockdown: 'none' },
  nics: [
    { mac: '52:54:00:00:00:0b', addresses: ['10.0.2.15/24'] },
    { mac: '52:54:00:00:00:0c', addresses: [] },
  ],
  disks: [
    { path: '/dev/vda', size: 2 * GiB, model: null, removable: false, readOnly: false },
    { path: '/dev/sda', size: 500 * GiB, model: 'Samsung SSD 870 EVO 500GB', removable: true, readOnly: false },
  ],
  bootMedium: '/dev/sr0',
};

describe('machineLines', () => {
  it('says in words what the machine is: model, serial, UUID, network and disks', () => {
    const lines = machineLines(qemu);
    expect(lines).toEqual([
      'This machine:',
      '  Model     QEMU Standard PC (i440FX + PIIX, 1996)',
      '  Serial    none (the firmware gives no serial number)',
      '  UUID      none (the firmware says "00000000-0000-0000-0000-000000000000")',
      '  Firmware  UEFI, Secure Boot off',
      '  Network   52:54:00:00:00:0b  10.0.2.15/24',
      '            52:54:00:00:00:0c  no address (DHCP got no answer yet)',
      '  Disks     /dev/vda  2.00 GiB',
      '            /dev/sda  500 GiB  Samsung SSD 870 EVO 500GB  (removable)',
      '            (/dev/sr0 is the medium this PE booted from)',
    ]);
  });

  it('says when there is no network card, no disk, or a model the firmware left unset', () => {
    const lines = machineLines({ ...qemu, vendor: 'To Be Filled By O.E.M.', product: '', serial: 'PF3ABC12', uuid: '4c4c4544-0044-3510-8052-b4c04f4e4d32', firmware: undefined, nics: [], disks: [], bootMedium: null });
    expect(lines).toContain('  Model     unknown (the firmware does not say)');
    expect(lines).toContain('  Serial    PF3ABC12');
    expect(lines).toContain('  UUID      4c4c4544-0044-3510-8052-b4c04f4e4d32');
    expect(lines).toContain('  Network   no network card found');
    expect(lines).toContain('  Disks     none found');
    expect(lines.join('\n')).not.toContain('Firmware');
  });

  it('stays within the width, in plain ASCII, whatever the firmware says', () => {
    const lines = machineLines({ ...qemu, vendor: 'V\u00e9ndor '.repeat(10), product: 'P'.repeat(120), nics: [{ mac: '52:54:00:00:00:0b', addresses: Array.from({ length: 8 }, (_, i) => `192.168.100.${i}/24`) }] });
    for (const l of lines) {
      expect(l.length).toBeLessThanOrEqual(WIDTH);
      expect(l).toMatch(/^[\x20-\x7e]*$/);
    }
  });
});

describe('hostnameHelp', () => {
  it('says what each token becomes here, and why one cannot be used', () => {
    const help = hostnameHelp({ mac: '52:54:00:12:34:56', serial: 'System Serial Number', uuid: '4C4C4544-0044-3510-8052-B4C04F4E4D32' });
    expect(help).toContain("  {mac}     525400123456 (the first network card's MAC, 52:54:00:12:34:56)");
    expect(help).toContain('  {serial}  none: the firmware\'s serial number is "System Serial Number", a placeholder');
    expect(help).toContain('  {uuid}    4c4c4544-0044-3510-8052-b4c04f4e4d32 (the system UUID, 4C4C4544-0044-3510-8052-B4C04F4E4D32)');
    expect(help).toContain('The default is pe-{mac}, here pe-525400123456.');
    const bare = hostnameHelp({ serial: 'SN 4711' });
    expect(bare).toContain('  {mac}     none: this machine has no network card');
    expect(bare).toContain('  {serial}  sn-4711 (the serial number, SN 4711)');
    expect(bare.join('\n')).toMatch(/The default is pe-\{random\}, here pe-[0-9a-f]{6}\./);
  });
});

describe('placeOnShare', () => {
  it('says where the log is as the share shows it, not as the PE mounted it', () => {
    expect(placeOnShare('smb://10.0.2.4/qemu', '/tmp/imagepe-smb-AbC123/logs/tech-b-2026.log')).toEqual({ url: 'smb://10.0.2.4/qemu/logs/tech-b-2026.log', unc: '\\\\10.0.2.4\\qemu\\logs\\tech-b-2026.log' });
    // The folder after the share name is in the mount's path below the share.
    expect(placeOnShare('smb://files.lab:4445/images/My%20Images', '/tmp/imagepe-smb-x/My Images/logs/a.log')).toEqual({ url: 'smb://files.lab:4445/images/My%20Images/logs/a.log', unc: '\\\\files.lab\\images\\My Images\\logs\\a.log' });
    expect(placeOnShare('nfs://nas/export/images', '/tmp/imagepe-nfs-q1/images/logs/a.log').url).toBe('nfs://nas/export/images/images/logs/a.log');
    expect(placeOnShare('file:///srv/share', '/srv/share/logs/a.log')).toEqual({ url: 'file:///srv/share/logs/a.log', unc: undefined });
    expect(placeOnShare('smb://s/q/', 'logs/a.log').url).toBe('smb://s/q/logs/a.log');
    expect(logLines('smb://s/q', undefined)).toEqual([]);
    expect(sharePlaces('+ share done: /tmp/imagepe-smb-RZkPwl\n', 'smb://10.0.2.4/qemu')).toBe('+ share done: smb://10.0.2.4/qemu\n');
    expect(sharePlaces('+ share done: /tmp/imagepe-smb-RZkPwl/images (ro)', 'smb://10.0.2.4/qemu/images')).toBe('+ share done: smb://10.0.2.4/qemu/images (ro)');
    expect(sharePlaces('+ plan done: 1 image from smb://10.0.2.4/qemu', 'smb://10.0.2.4/qemu')).toBe('+ plan done: 1 image from smb://10.0.2.4/qemu');
    expect(logLines('smb://s/q', 'logs/a.log')).toEqual(['  Log on the share:', '    smb://s/q/logs/a.log', '    \\\\s\\q\\logs\\a.log']);
  });
});
