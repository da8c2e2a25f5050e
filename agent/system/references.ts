/**
 * How an installed Linux system names its storage, and how those names move from the reference
 * machine's filesystems to the deployed machine's. Pure: the caller gives the facts.
 */

import { logicalVolumeNode } from '../../partition/index.js';

/** The kinds of name a system uses for a filesystem or partition. */
export type ReferenceKind = 'uuid' | 'label' | 'partuuid' | 'partlabel' | 'device' | 'lvm';

/** A name for a filesystem as a config file writes it: `UUID=…`, `/dev/disk/by-label/…`, `/dev/sda2`. */
export interface StorageReference {
  kind: ReferenceKind;
  /** For kind lvm: VG/LV. */
  value: string;
  /** How it was written: as `KEY=value`, or as a /dev path (an LVM volume: /dev/VG/LV, or `mapper`: /dev/mapper/VG-LV). */
  form: 'tag' | 'path' | 'mapper';
}

/** One filesystem (or swap area, or unformatted partition) and every name it answers to. */
export interface VolumeIdentity {
  /** The layout's partition name. */
  partition: string;
  /** Partition number on its disk. */
  number?: number | undefined;
  fsType?: string | undefined;
  uuid?: string | undefined;
  label?: string | undefined;
  partuuid?: string | undefined;
  /** The GPT partition name. */
  partlabel?: string | undefined;
  /** Where the system mounts it ("swap" for swap), from the layout or the system's fstab. */
  mount?: string | undefined;
  /** Every mount point of a filesystem mounted more than once (btrfs subvolumes). */
  mounts?: string[] | undefined;
  /** An LVM logical volume: VG/LV, which /dev/VG/LV and /dev/mapper/VG-LV name. */
  lv?: string | undefined;
}

const TAGS: Record<string, ReferenceKind> = { UUID: 'uuid', LABEL: 'label', PARTUUID: 'partuuid', PARTLABEL: 'partlabel' };
const BY_DIRS: Record<string, ReferenceKind> = { 'by-uuid': 'uuid', 'by-label': 'label', 'by-partuuid': 'partuuid', 'by-partlabel': 'partlabel' };
// Kernel names of disk partitions: sda1, vdb2, xvda3, hda1, nvme0n1p2, mmcblk0p1.
const DEVICE_NAME = /^\/dev\/(?:(?:[shv]d|xvd)[a-z]+\d+|(?:nvme\d+n\d+|mmcblk\d+)p\d+)$/;

// LVM's names (lvm(8), VALID NAMES): letters, digits and + _ . -, not starting with -.
const LVM_NAME = '[A-Za-z0-9+_.][A-Za-z0-9+_.-]*';
// /dev directories that are not volume groups (an LV at /dev/VG/LV could otherwise be anything).
const NOT_VG = new Set(['disk', 'mapper', 'block', 'char', 'bus', 'cpu', 'dri', 'fd', 'hugepages', 'input', 'md', 'mqueue', 'net', 'pts', 'shm', 'snd', 'usb', 'vfio', 'zvol', 'lvm']);

/** Reads a storage reference, or undefined for anything else (`proc`, `tmpfs`, `server:/export`, `/dev/mapper/luks-…`). */
export function parseReference(text: string): StorageReference | undefined {
  const tag = /^(UUID|LABEL|PARTUUID|PARTLABEL)=(.+)$/.exec(text);
  if (tag) return { kind: TAGS[tag[1]!]!, value: unquote(tag[2]!), form: 'tag' };
  const by = /^\/dev\/disk\/(by-uuid|by-label|by-partuuid|by-partlabel)\/(.+)$/.exec(text);
  if (by) return { kind: BY_DIRS[by[1]!]!, value: unescapeUdev(by[2]!), form: 'path' };
  if (DEVICE_NAME.test(text)) return { kind: 'device', value: text, form: 'path' };
  const mapper = /^\/dev\/mapper\/(.+)$/.exec(text);
  const lv = mapper ? splitMapperName(mapper[1]!) : undefined;
  if (lv) return { kind: 'lvm', value: lv, form: 'mapper' };
  const vgPath = new RegExp(`^/dev/(${LVM_NAME})/(${LVM_NAME})$`).exec(text);
  if (vgPath && !NOT_VG.has(vgPath[1]!)) return { kind: 'lvm', value: `${vgPath[1]}/${vgPath[2]}`, form: 'path' };
  return undefined;
}

