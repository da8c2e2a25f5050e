/**
 * The PXE bundle's boot menus as `imagepe serve` hands them out: every kernel line also carries
 * `imagepe.server=<base URL>`, so the PE knows where to fetch its plan and post its events.
 * The bundle itself is left as `imagepe build` wrote it.
 */

/** The base URL always ends in "/", so plans/..., events/... resolve under it. */
export function normalizeBaseUrl(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/**
 * iPXE's setting for the MAC address of the interface it booted from, hyphen-separated
 * ("52-54-00-12-34-56"); `netX` is the device iPXE opened last, the one it booted through.
 */
export const IPXE_BOOT_MAC = '${netX/mac:hexhyp}';

/**
 * boot.ipxe with `imagepe.server=URL` on every `kernel` line, replacing one already there, and
 * `BOOTIF=01-<mac>` (pxelinux's form, which the PE reads to tell its boot interface) unless the
 * line has one. vmlinuz and initrd.img stay relative: iPXE fetches them from the script's own URL.
 */
export function rewriteIpxeScript(script: string, serverUrl: string): string {
  const server = normalizeBaseUrl(serverUrl);
  return script
    .split('\n')
    .map((line) => {
      if (!/^\s*kernel\s/.test(line)) return line;
      let out = line.replace(/\s+imagepe\.server=\S*/g, '').trimEnd();
      out += ` imagepe.server=${server}`;
      if (!/\sBOOTIF=/.test(out)) out += ` BOOTIF=01-${IPXE_BOOT_MAC}`;
      return out;
    })
    .join('\n');
}

/** A GRUB menu (the signed chain's grub/grub.cfg) with `imagepe.server=URL` on every `linux` line. */
export function rewriteGrubConfig(config: string, serverUrl: string): string {
  const server = normalizeBaseUrl(serverUrl);
  return config
    .split('\n')
    .map((line) => {
      if (!/^\s*linux(efi)?\s/.test(line)) return line;
      return `${line.replace(/\s+imagepe\.server=\S*/g, '').trimEnd()} imagepe.server=${server}`;
    })
    .join('\n');
}
