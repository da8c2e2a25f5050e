import { fileURLToPath } from 'node:url';
import type { BuildResult } from '../builder/index.js';
import type { StartVmOptions } from '../qemu-tests/index.js';
import { startServer, type RunningServer } from '../serve/index.js';

// What the network section's VMs on QEMU's user network share: imagepe serve in this process,
// HTTP only on 127.0.0.1, which the guests reach as http://10.0.2.100/ through a guest forward.

/** The built CLI, beside this module in dist/. */
export const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
/** Where a VM on QEMU's user network reaches the in-process server; QEMU carries it to 127.0.0.1. */
export const USER_NET_SERVER_IP = '10.0.2.100';

/** imagepe serve in this process, HTTP only on 127.0.0.1 (a free port), telling machines http://10.0.2.100/. */
export function startUserNetServer(dir: string, build: BuildResult): Promise<RunningServer> {
  return startServer({ dir, pxeDir: build.pxe.dir, dhcp: { mode: 'off' }, listen: '127.0.0.1', port: 0, publicUrl: `http://${USER_NET_SERVER_IP}/` });
}

/** The options that make a VM boot from `server` over QEMU's user network: its iPXE fetches boot.ipxe over HTTP. */
export function userNetBoot(server: RunningServer): Pick<StartVmOptions, 'netBoot' | 'guestForwards'> {
  return {
    netBoot: { bootfile: `http://${USER_NET_SERVER_IP}/boot.ipxe` },
    guestForwards: [{ guestIp: USER_NET_SERVER_IP, guestPort: 80, hostPort: server.http.port, perConnection: true }],
  };
}
