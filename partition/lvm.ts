import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { findTool, ImagepeError, run, type RunOptions } from '../core/index.js';
import { logicalVolumesOf } from './lvm-plan.js';
import type { AppliedPartition, ResolvedLayout, ResolvedLogicalVolume } from './types.js';

type RunOptsFn = (what: string, timeoutMs?: number) => RunOptions;

/**
 * The --config every LVM command of a deploy runs with. `devices` limits what LVM scans and may
 * touch to the target's physical volumes (never the boot medium, never a same-named group on
 * another disk of the machine); metadata backups stay off (they would go to the PE's or the
 * host's /etc/lvm, not the target); dmeventd monitoring is off (the PE has none). Without udev
 * (the PE runs none), LVM makes the /dev/mapper nodes and /dev/VG links itself and waits for no
 * udev event.
 */
export function lvmConfig(devices: readonly string[], o: { readOnlyGroups?: readonly string[] } = {}): string {
  const accept = devices.map((d) => `"a|^${d.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$|"`).join(', ');
  const filter = `[ ${accept}${accept ? ', ' : ''}"r|.*|" ]`;
  const udev = existsSync('/run/udev/control');
  const readOnly = o.readOnlyGroups?.length ? ` read_only_volume_list = [ ${o.readOnlyGroups.map((g) => `"${g}"`).join(', ')} ]` : '';
  return [
    `devices { filter = ${filter} global_filter = ${filter}${udev ? '' : ' obtain_device_list_from_udev = 0'} }`,
    `activation { monitoring = 0${udev ? '' : ' udev_sync = 0 udev_rules = 0'}${readOnly} }`,
    'backup { backup = 0 archive = 0 }',
  ].join(' ');
}

/** Runs `lvm COMMAND --config … ARGS` (one binary: the PE carries lvm, not its dozens of links). */
export async function lvm(command: string, args: readonly string[], devices: readonly string[], opts: RunOptions, config: { readOnlyGroups?: readonly string[] } = {}): Promise<string> {
  // Node hands its children descriptors LVM warns about on every command ("File descriptor … leaked").
  return (await run('lvm', [command, '--config', lvmConfig(devices, config), ...args], { ...opts, env: { ...opts.env, LVM_SUPPRESS_FD_WARNINGS: '1' } })).stdout;
}

/**
 * Refuses, before a disk is written, to apply volume groups where LVM cannot work: without the
 * lvm tool (TOOL_MISSING), or on a kernel without device-mapper (REFUSED; dm_mod is loaded first
 * when it is a module). Some kernels (this project's development host's) are built without it:
 * there, LVM layouts are applied in the PE, whose kernel has it.
 */
export async function assertLvmReady(runOpts: RunOptsFn): Promise<void> {
  if (!findTool('lvm')) throw new ImagepeError('TOOL_MISSING', 'lvm, which layouts with volumeGroups need, is not installed', { hint: 'Install lvm2 (scripts/setup does), or deploy from the PE, which carries it.' });
  const hasDm = async () => (await readFile('/proc/misc', 'utf8').catch(() => '')).split('\n').some((l) => l.trim().endsWith(' device-mapper'));
  if (await hasDm()) return;
  await run('modprobe', ['dm_mod'], { ...runOpts('loading device-mapper (dm_mod)'), okExitCodes: [0, 1] }).catch(() => undefined);
  if (await hasDm()) return;
  throw new ImagepeError('REFUSED', 'this kernel has no device-mapper (no device-mapper in /proc/misc, and dm_mod does not load), which LVM needs to make the layout\'s volume groups', {
    hint: 'Apply the layout from the PE (imagepe build), whose kernel has device-mapper, or on a machine whose kernel has it.',
  });
}

