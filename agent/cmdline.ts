import { MODES, type Mode } from './events/line.js';
import { bootifMac } from './server/machine.js';

export interface AgentCommandLine {
  mode: Mode;
  /** imagepe.plan=: a path in the PE or a URL, for the deploy step. */
  plan: string | null;
  /** imagepe.medium=: the volume id of the ISO the PE booted from. */
  medium: string | null;
  /**
   * imagepe.server=: the deployment server (imagepe serve) the PE was booted from, as its base
   * URL; it hands out plans and takes events and first-boot reports.
   */
  server: URL | null;
  /** BOOTIF= (set by iPXE and pxelinux): the MAC address of the interface the machine booted from. */
  bootMac: string | null;
  /** Every imagepe.* parameter, for steps that add their own. */
  params: Record<string, string>;
}

/**
 * Splits /proc/cmdline the way the kernel does: on spaces, with double quotes grouping a value
 * ("imagepe.plan=\"/a b\"" is one parameter).
 */
export function splitKernelCommandLine(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let any = false;
  for (const c of text.trim()) {
    if (c === '"') {
      quoted = !quoted;
      any = true;
    } else if (/\s/.test(c) && !quoted) {
      if (any) out.push(current);
      current = '';
      any = false;
    } else {
      current += c;
      any = true;
    }
  }
  if (any) out.push(current);
  return out;
}

/** The agent's settings from the kernel command line; an unknown mode falls back to shell. */
export function parseAgentCommandLine(text: string): AgentCommandLine {
  const params: Record<string, string> = {};
  let bootif: string | undefined;
  for (const word of splitKernelCommandLine(text)) {
    if (word.startsWith('BOOTIF=')) bootif = word.slice('BOOTIF='.length);
    if (!word.startsWith('imagepe.')) continue;
    const eq = word.indexOf('=');
    const key = (eq < 0 ? word : word.slice(0, eq)).slice('imagepe.'.length);
    params[key] = eq < 0 ? '' : word.slice(eq + 1);
  }
  const mode = params.mode ?? 'deploy';
  return {
    mode: (MODES as readonly string[]).includes(mode) ? (mode as Mode) : 'shell',
    plan: params.plan ? params.plan : null,
    medium: params.medium ? params.medium : null,
    server: serverUrl(params.server),
    bootMac: bootifMac(bootif),
    params,
  };
}

/** imagepe.server= as a base URL (always ending in /, so relative paths resolve under it); null when absent or not http(s). */
function serverUrl(value: string | undefined): URL | null {
  if (!value) return null;
  try {
    const url = new URL(value.endsWith('/') ? value : `${value}/`);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}
