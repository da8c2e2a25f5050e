import type * as partition from '../../partition/index.js';
import { layoutVolumes, parseLayout } from '../../partition/index.js';
import type { RecordedVolume } from '../capture/index.js';
import { parseReference, readTable, VolumeMap, type StorageReference, type VolumeIdentity } from '../system/references.js';

/** What imagepe's capture mode recorded in an image: the layout, where the image came from, every partition's names. */
export interface RecordedImage {
  layout: partition.Layout;
  imagePartition: string;
  volumes: RecordedVolume[];
}

/** An fstab's mounts of local storage: the mount point ("swap" for swap) and the reference naming it. */
export function fstabMounts(text: string | undefined): { mount: string; reference: StorageReference; spec: string }[] {
  const out: { mount: string; reference: StorageReference; spec: string }[] = [];
  for (const e of readTable(text ?? '')) {
    const [spec, mount, type] = e.fields;
    const reference = spec ? parseReference(spec) : undefined;
    if (!reference || !mount) continue;
    out.push({ mount: type === 'swap' ? 'swap' : mount, reference, spec: spec! });
  }
  return out;
}

/** The old identity a reference stands for: the one name it gives (a UUID, a label, a partition number). */
function identityOf(r: StorageReference, partitionName: string): VolumeIdentity {
  const id: VolumeIdentity = { partition: partitionName };
  if (r.kind === 'device') id.number = Number(/(\d+)$/.exec(r.value)?.[1]);
  else if (r.kind === 'lvm') id.lv = r.value;
  else id[r.kind] = r.value;
  return id;
}

/**
 * Which of the new volumes each of the reference's became, for rewriting the system's files:
 * a recorded partition goes to the new partition of the same name, else to the one mounted
 * where it was mounted; an fstab entry of the system goes to the new volume mounted at its mount
 * point (a swap entry to the one swap area). `recordedMounts` gives the recorded layout's mount
 * points by partition name.
 */
export function mapVolumes(newVolumes: readonly VolumeIdentity[], recorded: readonly RecordedVolume[], recordedMounts: ReadonlyMap<string, string>, fstab: string | undefined): VolumeMap {
  const map = new VolumeMap(newVolumes);
  const byMount = (mount: string | undefined) => {
    if (!mount) return undefined;
    if (mount === 'swap') {
      const swaps = newVolumes.filter((v) => v.mount === 'swap' || v.fsType === 'swap');
      return swaps.length === 1 ? swaps[0] : undefined;
    }
    return newVolumes.find((v) => v.mount === mount || v.mounts?.includes(mount));
  };
  for (const old of recorded) {
    const to = newVolumes.find((v) => v.partition === old.partition) ?? byMount(recordedMounts.get(old.partition));
    if (to) map.add(old, to);
  }
  for (const m of fstabMounts(fstab)) {
    const to = byMount(m.mount);
    if (to) map.add(identityOf(m.reference, `fstab ${m.mount}`), to);
  }
  return map;
}

/** Filesystem types whose UUID takes a GUID (mkfs -U, mkswap -U, mkfs.xfs -m uuid=). */
const GUID_FS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'swap']);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a filesystem of `format` can be made with this UUID: a GUID, a FAT volume id, an NTFS serial. */
function fitsFormat(uuid: string, format: string): boolean {
  if (format === 'vfat') return /^[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}$/.test(uuid);
  if (format === 'ntfs') return /^[0-9A-Fa-f]{16}$/.test(uuid);
  return GUID_FS.has(format) && GUID.test(uuid);
}

/**
 * The layout with the reference's names on its filesystems (target.identities: keep): each
 * partition that makes a filesystem gets the UUID, label and PARTUUID its counterpart had, found
 * in the recorded volumes (by name, else by mount point) or in the system's fstab (by mount
 * point). The system's files then need no rewriting. `notes` says which partitions keep nothing.
 */
export function keepIdentities(layout: partition.Layout, recorded: RecordedImage | undefined, fstab: string | undefined): { layout: partition.Layout; notes: string[] } {
  const notes: string[] = [];
  const recordedMounts = new Map(recorded ? layoutVolumes(recorded.layout).map((p) => [p.name, p.mount]) : []);
  const mounts = fstabMounts(fstab);
  // A partition, or a logical volume by its VG/LV name: the same rules, without a PARTUUID for a logical volume.
  const keep = <T extends { format: string; mount?: string | undefined; label?: string | undefined; uuid?: string | undefined; partuuid?: string | undefined }>(p: T, name: string, what: string): T => {
    if (p.format === 'none' || p.format === 'lvm') return p;
    const mount = p.mount ?? (p.format === 'swap' ? 'swap' : undefined);
    const old =
      recorded?.volumes.find((v) => v.partition === name && (!v.fsType || v.fsType === p.format || (GUID_FS.has(v.fsType) && GUID_FS.has(p.format)))) ??
      recorded?.volumes.find((v) => mount !== undefined && recordedMounts.get(v.partition) === mount);
    const fromFstab = mounts.find((m) => mount !== undefined && m.mount === mount)?.reference;
    const next = { ...p };
    const uuid = old?.uuid ?? (fromFstab?.kind === 'uuid' ? fromFstab.value : undefined);
    const label = old?.label ?? (fromFstab?.kind === 'label' ? fromFstab.value : undefined);
    const partuuid = old?.partuuid ?? (fromFstab?.kind === 'partuuid' ? fromFstab.value : undefined);
    if (uuid && fitsFormat(uuid, p.format)) next.uuid = uuid;
    if (label && next.label === undefined) next.label = label;
    if (what === 'partition' && partuuid && layout.table === 'gpt' && /^[0-9A-Fa-f-]{36}$/.test(partuuid)) next.partuuid = partuuid;
    if (!next.uuid && !next.partuuid && !next.label) notes.push(`${what} ${name}${mount ? ` (${mount})` : ''}: the image names no filesystem to take the identity of, so it gets a new one`);
    return next;
  };
  const partitions = layout.partitions.map((p) => keep(p, p.name, 'partition'));
  const volumeGroups = layout.volumeGroups?.map((g) => ({ ...g, logicalVolumes: g.logicalVolumes.map((lv) => keep(lv, `${g.name}/${lv.name}`, 'logical volume')) }));
  return { layout: parseLayout({ ...layout, partitions, ...(volumeGroups ? { volumeGroups } : {}) }, 'the layout with the reference\'s identities'), notes };
}