/**
 * VG/LV from a device-mapper name: device-mapper joins them with one hyphen and doubles the
 * hyphens inside each (vg--sys-root is vg-sys/root). Undefined for a name that is not of that
 * form (a dm-crypt mapping such as luks-…, or one hyphen too few).
 */
export function splitMapperName(name: string): string | undefined {
  const m = /^((?:[^-]|--)+)-((?:[^-]|--)+)$/.exec(name);
  if (!m) return undefined;
  const vg = m[1]!.replace(/--/g, '-');
  const lv = m[2]!.replace(/--/g, '-');
  if (!new RegExp(`^${LVM_NAME}$`).test(vg) || !new RegExp(`^${LVM_NAME}$`).test(lv)) return undefined;
  return `${vg}/${lv}`;
}


/** Writes a reference the way it was read (a tag stays a tag, a path a path). */
export function formatReference(r: StorageReference): string {
  if (r.kind === 'device') return r.value;
  if (r.kind === 'lvm') {
    const [vg, lv] = r.value.split('/') as [string, string];
    return r.form === 'mapper' ? logicalVolumeNode(vg, lv) : `/dev/${r.value}`;
  }
  const tag = Object.keys(TAGS).find((k) => TAGS[k] === r.kind)!;
  if (r.form === 'tag') return `${tag}=${/[\s"]/.test(r.value) ? `"${r.value}"` : r.value}`;
  const dir = Object.keys(BY_DIRS).find((k) => BY_DIRS[k] === r.kind)!;
  return `/dev/disk/${dir}/${escapeUdev(r.value)}`;
}

function unquote(s: string): string {
  return /^"(.*)"$/.exec(s)?.[1] ?? s;
}

