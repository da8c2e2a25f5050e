import { existsSync, readdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { ImagepeError } from '../core/index.js';
import { subnetOf, type Ipv4Subnet } from './ipv4.js';

/** A network interface the server can serve on: its first IPv4 address and that address's subnet. */
export interface ServedInterface {
  name: string;
  address: string;
  subnet: Ipv4Subnet;
}

/**
 * Looks the interface up. Throws INVALID_INPUT when no name is given, NOT_FOUND when there is no
 * such interface (naming the ones there are) or when it has no IPv4 address.
 */
export function findServedInterface(name: string | undefined, sysClassNet = '/sys/class/net'): ServedInterface {
  const names = () => {
    try {
      return readdirSync(sysClassNet).filter((n) => n !== 'lo').sort();
    } catch {
      return Object.keys(networkInterfaces()).filter((n) => n !== 'lo');
    }
  };
  if (!name) {
    throw new ImagepeError('INVALID_INPUT', 'no network interface given: DHCP and TFTP answer on one interface only', {
      hint: `Pass --interface with the interface on the deployment network (${names().join(', ') || 'see ip link'}), or --no-dhcp --listen ADDRESS for HTTP only.`,
    });
  }
  const addresses = networkInterfaces()[name];
  if (!addresses && !existsSync(`${sysClassNet}/${name}`)) {
    throw new ImagepeError('NOT_FOUND', `there is no network interface ${name}`, { hint: `The interfaces here are: ${names().join(', ') || 'none but lo'}.` });
  }
  const v4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal) ?? addresses?.find((a) => a.family === 'IPv4');
  if (!v4 || !v4.cidr) {
    throw new ImagepeError('NOT_FOUND', `${name} has no IPv4 address`, {
      hint: `The server answers from its address on that network. Give it one (ip addr add 10.0.0.1/24 dev ${name}; ip link set ${name} up) and start again.`,
    });
  }
  const prefix = Number(v4.cidr.split('/')[1]);
  return { name, address: v4.address, subnet: subnetOf(v4.address, prefix) };
}
