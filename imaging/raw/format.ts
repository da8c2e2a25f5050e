/** How a raw disk image is stored: as it is, compressed as one stream, or as a qcow2 virtual disk. */
export type RawFormat = 'raw' | 'zst' | 'xz' | 'gz' | 'qcow2';

/**
 * The format a file name says: `.img`, `.raw`, `.bin` → raw; `.zst`, `.xz`, `.gz` → that
 * compression whatever the inner name (`disk.img.zst`, `disk.zst`); `.qcow2` → qcow2. Case is
 * ignored; a URL's path is its name (query and fragment left out). Undefined for anything else,
 * so a caller asks for `format` explicitly rather than guessing.
 */
export function rawFormatOf(name: string): RawFormat | undefined {
  const base = baseName(name).toLowerCase();
  const ext = /.\.([a-z0-9]+)$/.exec(base)?.[1];
  switch (ext) {
    case 'img':
    case 'raw':
    case 'bin':
      return 'raw';
    case 'zst':
    case 'xz':
    case 'gz':
    case 'qcow2':
      return ext;
    default:
      return undefined;
  }
}

/**
 * Where bmaptool looks for the bmap of IMAGE, in order: IMAGE.bmap, then IMAGE with each of its
 * extensions stripped in turn, plus .bmap: `foo.img.zst` → `foo.img.zst.bmap`, `foo.img.bmap`,
 * `foo.bmap`. Works on paths and on URL paths alike (only the last component is touched).
 */
export function bmapCandidates(image: string): string[] {
  const slash = image.lastIndexOf('/') + 1;
  const dir = image.slice(0, slash);
  let base = image.slice(slash);
  const out = [`${dir}${base}.bmap`];
  for (let dot = base.lastIndexOf('.'); dot > 0; dot = base.lastIndexOf('.')) {
    base = base.slice(0, dot);
    out.push(`${dir}${base}.bmap`);
  }
  return out;
}

function baseName(name: string): string {
  let path = name;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(name)) {
    try {
      path = new URL(name).pathname;
    } catch {
      // not a URL after all: the name as it is
    }
  }
  return path.slice(path.lastIndexOf('/') + 1);
}
