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

function need(v: string | undefined, token: string): string {
  // Firmware fills unset DMI fields with placeholders; a hostname made of one would repeat on every machine.
  if (!v || /^(none|default string|to be filled by o\.e\.m\.|not specified|0+)$/i.test(v.trim())) {
    throw new ImagepeError('NOT_FOUND', `the hostname template uses {${token}}, but this machine has none`, { hint: 'Use another token, such as {mac} or {random}.' });
  }
  return v.trim();
}

/** Reads the machine's facts from sysfs; a fact that cannot be read is left out. */
export async function readMachineFacts(): Promise<MachineFacts> {
  const facts: MachineFacts = {};
  const dmi = async (f: string) => (await readFile(`/sys/class/dmi/id/${f}`, 'utf8').catch(() => '')).trim();
  const serial = await dmi('product_serial');
  if (serial) facts.serial = serial;
  const uuid = await dmi('product_uuid');
  if (uuid) facts.uuid = uuid.toLowerCase();
  const nets = (await readdir('/sys/class/net').catch(() => [] as string[])).filter((n) => n !== 'lo').sort();
  for (const n of nets) {
    const type = (await readFile(`/sys/class/net/${n}/type`, 'utf8').catch(() => '')).trim();
    const mac = (await readFile(`/sys/class/net/${n}/address`, 'utf8').catch(() => '')).trim();
    // type 1 is Ethernet; bridges and virtual links come and go, so the first physical-looking one wins.
    if (type === '1' && mac && mac !== '00:00:00:00:00:00') {
      facts.mac = mac;
      break;
    }
  }
  return facts;
}