/** udev writes unsafe bytes of a label as \xHH in /dev/disk/by-label names (a space is \x20). */
function unescapeUdev(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function escapeUdev(s: string): string {
  return s.replace(/[^A-Za-z0-9#+\-.:=@_]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Whether `id` answers to `r` (UUIDs compared without case, labels exactly). */
export function answersTo(id: VolumeIdentity, r: StorageReference): boolean {
  const same = (a: string | undefined, b: string, caseless: boolean) => a !== undefined && (caseless ? a.toLowerCase() === b.toLowerCase() : a === b);
  switch (r.kind) {
    case 'uuid':
      return same(id.uuid, r.value, true);
    case 'partuuid':
      return same(id.partuuid, r.value, true);
    case 'label':
      return same(id.label, r.value, false);
    case 'partlabel':
      return same(id.partlabel, r.value, false);
    case 'device':
      return id.number !== undefined && Number(/(\d+)$/.exec(r.value)?.[1]) === id.number;
    case 'lvm':
      return same(id.lv, r.value, false);
  }
}

/**
 * The same kind of name for the new volume: a UUID stays a UUID, a label a label when the new
 * filesystem has one. A kernel device name (/dev/sda2) becomes UUID=, since the disk may have
 * another name on the new machine; so does a label or partition name the new volume lacks.
 */
export function referenceTo(id: VolumeIdentity, like: StorageReference): string | undefined {
  const uuidRef = (): string | undefined => (id.uuid ? formatReference({ kind: 'uuid', value: id.uuid, form: like.form === 'path' && like.kind !== 'device' && like.kind !== 'lvm' ? 'path' : 'tag' }) : id.partuuid ? formatReference({ kind: 'partuuid', value: id.partuuid, form: 'tag' }) : undefined);
  switch (like.kind) {
    case 'uuid':
      return uuidRef();
    case 'partuuid':
      return id.partuuid ? formatReference({ kind: 'partuuid', value: id.partuuid, form: like.form }) : uuidRef();
    case 'label':
      return id.label ? formatReference({ kind: 'label', value: id.label, form: like.form }) : uuidRef();
    case 'partlabel':
      return id.partlabel ? formatReference({ kind: 'partlabel', value: id.partlabel, form: like.form }) : uuidRef();
    case 'device':
      return uuidRef();
    case 'lvm':
      // A logical volume stays one by its path (its VG/LV name in the new layout), else by UUID.
      return id.lv ? formatReference({ kind: 'lvm', value: id.lv, form: like.form }) : uuidRef();
  }
}

/**
 * Which new volume each old one became. Built from what is known of the reference (the
 * identities recorded at capture, matched to the new layout's partitions by name; the system's
 * own fstab, matched by mount point) and the volumes the deploy made.
 */
export class VolumeMap {
  private readonly pairs: { from: VolumeIdentity; to: VolumeIdentity }[] = [];

  constructor(readonly volumes: readonly VolumeIdentity[]) {}

  /** Says that the reference's `from` is now `to`; a later pair for the same name does not replace an earlier one. */
  add(from: VolumeIdentity, to: VolumeIdentity): void {
    this.pairs.push({ from, to });
  }

  /** The new volume an old reference names, or undefined when nothing maps it. */
  resolve(r: StorageReference): VolumeIdentity | undefined {
    // A reference that already names a new volume (deployed with the same UUIDs) needs no mapping.
    const direct = this.volumes.find((v) => r.kind !== 'device' && answersTo(v, r));
    if (direct) return direct;
    return this.pairs.find((p) => answersTo(p.from, r))?.to;
  }

  /** The reference rewritten for the new volume; undefined when it is not an old reference, or is already right. */
  rewrite(text: string): string | undefined {
    const r = parseReference(text);
    if (!r) return undefined;
    if (r.kind !== 'device' && this.volumes.some((v) => answersTo(v, r))) return undefined;
    const to = this.pairs.find((p) => answersTo(p.from, r))?.to;
    if (!to) return undefined;
    const out = referenceTo(to, r);
    return out === text ? undefined : out;
  }
}

/** Kernel command-line arguments whose value names a filesystem or a swap area. */
const REFERENCE_ARGS = /^(root|resume|real_root|rd\.resume|systemd\.swap|REAL_ROOT)=(.+)$/;

/**
 * A word of a kernel command line or a shell value with its storage reference rewritten:
 * `root=UUID=…`, `resume=/dev/sda3`, or a reference on its own (`RESUME=UUID=…` gives the word
 * `UUID=…`). Undefined when the word holds no reference the map knows.
 */
export function rewriteWord(word: string, map: VolumeMap): string | undefined {
  const arg = REFERENCE_ARGS.exec(word);
  if (arg) {
    const to = map.rewrite(arg[2]!);
    return to === undefined ? undefined : `${arg[1]}=${to}`;
  }
  return map.rewrite(word);
}

/** The storage reference a kernel argument or shell word carries, if any, and the argument's key. */
export function referenceInWord(word: string): { key: string | undefined; reference: StorageReference } | undefined {
  const arg = REFERENCE_ARGS.exec(word);
  const r = parseReference(arg ? arg[2]! : word);
  return r ? { key: arg?.[1], reference: r } : undefined;
}

/** One line of fstab or crypttab, split into its fields with the spacing kept. */
export interface TableLine {
  line: number;
  fields: string[];
}

/** The entries of an fstab-like file: comments and blank lines left out. */
export function readTable(text: string): TableLine[] {
  return text
    .split('\n')
    .map((l, i) => ({ line: i + 1, fields: l.replace(/#.*$/, '').trim().split(/\s+/).filter(Boolean) }))
    .filter((l) => l.fields.length > 0);
}

/**
 * Rewrites field `column` (0: fstab's device, 1: crypttab's source) of each entry through the
 * map, keeping the line's spacing and comments. Returns the new text and what changed.
 */
export function rewriteTableColumn(text: string, column: number, map: VolumeMap): { text: string; changes: { line: number; from: string; to: string }[] } {
  const changes: { line: number; from: string; to: string }[] = [];
  const lines = text.split('\n').map((l, i) => {
    if (/^\s*#/.test(l)) return l;
    const words = [...l.matchAll(/\S+/g)];
    const target = words[column];
    if (!target || target[0].startsWith('#')) return l;
    const to = map.rewrite(target[0]);
    if (to === undefined) return l;
    changes.push({ line: i + 1, from: target[0], to });
    return l.slice(0, target.index) + to + l.slice(target.index! + target[0].length);
  });
  return { text: lines.join('\n'), changes };
}

/** Kernel arguments on one line (/etc/kernel/cmdline), rewritten word by word, spacing kept. */
export function rewriteCmdline(text: string, map: VolumeMap): { text: string; changes: { from: string; to: string }[] } {
  const changes: { from: string; to: string }[] = [];
  const out = text.replace(/\S+/g, (word) => {
    const to = rewriteWord(word, map);
    if (to === undefined) return word;
    changes.push({ from: word, to });
    return to;
  });
  return { text: out, changes };
}

/** Options of an fstab or crypttab entry that make a missing device no reason for a failed boot. */
export function isOptional(options: string | undefined): boolean {
  return (options ?? '').split(',').some((o) => o === 'nofail' || o === 'noauto');
}
