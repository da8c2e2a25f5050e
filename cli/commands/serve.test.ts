import type { Machine, MachineChange } from '../../serve/index.js';
import { describeChange, formatChange, machinesTable } from './serve.js';

const machine: Machine = {
  mac: '52:54:00:12:34:56',
  ip: '10.0.0.5',
  arch: 7,
  archName: 'UEFI x64',
  firmware: 'uefi',
  ipxe: false,
  state: 'booting',
  detail: null,
  bootFile: 'snponly.efi',
  fetched: [{ file: 'snponly.efi', via: 'tftp', time: '2026-11-30T10:00:01Z' }],
  plan: null,
  planRequests: [],
  lastEvent: null,
  hostname: null,
  firstSeen: '2026-11-30T10:00:00Z',
  lastSeen: '2026-11-30T10:00:01Z',
  stateSince: '2026-11-30T10:00:00Z',
};

describe('imagepe serve output', () => {
  it('prints one line per change: MAC, address, architecture, what happened, the state and its change', () => {
    const line = formatChange({ machine, cause: 'fetched', previousState: 'booting' });
    expect(line).toMatch(/^\d\d:\d\d:\d\d {2}52:54:00:12:34:56 {2}10\.0\.0\.5 +UEFI x64 +fetched snponly\.efi \(tftp\) +booting$/);
    const failed: MachineChange = { machine: { ...machine, state: 'failed', detail: 'check: bad header', lastEvent: { type: 'failed', time: 't' } }, cause: 'event', previousState: 'deploying' };
    expect(formatChange(failed)).toMatch(/failed: check: bad header +deploying -> failed$/);
  });

  it('says what each kind of change was', () => {
    expect(describeChange({ machine, cause: 'dhcp', previousState: null })).toBe('network boot request');
    expect(describeChange({ machine: { ...machine, ipxe: true }, cause: 'dhcp', previousState: null })).toBe('iPXE asked for its boot script');
    expect(describeChange({ machine, cause: 'boot-file', previousState: 'booting' })).toBe('offered snponly.efi');
    expect(describeChange({ machine: { ...machine, plan: { file: 'default.yaml', status: 200, time: 't' } }, cause: 'plan', previousState: 'booting' })).toBe('plan default.yaml: given');
    expect(describeChange({ machine: { ...machine, state: 'up', detail: 'pc1: system running' }, cause: 'report', previousState: 'deployed' })).toBe('first boot: pc1: system running');
  });

  it('prints the machine table with the plan given, or how many were asked for in vain', () => {
    const text = machinesTable([
      { ...machine, state: 'deploying', plan: { file: 'default.yaml', status: 200, time: 't' }, lastEvent: { type: 'step', time: 't' }, detail: 'apply started' },
      { ...machine, mac: '52:54:00:00:00:02', ip: null, plan: { file: 'x.yaml', status: 404, time: 't' }, planRequests: [{ file: 'a.yaml', status: 404, time: 't' }, { file: 'x.yaml', status: 404, time: 't' }] },
    ]);
    const rows = text.split('\n');
    expect(rows[0]).toMatch(/^MAC +IP +ARCH +STATE +PLAN +LAST EVENT +SINCE +DETAIL$/);
    expect(rows[1]).toMatch(/^52:54:00:12:34:56 +10\.0\.0\.5 +UEFI x64 +deploying +default\.yaml +step +\d\d:\d\d:\d\d +apply started$/);
    expect(rows[2]).toMatch(/^52:54:00:00:00:02 +- +UEFI x64 +booting +none \(2 asked\) +- /);
  });
});
