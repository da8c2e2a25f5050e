import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { LayoutSchema, layoutJsonSchema, loadLayout, parseLayout, parseLayoutText, resolveLayout } from './index.js';

const here = dirname(fileURLToPath(import.meta.url));

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect((e as { code?: string }).code).toBe('LAYOUT_INVALID');
    return (e as Error).message;
  }
  throw new Error('expected the layout to be rejected');
}

describe('layout schema', () => {
  it('fills in the defaults: no wipe, UEFI, unformatted, no flags', () => {
    const layout = parseLayout({ table: 'gpt', partitions: [{ name: 'root', size: 'rest', type: 'linux' }] });
    expect(layout).toEqual({ table: 'gpt', wipe: false, firmware: 'uefi', partitions: [{ name: 'root', size: 'rest', type: 'linux', format: 'none', flags: [] }] });
  });

  it.each([
    ['512MiB'],
    ['2GiB'],
    ['30%'],
    ['rest'],
    ['4096'],
    ['1.5G'],
  ])('accepts the size %s', (size) => {
    expect(() => parseLayout({ table: 'gpt', partitions: [{ name: 'p', size, type: 'linux' }] })).not.toThrow();
  });

  it.each([
    [{ table: 'gpt', partitions: [{ name: 'p', size: 'lots', type: 'linux' }] }, /partitions\[0\]\.size: expected a size such as "512MiB"/],
    [{ table: 'gpt', partitions: [{ name: 'p', size: '1GiB', type: 'fat' }] }, /partitions\[0\]\.type: expected one of esp, bios-boot, .* a GPT type GUID, or an MBR type byte/],
    [{ table: 'gpt', partitions: [{ name: 'p', size: '1GiB', type: 'linux', format: 'zfs' }] }, /partitions\[0\]\.format: .*"vfat"/],
    [{ table: 'apm', partitions: [{ name: 'p', size: '1GiB', type: 'linux' }] }, /table: .*"gpt".*"mbr"/],
    [{ table: 'gpt', partitions: [] }, /partitions: expected at least one partition/],
    [{ table: 'gpt', partitions: [{ name: 'p', size: '1GiB', type: 'linux', colour: 'red' }] }, /partitions\[0\]: .*colour/],
    [{ table: 'gpt', disk: { pick: 'biggest' }, partitions: [{ name: 'p', size: '1GiB', type: 'linux' }] }, /disk: expected \{ path: \/dev\/\.\.\. \} or a rule/],
    [{ table: 'gpt', partitions: [{ name: 'p', size: '1GiB', type: 'linux', partuuid: 'nope' }] }, /partitions\[0\]\.partuuid: expected a GUID/],
  ])('names the field and the expected form: %j', (value, message) => {
    expect(messageOf(() => parseLayout(value, 'layout.yaml'))).toMatch(message);
  });

  it('accepts a disk given by path or by rule', () => {
    const base = { table: 'gpt', partitions: [{ name: 'p', size: 'rest', type: 'linux' }] };
    expect(parseLayout({ ...base, disk: { path: '/dev/sda' } }).disk).toEqual({ path: '/dev/sda' });
    expect(parseLayout({ ...base, disk: { pick: 'smallest', minSize: '100GiB', model: 'Samsung' } }).disk).toEqual({
      pick: 'smallest',
      minSize: '100GiB',
      model: 'Samsung',
      allowRemovable: false,
    });
  });

  it('converts to JSON Schema for editors and the deploy plan schema', () => {
    const schema = layoutJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    expect(schema.required).toEqual(expect.arrayContaining(['table', 'partitions']));
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['table', 'wipe', 'firmware', 'disk', 'partitions']));
    expect(() => z.toJSONSchema(LayoutSchema)).not.toThrow();
  });
});

describe('layout files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imagepe-layout-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads YAML and JSON alike', async () => {
    await writeFile(join(dir, 'l.yaml'), 'table: mbr\npartitions:\n  - { name: root, size: rest, type: "0x83", format: ext4 }\n');
    await writeFile(join(dir, 'l.json'), JSON.stringify({ table: 'mbr', partitions: [{ name: 'root', size: 'rest', type: '0x83', format: 'ext4' }] }));
    expect(await loadLayout(join(dir, 'l.yaml'))).toEqual(await loadLayout(join(dir, 'l.json')));
  });

  it('reports a file that is missing, and one that is not YAML', async () => {
    await expect(loadLayout(join(dir, 'missing.yaml'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(messageOf(() => parseLayoutText('table: [gpt', 'broken.yaml'))).toMatch(/broken\.yaml is not valid YAML/);
  });

  it('ships a sample layout for UEFI and BIOS on GPT that validates', async () => {
    const text = await readFile(join(here, '..', 'templates', 'layouts', 'uefi-bios-gpt.yaml'), 'utf8');
    const layout = parseLayoutText(text, 'uefi-bios-gpt.yaml');
    expect(layout.partitions.map((p) => [p.type, p.size, p.format])).toEqual([
      ['esp', '512MiB', 'vfat'],
      ['bios-boot', '1MiB', 'none'],
      ['linux', 'rest', 'ext4'],
    ]);
  });

  it('ships a sample LVM layout that plans on a 64 GiB disk', async () => {
    const layout = parseLayoutText(await readFile(join(here, '..', 'templates', 'layouts', 'lvm-gpt.yaml'), 'utf8'), 'lvm-gpt.yaml');
    const planned = resolveLayout(layout, { path: '/dev/sdx', sizeBytes: 64 * 1024 ** 3, sectorSize: 512 });
    expect(planned.volumeGroups[0]!.logicalVolumes.map((lv) => [lv.name, lv.mount])).toEqual([['system/root', '/'], ['system/home', '/home']]);
  });
});