/** The device-mapper node of VG/LV: /dev/mapper/VG-LV with the hyphens inside each name doubled. */
export function logicalVolumeNode(vg: string, lv: string): string {
  return `/dev/mapper/${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

/** The physical volumes' nodes of every volume group of the layout. */
function physicalNodes(layout: ResolvedLayout, nodes: ReadonlyMap<number, string>): string[] {
  return layout.volumeGroups.flatMap((g) => g.physicalVolumes.map((name) => nodes.get(layout.partitions.find((p) => p.name === name)!.number)!));
}

/** pvcreate on one partition, its first extent 1 MiB in (as the planner counts, PV_DATA_OFFSET_BYTES). */
export async function createPhysicalVolume(node: string, opts: RunOptions): Promise<void> {
  await lvm('pvcreate', ['--yes', '--force', '--force', '--dataalignment', '1m', node], [node], opts);
}

/**
 * Makes the layout's volume groups on their physical volumes (made by the format step) and their
 * logical volumes in exact extents, and returns each logical volume's node by VG/LV. The group's
 * extent count is read back before any logical volume is made: LVM configured to another data
 * alignment would count otherwise, and the planned sizes would not fit.
 *
 * Throws VERIFY_FAILED for a count that differs, COMMAND_FAILED from LVM.
 */
export async function createVolumeGroups(layout: ResolvedLayout, nodes: ReadonlyMap<number, string>, runOpts: RunOptsFn): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const devices = physicalNodes(layout, nodes);
  for (const g of layout.volumeGroups) {
    const pvs = g.physicalVolumes.map((name) => nodes.get(layout.partitions.find((p) => p.name === name)!.number)!);
    await lvm('vgcreate', ['--yes', '--physicalextentsize', `${g.extentBytes / 1024}k`, g.name, ...pvs], devices, runOpts(`making volume group ${g.name} on ${pvs.join(' ')}`));
    const [have] = await reportGroups(g.name, devices, runOpts);
    if (have?.extents !== g.extents) {
      throw new ImagepeError('VERIFY_FAILED', `LVM counts ${have?.extents ?? 'no'} extents in volume group ${g.name}, the layout ${g.extents}`, {
        hint: 'The lvm.conf in use may set another data alignment or metadata size; imagepe plans with LVM2 defaults (first extent 1 MiB into each physical volume).',
      });
    }
    for (const lv of g.logicalVolumes) {
      await lvm('lvcreate', ['--yes', '--wipesignatures', 'y', '--zero', 'y', '--name', lv.lvName, '--extents', String(lv.extents), g.name], devices, runOpts(`making logical volume ${lv.name} (${lv.extents} extents)`));
      out.set(lv.name, logicalVolumeNode(g.name, lv.lvName));
    }
  }
  return out;
}

/** Deactivates volume groups (vgchange -an), so their disk can be let go of; LVM scans only `devices`. */
export async function deactivateVolumeGroups(names: readonly string[], devices: readonly string[], runOpts: RunOptsFn): Promise<void> {
  if (names.length === 0) return;
  await lvm('vgchange', ['--activate', 'n', ...names], devices, runOpts(`deactivating volume group${names.length > 1 ? 's' : ''} ${names.join(', ')}`));
}

interface GroupReport {
  name: string;
  extentBytes: number;
  extents: number;
  free: number;
}

interface LvmJson {
  report: { vg?: Record<string, string>[]; lv?: Record<string, string>[]; pv?: Record<string, string>[]; seg?: Record<string, string>[] }[];
}

/** vgs of the named groups (all LVM sees on `devices` without names). */
export async function reportGroups(name: string | undefined, devices: readonly string[], runOpts: RunOptsFn): Promise<GroupReport[]> {
  const text = await lvm('vgs', ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_name,vg_extent_size,vg_extent_count,vg_free_count', ...(name ? [name] : [])], devices, runOpts(`reading volume group ${name ?? ''}`.trim()));
  return ((JSON.parse(text) as LvmJson).report[0]?.vg ?? []).map((v) => ({ name: v.vg_name!, extentBytes: Number(v.vg_extent_size), extents: Number(v.vg_extent_count), free: Number(v.vg_free_count) }));
}

/**
 * Where each logical volume (VG/LV) begins: the index of its first segment's physical volume in
 * `pvNodes` and its first extent there (lvs --segments, seg_pe_ranges such as /dev/vda4:0-1768).
 */
async function volumePositions(pvNodes: readonly string[], runOpts: RunOptsFn): Promise<Map<string, [number, number]>> {
  const text = await lvm('lvs', ['--reportformat', 'json', '--segments', '-o', 'vg_name,lv_name,seg_pe_ranges'], pvNodes, runOpts('reading where the logical volumes lie'));
  const out = new Map<string, [number, number]>();
  // lvs --segments reports its rows under "seg".
  const report = (JSON.parse(text) as LvmJson).report[0];
  for (const row of report?.seg ?? report?.lv ?? []) {
    const m = /^(\S+):(\d+)-\d+/.exec(row.seg_pe_ranges ?? '');
    if (!m) continue;
    const pos: [number, number] = [pvNodes.indexOf(m[1]!) < 0 ? pvNodes.length : pvNodes.indexOf(m[1]!), Number(m[2])];
    const key = `${row.vg_name}/${row.lv_name}`;
    const prev = out.get(key);
    if (!prev || pos[0] < prev[0] || (pos[0] === prev[0] && pos[1] < prev[1])) out.set(key, pos);
  }
  return out;
}

/** A logical volume as lvs reports it. */
export interface LogicalVolumeReport {
  volumeGroup: string;
  name: string;
  sizeBytes: number;
  /** lv_attr's fifth letter: a for active. */
  active: boolean;
  uuid: string;
}

/** lvs of the logical volumes LVM sees on `devices`. */
export async function reportLogicalVolumes(devices: readonly string[], runOpts: RunOptsFn): Promise<LogicalVolumeReport[]> {
  const text = await lvm('lvs', ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_name,lv_name,lv_size,lv_attr,lv_uuid'], devices, runOpts('reading the logical volumes'));
  return ((JSON.parse(text) as LvmJson).report[0]?.lv ?? []).map((v) => ({ volumeGroup: v.vg_name!, name: v.lv_name!, sizeBytes: Number(v.lv_size), active: (v.lv_attr ?? '')[4] === 'a', uuid: v.lv_uuid ?? '' }));
}

/**
 * The layout's logical volumes read back (lvs, and blkid through `probe`) and compared with it:
 * differences are returned in words, the volumes as applied entries (name VG/LV, number 0).
 */
export async function readBackLogicalVolumes(
  layout: ResolvedLayout,
  nodes: ReadonlyMap<number, string>,
  probe: (node: string) => Promise<Record<string, string>>,
  runOpts: RunOptsFn,
): Promise<{ differences: string[]; volumes: AppliedPartition[] }> {
  const wanted = logicalVolumesOf(layout);
  if (wanted.length === 0) return { differences: [], volumes: [] };
  const have = await reportLogicalVolumes(physicalNodes(layout, nodes), runOpts);
  const differences: string[] = [];
  const volumes: AppliedPartition[] = [];
  for (const lv of wanted) {
    const got = have.find((h) => h.volumeGroup === lv.volumeGroup && h.name === lv.lvName);
    if (!got) {
      differences.push(`logical volume ${lv.name} is missing`);
      continue;
    }
    if (got.sizeBytes !== lv.sizeBytes) differences.push(`logical volume ${lv.name} is ${got.sizeBytes} bytes, the layout ${lv.sizeBytes}`);
    const node = logicalVolumeNode(lv.volumeGroup, lv.lvName);
    const fs = await probe(node);
    differences.push(...filesystemDifferences(lv, fs));
    volumes.push(appliedVolume(lv, node, fs, layout.sectorSize));
  }
  return { differences, volumes };
}

function filesystemDifferences(lv: ResolvedLogicalVolume, fs: Record<string, string>): string[] {
  const out: string[] = [];
  if (lv.format !== 'none' && fs.TYPE !== lv.format) out.push(`logical volume ${lv.name} holds ${fs.TYPE ?? 'nothing'}, the layout ${lv.format}`);
  if (lv.label !== undefined && fs.LABEL !== lv.label) out.push(`logical volume ${lv.name} is labelled ${fs.LABEL ?? '(none)'}, the layout ${lv.label}`);
  if (lv.uuid !== undefined && fs.UUID?.toLowerCase() !== lv.uuid.toLowerCase()) out.push(`logical volume ${lv.name} has UUID ${fs.UUID ?? '(none)'}, the layout ${lv.uuid}`);
  return out;
}

function appliedVolume(lv: ResolvedLogicalVolume, node: string, fs: Record<string, string>, sectorSize: number): AppliedPartition {
  const a: AppliedPartition = { number: 0, name: lv.name, node, start: 0, size: lv.sizeBytes / sectorSize, typeCode: '', bootable: false, volumeGroup: lv.volumeGroup };
  if (fs.TYPE) a.fsType = fs.TYPE;
  if (fs.LABEL) a.label = fs.LABEL;
  if (fs.UUID) a.uuid = fs.UUID;
  if (lv.mount !== undefined) a.mount = lv.mount;
  if (lv.subvolumes !== undefined) a.subvolumes = lv.subvolumes.map((v) => ({ ...v }));
  if (lv.defaultSubvolume !== undefined) a.defaultSubvolume = lv.defaultSubvolume;
  return a;
}

/** A volume group found on a disk and activated: its extent size, physical volumes (nodes) and logical volumes. */
export interface FoundVolumeGroup {
  name: string;
  extentBytes: number;
  physicalVolumes: string[];
  logicalVolumes: { name: string; sizeBytes: number; node: string }[];
}

/**
 * Finds the volume groups on `pvNodes` (partitions that hold LVM2_member) and activates them,
 * read-only with `readOnly` (activation/read_only_volume_list: nothing can write through the
 * logical volumes, so a capture that does not generalize leaves the reference untouched).
 * LVM sees only `pvNodes`. The caller deactivates them (deactivateVolumeGroups) when done.
 *
 * Throws COMMAND_FAILED from LVM: a group with a physical volume on another disk does not
 * activate here (partial activation is refused).
 */
export async function activateVolumeGroups(pvNodes: readonly string[], o: { readOnly: boolean }, runOpts: RunOptsFn): Promise<FoundVolumeGroup[]> {
  if (pvNodes.length === 0) return [];
  const pvText = await lvm('pvs', ['--reportformat', 'json', '-o', 'pv_name,vg_name'], pvNodes, runOpts('reading the physical volumes'));
  const pvs = ((JSON.parse(pvText) as LvmJson).report[0]?.pv ?? []).map((p) => ({ node: p.pv_name!, group: p.vg_name ?? '' }));
  const names = [...new Set(pvs.map((p) => p.group).filter(Boolean))].sort();
  if (names.length === 0) return [];
  await lvm('vgchange', ['--activate', 'y', ...names], pvNodes, runOpts(`activating volume group${names.length > 1 ? 's' : ''} ${names.join(', ')}${o.readOnly ? ' read-only' : ''}`), o.readOnly ? { readOnlyGroups: names } : {});
  const groups = await reportGroups(undefined, pvNodes, runOpts);
  // In the order they lie on the physical volumes (lvs sorts by name): a recorded layout then makes them in that order again.
  const position = await volumePositions(pvNodes, runOpts);
  const at = (vg: string, lv: string) => position.get(`${vg}/${lv}`) ?? [Infinity, Infinity];
  const lvs = (await reportLogicalVolumes(pvNodes, runOpts)).sort((a, b) => {
    const [pa, sa] = at(a.volumeGroup, a.name);
    const [pb, sb] = at(b.volumeGroup, b.name);
    return pa - pb || sa - sb;
  });
  return names.map((name) => ({
    name,
    extentBytes: groups.find((g) => g.name === name)?.extentBytes ?? 0,
    physicalVolumes: pvs.filter((p) => p.group === name).map((p) => p.node),
    logicalVolumes: lvs.filter((l) => l.volumeGroup === name).map((l) => ({ name: l.name, sizeBytes: l.sizeBytes, node: logicalVolumeNode(name, l.name) })),
  }));
}
