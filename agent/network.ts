import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImagepeError } from '../core/index.js';

/**
 * Whether /proc/net/route lists any route: the loopback's are not in it, so a line means DHCP
 * has given a NIC an address (and with it the route to its subnet). A default route is not
 * required: a share on the local subnet needs none.
 */
export function hasRoute(routeTable: string): boolean {
  return routeTable
    .split('\n')
    .slice(1)
    .some((line) => line.trim().length > 0);
}

/**
 * /init starts DHCP on every NIC in the background so a deploy from the boot medium does not
 * wait for it; a step that needs the network waits here instead, bounded.
 */
export async function waitForNetwork(timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const table = await readFile('/proc/net/route', 'utf8').catch(() => '');
    if (hasRoute(table)) return;
    if (Date.now() > deadline) {
      throw new ImagepeError('NOT_FOUND', `no network after ${Math.round(timeoutMs / 1000)} s: no NIC got an address by DHCP`, {
        hint: 'Check the cable and the DHCP server; /run/imagepe/net.log in the PE shell has the DHCP client output.',
      });
    }
    await sleep(500, undefined, { signal });
  }
}
