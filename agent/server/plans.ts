import { ImagepeError } from '../../core/index.js';
import { macFileName, type MachineIdentity } from './machine.js';

/** The request header that names the asking machine's boot MAC on plan requests ("52:54:00:12:34:56"). */
export const MAC_HEADER = 'x-imagepe-mac';

/**
 * The plan files a machine asks its deployment server for, most specific first: one per MAC
 * (the boot interface's first), the DMI system UUID, the serial number, then default.yaml.
 * Names are file names under plans/, so a plain static HTTP server can serve them too.
 */
export function planCandidates(id: MachineIdentity): string[] {
  return [...id.macs.map((m) => `${macFileName(m)}.yaml`), ...(id.uuid ? [`${id.uuid}.yaml`] : []), ...(id.serial ? [`${id.serial}.yaml`] : []), 'default.yaml'];
}

export interface ServerPlan {
  text: string;
  /** The plan's URL, for messages and the log. */
  source: string;
}

/**
 * Asks the server for this machine's plan, in planCandidates order; a 404 moves on to the next
 * name. Resolves with null when the server has none for it (the technician's console then
 * decides). Throws NOT_FOUND when the server cannot be reached or answers anything but 200 or
 * 404, naming the URL: a missing plan is not the same as a server that is down.
 */
export async function fetchServerPlan(server: URL, id: MachineIdentity, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ServerPlan | null> {
  for (const name of planCandidates(id)) {
    const url = new URL(`plans/${encodeURIComponent(name)}`, server);
    const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs ?? 30_000)]) : AbortSignal.timeout(options.timeoutMs ?? 30_000);
    let response: Response;
    try {
      // The MAC rides along for imagepe serve's table: behind NAT or a port forward every machine has the same address.
      response = await fetch(url, { signal, headers: id.macs[0] ? { [MAC_HEADER]: id.macs[0] } : {} });
    } catch (e) {
      throw new ImagepeError('NOT_FOUND', `the deployment server at ${server.href} could not be reached for ${url.pathname}: ${(e as Error).message}`, {
        hint: 'Check that imagepe serve is running and that imagepe.server= on the kernel command line names an address this machine can reach.',
        cause: e,
      });
    }
    if (response.status === 404) {
      await response.body?.cancel();
      continue;
    }
    if (!response.ok) throw new ImagepeError('NOT_FOUND', `the deployment server answered HTTP ${response.status} for ${url.href}`, { hint: 'See the server\'s log.' });
    return { text: await response.text(), source: url.href };
  }
  return null;
}

/**
 * A plan's source url with `server:` (the deployment server the PE booted from, as `media:` is
 * the boot medium) resolved: "server:/images" → "http://10.0.0.1:8080/images". Other urls are
 * returned as they are. Throws INVALID_INPUT when the url names the server but the PE was not
 * started by one.
 */
export function resolveServerUrl(url: string, server: URL | null): string {
  if (!url.startsWith('server:')) return url;
  if (!server) {
    throw new ImagepeError('INVALID_INPUT', `the plan's source ${url} names the deployment server, but the PE was not booted from one (no imagepe.server= on the kernel command line)`, {
      hint: 'Boot the machine from imagepe serve, or give the image\'s full http://, smb:// or nfs:// url.',
    });
  }
  const path = url.slice('server:'.length).replace(/^\/+/, '');
  return new URL(path, server).href.replace(/\/$/, '');
}
