import { ImagepeError } from '../../core/index.js';

/** A multicast session `imagepe serve` runs for an image: where to receive it. */
export interface MulticastOffer {
  /** udpcast's port base (the receivers' port; the sender's is the next one). */
  portbase: number;
  /** The sender's IPv4 address, which picks the interface to receive on. */
  server: string;
  /** How long the server waits for more receivers before it starts, in seconds. */
  maxWaitSeconds: number;
  minReceivers: number;
}

/**
 * Where a server that supports multicast describes the session for `imageUrl`: /api/multicast
 * followed by the image's path ("/api/multicast/images/base.wim").
 */
export function multicastOfferUrl(imageUrl: URL): URL {
  return new URL(`/api/multicast${imageUrl.pathname}`, imageUrl);
}

/**
 * Asks the image's server whether it sends the image by multicast. Resolves with the session's
 * details, or undefined when it does not (404, which any plain static server answers too).
 * Throws NOT_FOUND when the server cannot be reached or answers something else.
 */
export async function findMulticastOffer(imageUrl: URL, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<MulticastOffer | undefined> {
  const url = multicastOfferUrl(imageUrl);
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 15_000);
  let response: Response;
  try {
    response = await fetch(url, { signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout });
  } catch (e) {
    throw new ImagepeError('NOT_FOUND', `${url.href} could not be reached: ${(e as Error).message}`, { cause: e });
  }
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) throw new ImagepeError('NOT_FOUND', `${url.href} answered HTTP ${response.status}`);
  const offer = parseMulticastOffer(await response.json().catch(() => undefined));
  if (!offer) throw new ImagepeError('INVALID_INPUT', `${url.href} describes no multicast session the PE can use`, { hint: 'The server and the PE may be of different imagepe versions.' });
  return offer;
}

/** The offer's fields checked; undefined when any is missing or out of range. */
export function parseMulticastOffer(value: unknown): MulticastOffer | undefined {
  const v = value as Partial<MulticastOffer> | undefined;
  if (!v || typeof v !== 'object') return undefined;
  const { portbase, server, maxWaitSeconds, minReceivers } = v;
  if (typeof portbase !== 'number' || !Number.isInteger(portbase) || portbase < 1024 || portbase > 65534) return undefined;
  if (typeof server !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(server)) return undefined;
  if (typeof maxWaitSeconds !== 'number' || maxWaitSeconds < 0 || typeof minReceivers !== 'number' || minReceivers < 1) return undefined;
  return { portbase, server, maxWaitSeconds, minReceivers };
}
