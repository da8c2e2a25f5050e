import { networkInterfaces } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatBytes } from '../../core/index.js';
import type { Disk, FirmwareState } from '../events/index.js';
import { readFirmwareState } from '../firmware.js';
import { isFirmwarePlaceholder, readDmiField, readEthernetMacs } from '../plan/index.js';
import { WIDTH, wrap } from './render.js';

/** What the first screen says about the machine, so the technician knows which one this is. */
export interface MachineSummary {
  /** DMI sys_vendor and product_name, as the firmware gives them ("" when it gives none). */
  vendor: string;
  product: string;
  serial: string;
  uuid: string;
  firmware: FirmwareState | undefined;
  /** The Ethernet cards in interface-name order, with their IPv4 addresses ("10.0.2.15/24"). */
  nics: { mac: string; addresses: string[] }[];
  disks: readonly Disk[];
  bootMedium: string | null;
}

/** The IPv4 addresses of each MAC, from the kernel's interface list. */
function addressesByMac(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv4' || a.internal) continue;
      const mac = a.mac.toLowerCase();
      out.set(mac, [...(out.get(mac) ?? []), a.cidr ?? a.address]);
    }
  }
  return out;
}

/**
 * Reads what the first screen shows. /init starts DHCP in the background, so a card without an
 * address yet gets up to `waitMs` to have one before the screen says it has none.
 */
export async function readMachineSummary(disks: readonly Disk[], bootMedium: string | null, options: { waitMs?: number } = {}): Promise<MachineSummary> {
  const macs = await readEthernetMacs();
  const deadline = Date.now() + (options.waitMs ?? 5_000);
  let addresses = addressesByMac();
  while (macs.length > 0 && !macs.some((m) => addresses.has(m.toLowerCase())) && Date.now() < deadline) {
    await sleep(250);
    addresses = addressesByMac();
  }
  let firmware: FirmwareState | undefined;
  try {
    firmware = readFirmwareState();
  } catch {
    firmware = undefined;
  }
  return {
    vendor: await readDmiField('sys_vendor'),
    product: await readDmiField('product_name'),
    serial: await readDmiField('product_serial'),
    uuid: (await readDmiField('product_uuid')).toLowerCase(),
    firmware,
    nics: macs.map((mac) => ({ mac, addresses: addresses.get(mac.toLowerCase()) ?? [] })),
    disks,
    bootMedium,
  };
}

/** A DMI value, or why there is none: a placeholder is not this machine's own. */
function dmi(value: string, what: string): string {
  const v = value.trim();
  if (!v) return `none (the firmware gives no ${what})`;
  return isFirmwarePlaceholder(v) ? `none (the firmware says "${v}")` : v;
}

function firmwareText(fw: FirmwareState): string {
  if (fw.type !== 'uefi') return 'BIOS';
  const sb = fw.secureBoot === null ? 'unknown' : fw.secureBoot ? 'on' : 'off';
  return `UEFI, Secure Boot ${sb}`;
}

/**
 * The machine in words, for the screen and the serial console above "Press Enter": model,
 * serial number, UUID, firmware, network cards with their addresses (or that there are none)
 * and the disks with their sizes. Lines fit the console width.
 */
export function machineLines(m: MachineSummary, width = WIDTH): string[] {
  const rows: [string, string[]][] = [];
  const model = [m.vendor, m.product].filter((v) => v.trim() && !isFirmwarePlaceholder(v)).join(' ');
  rows.push(['Model', [model || 'unknown (the firmware does not say)']]);
  rows.push(['Serial', [dmi(m.serial, 'serial number')]]);
  rows.push(['UUID', [dmi(m.uuid, 'UUID')]]);
  if (m.firmware) rows.push(['Firmware', [firmwareText(m.firmware)]]);
  const nics = m.nics.map((n) => `${n.mac}  ${n.addresses.length ? n.addresses.join(', ') : 'no address (DHCP got no answer yet)'}`);
  rows.push(['Network', nics.length ? nics : ['no network card found']]);
  const disks = m.disks.map((d) => `${d.path}  ${formatBytes(d.size)}${d.model ? `  ${d.model}` : ''}${d.readOnly ? '  (read-only)' : ''}${d.removable ? '  (removable)' : ''}`);
  rows.push(['Disks', disks.length ? disks : ['none found']]);
  if (m.bootMedium) rows.push(['', [`(${m.bootMedium} is the medium this PE booted from)`]]);
  const out = ['This machine:'];
  for (const [title, values] of rows) {
    values.forEach((v, i) => {
      const head = `  ${(i === 0 ? title : '').padEnd(10)}`;
      out.push(...wrap(`${head}${v}`, width, ' '.repeat(head.length)));
    });
  }
  return out;
}
