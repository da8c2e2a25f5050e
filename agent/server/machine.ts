import { readDmiField, readEthernetMacs } from '../plan/hostname.js';

/** What a deployment server can know a machine by: the plan lookup keys and the address events are posted under. */
export interface MachineIdentity {
  /**
   * MAC addresses of the Ethernet interfaces, lower case and colon-separated; the one the
   * machine booted from (BOOTIF=) first, then the others in name order.
   */
  macs: string[];
  /** DMI system UUID, lower case; undefined when the firmware gives none or all zeros/ones. */
  uuid: string | undefined;
  /** DMI system serial number; undefined when absent or a placeholder the vendor left. */
  serial: string | undefined;
}

/**
 * The MAC that pxelinux's and iPXE's BOOTIF= parameter names ("01-52-54-00-12-34-56": ARP type
 * 1, Ethernet, then the address), as "52:54:00:12:34:56"; null when absent or malformed.
 */
export function bootifMac(value: string | undefined): string | null {
  const m = /^01-((?:[0-9a-f]{2}-){5}[0-9a-f]{2})$/i.exec(value ?? '');
  return m ? m[1]!.toLowerCase().replace(/-/g, ':') : null;
}

// Firmware fills unset DMI fields with these; a plan named after one would match every such machine.
const PLACEHOLDER_SERIALS = /^(|0+|none|default string|to be filled by o\.e\.m\.|system serial number|not specified|123456789)$/i;
const PLACEHOLDER_UUIDS = /^(0{8}-0{4}-0{4}-0{4}-0{12}|f{8}-f{4}-f{4}-f{4}-f{12}|03000200-0400-0500-0006-000700080009)$/i;

/** A usable DMI serial, or undefined for the vendors' placeholders and for text unsafe in a file name. */
export function usableSerial(serial: string | undefined): string | undefined {
  const s = serial?.trim();
  if (!s || PLACEHOLDER_SERIALS.test(s) || !/^[A-Za-z0-9._-]+$/.test(s) || s.startsWith('.')) return undefined;
  return s;
}

/** A usable DMI UUID (lower case), or undefined for the all-zeros, all-ones and known dummy values. */
export function usableUuid(uuid: string | undefined): string | undefined {
  const u = uuid?.trim().toLowerCase();
  if (!u || PLACEHOLDER_UUIDS.test(u) || !/^[0-9a-f-]{32,36}$/.test(u)) return undefined;
  return u;
}

/** Orders MACs with the boot interface's first and drops duplicates. */
export function orderMacs(macs: readonly string[], bootMac: string | null): string[] {
  const all = macs.map((m) => m.toLowerCase());
  return [...new Set(bootMac ? [bootMac.toLowerCase(), ...all] : all)];
}

/** Reads the machine's identity from sysfs (/sys/class/net, /sys/class/dmi/id); `bootMac` from BOOTIF= goes first. */
export async function readMachineIdentity(bootMac: string | null, sys = '/sys'): Promise<MachineIdentity> {
  const macs = (await readEthernetMacs(sys)).filter((m) => /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(m));
  return { macs: orderMacs(macs, bootMac), uuid: usableUuid(await readDmiField('product_uuid', sys)), serial: usableSerial(await readDmiField('product_serial', sys)) };
}

/** A MAC as the server's file and URL names write it: "52-54-00-12-34-56". */
export function macFileName(mac: string): string {
  return mac.toLowerCase().replace(/:/g, '-');
}
