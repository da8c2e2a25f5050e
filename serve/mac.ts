/** MAC addresses as clients and URLs spell them. */

/** A MAC address in either common spelling as "52:54:00:12:34:56"; undefined when it is not one. */
export function normalizeMac(text: string): string | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text.trim());
  return m ? m.slice(1).join(':').toLowerCase() : undefined;
}

// One spelling for file names and URLs on both sides of the wire: the PE's.
export { macFileName } from '../agent/server/machine.js';
