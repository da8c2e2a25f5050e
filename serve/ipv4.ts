import { ImagepeError } from '../core/index.js';

/** IPv4 addresses as numbers and back, for subnets and DHCP ranges. */

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** 10.0.0.1 → 167772161; undefined for anything that is not a dotted quad. */
export function ipv4ToNumber(text: string): number | undefined {
  const m = DOTTED.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIpv4(text: string): boolean {
  return ipv4ToNumber(text) !== undefined;
}

/** 24 → 255.255.255.0. */
export function prefixToNetmask(prefixLength: number): string {
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) throw new ImagepeError('INVALID_INPUT', `${prefixLength} is not an IPv4 prefix length`);
  return numberToIpv4(prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0);
}

/** 255.255.255.0 → 24; undefined when the mask's ones are not contiguous. */
export function netmaskToPrefix(netmask: string): number | undefined {
  const n = ipv4ToNumber(netmask);
  if (n === undefined) return undefined;
  const bits = n.toString(2).padStart(32, '0');
  return /^1*0*$/.test(bits) ? bits.indexOf('0') < 0 ? 32 : bits.indexOf('0') : undefined;
}

export interface Ipv4Subnet {
  /** The network address: 10.77.0.0. */
  network: string;
  netmask: string;
  prefixLength: number;
}

/** The subnet an interface address lies in: 10.77.0.1/24 → 10.77.0.0, 255.255.255.0. */
export function subnetOf(address: string, prefixLength: number): Ipv4Subnet {
  const a = ipv4ToNumber(address);
  if (a === undefined) throw new ImagepeError('INVALID_INPUT', `${address} is not an IPv4 address`);
  const netmask = prefixToNetmask(prefixLength);
  return { network: numberToIpv4((a & ipv4ToNumber(netmask)!) >>> 0), netmask, prefixLength };
}

export function inSubnet(address: string, subnet: Ipv4Subnet): boolean {
  const a = ipv4ToNumber(address);
  return a !== undefined && subnetOf(address, subnet.prefixLength).network === subnet.network;
}
