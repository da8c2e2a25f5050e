import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { ImagepeError } from '../../core/index.js';

/** Facts about the machine that a hostname template can use. */
export interface MachineFacts {
  /** The system serial number (DMI product_serial). */
  serial?: string;
  /** The MAC address of the first Ethernet interface, as the kernel prints it. */
  mac?: string;
  /** The DMI system UUID. */
  uuid?: string;
}

export const HOSTNAME_TOKENS = ['serial', 'mac', 'uuid', 'random'] as const;

const TOKEN = /\{([^{}]*)\}/g;

export function unknownTokens(template: string): string[] {
  return [...template.matchAll(TOKEN)].map((m) => m[1]!).filter((t) => !(HOSTNAME_TOKENS as readonly string[]).includes(t));
}

/**
 * Expands {serial} {mac} {uuid} {random} and reduces the result to a valid hostname label
 * (lower case letters, digits and hyphens, at most 63): serial numbers hold spaces and dots.
 */
export function expandHostname(template: string, facts: MachineFacts, random: () => string = () => randomBytes(3).toString('hex')): string {
  const bad = unknownTokens(template);
  if (bad.length > 0) throw new ImagepeError('INVALID_INPUT', `hostname template "${template}" has unknown token${bad.length > 1 ? 's' : ''} ${bad.map((b) => `{${b}}`).join(' ')}`);
  const value = (token: string): string => {
    switch (token) {
      case 'serial':
        return need(facts.serial, token);
      case 'mac':
        return need(facts.mac, token).replace(/[:-]/g, '');
      case 'uuid':
        return need(facts.uuid, token);
      default:
        return random();
    }
  };
  const expanded = template.replace(TOKEN, (_, t: string) => value(t));
  const name = expanded
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
  if (!name) throw new ImagepeError('INVALID_INPUT', `hostname template "${template}" expands to "${expanded}", which holds no valid hostname characters`);
  return name;
}

// What firmware writes into DMI fields nobody filled in: vendors' defaults, and UUIDs of one digit.
const PLACEHOLDERS = [
  /^(none|null|n\/?a|na|invalid|unknown|empty|oem|o\.e\.m\.|default|default string|to be filled by o\.e\.m\.?)$/i,
  /^not (specified|applicable|available|set|defined)$/i,
  /^(system|chassis|base ?board|product) (serial|serial number|product name|name|uuid|version)$/i,
  /^(serial|serial ?number|sn|s\/n)$/i,
  /^(0123456789|123456789|1234567890|12345678|01234567)$/,
  // One character repeated (0000…, FFFF…, xxxx…), with or without a UUID's dashes.
  /^([0-9a-z])(\1|-){3,}$/i,
  /^0+$/,
  // The UUID many boards share: a counting pattern, not an identity.
  /^03000200-0400-0500-0006-000700080009$/i,
];

/** Whether a DMI value is a firmware placeholder rather than this machine's own (serial "System Serial Number", UUID ffffffff-…). */
export function isFirmwarePlaceholder(value: string): boolean {
  const v = value.trim();
  return v === '' || PLACEHOLDERS.some((p) => p.test(v));
}

function need(v: string | undefined, token: string): string {
  // A hostname made of a placeholder would be the same on every machine of the model.
  if (!v || isFirmwarePlaceholder(v)) {
    throw new ImagepeError('NOT_FOUND', `the hostname template uses {${token}}, but this machine has none${v?.trim() ? ` (its firmware says "${v.trim()}", a placeholder every machine of the model may carry)` : ''}`, {
      hint: 'Use another token, such as {mac} or {random}.',
    });
  }
  return v.trim();
}

/** A DMI field of the system (/sys/class/dmi/id/FIELD), trimmed; empty when it cannot be read. */
export async function readDmiField(field: string, sys = '/sys'): Promise<string> {
  return (await readFile(`${sys}/class/dmi/id/${field}`, 'utf8').catch(() => '')).trim();
}

/**
 * The MAC addresses of the Ethernet interfaces (ARPHRD_ETHER, type 1), in interface-name order,
 * as the kernel prints them; bridges and virtual links without an address (all zeros) are left out.
 */
export async function readEthernetMacs(sys = '/sys'): Promise<string[]> {
  const read = async (p: string) => (await readFile(`${sys}/class/net/${p}`, 'utf8').catch(() => '')).trim();
  const macs: string[] = [];
  for (const n of (await readdir(`${sys}/class/net`).catch(() => [] as string[])).sort()) {
    if (n === 'lo') continue;
    const mac = await read(`${n}/address`);
    if ((await read(`${n}/type`)) === '1' && mac && mac !== '00:00:00:00:00:00') macs.push(mac);
  }
  return macs;
}

/** Reads the machine's facts from sysfs; a fact that cannot be read is left out. */
export async function readMachineFacts(): Promise<MachineFacts> {
  const facts: MachineFacts = {};
  const serial = await readDmiField('product_serial');
  if (serial) facts.serial = serial;
  const uuid = await readDmiField('product_uuid');
  if (uuid) facts.uuid = uuid.toLowerCase();
  // The first physical-looking one: bridges and virtual links come and go.
  const [mac] = await readEthernetMacs();
  if (mac) facts.mac = mac;
  return facts;
}
