import { readFile } from 'node:fs/promises';
import { loadPlan, parsePlan, parsePlanText, planJsonSchema, type DeployPlanInput } from './index.js';
import { changed, problemsOf } from '../../test-support/plans.js';

const good: DeployPlanInput = {
  source: { url: 'smb://10.0.2.4/qemu/images', image: 'ref.wim', index: 1 },
  target: {
    layout: {
      table: 'gpt',
      partitions: [
        { name: 'ESP', size: '256MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
        { name: 'bios-boot', size: '1MiB', type: 'bios-boot' },
        { name: 'root', size: 'rest', type: 'linux', format: 'ext4', mount: '/' },
      ],
    },
  },
  apply: [{ partition: 'root' }],
};

const problems = (value: unknown) => problemsOf(parsePlan, value);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const withChange = (change: (p: Record<string, any>) => void) => changed(good, change);

describe('plan schema', () => {
  it('accepts a minimal plan and fills in the defaults', () => {
    const p = parsePlan(good);
    expect(p.source.index).toBe(1);
    expect(p.target.wipe).toBe(false);
    expect(p.apply[0]).toEqual({ partition: 'root', mode: 'auto' });
    expect(p.specialize).toEqual({ machineId: 'new', removeSshHostKeys: true, sshHostKeys: 'new', files: [] });
    expect(p.bootloader).toEqual({ type: 'grub', firmware: 'both', kernelArgs: '', initramfs: 'rebuild', secureBoot: true });
    expect(p.target.identities).toBe('new');
    expect(p.after).toBe('reboot');
    expect(p.logs).toBe(true);
  });

  it('accepts every source form', () => {
    for (const url of ['smb://server/share', 'nfs://server/export/images', 'http://10.0.2.2:8000/images', 'https://images.example/x', 'file:///srv/images', 'media:/images']) {
      expect(parsePlan(withChange((p) => (p.source.url = url))).source.url).toBe(url);
    }
  });

  it('accepts credentials from a file or inline, and an index by name', () => {
    expect(parsePlan(withChange((p) => (p.source.credentials = { file: '/etc/cred' }))).source.credentials).toEqual({ file: '/etc/cred' });
    expect(parsePlan(withChange((p) => (p.source.credentials = { username: 'deploy', password: 's3cret' }))).source.credentials).toEqual({ username: 'deploy', password: 's3cret' });
    expect(parsePlan(withChange((p) => (p.source.index = 'Debian 12'))).source.index).toBe('Debian 12');
  });

  it('validates the shipped template', async () => {
    const p = await loadPlan('templates/plans/linux-gpt-both.yaml');
    expect(p.source.url).toMatch(/^smb:\/\//);
    expect(p.bootloader.firmware).toBe('both');
  });

  it.each<[string, (p: Record<string, any>) => void, RegExp]>([
    ['an unknown url scheme', (p) => (p.source.url = 'ftp://host/x'), /^source\.url: expected smb:\/\//],
    ['a missing image', (p) => delete p.source.image, /^source\.image: required/],
    ['a path out of the share', (p) => (p.source.image = '../etc/shadow'), /^source\.image: expected a path inside the share/],
    ['a short sha256', (p) => (p.source.sha256 = 'abc'), /^source\.sha256: expected 64 hexadecimal digits/],
    ['an index of 0', (p) => (p.source.index = 0), /^source\.index: expected an image index/],
    ['credentials with neither file nor username', (p) => (p.source.credentials = { password: 'x' }), /^source\.credentials: expected \{ file: PATH \} or \{ username, password \}/],
    ['an unknown top-level field', (p) => (p.extra = 1), /^\(top level\): unknown field extra/],
    ['a bad partition size', (p) => (p.target.layout.partitions[2].size = '10XB'), /^target\.layout\.partitions\[2\]\.size: expected a size/],
    ['a bad disk target', (p) => (p.target.disk = { pick: 'fastest' }), /^target\.disk: expected \{ path: \/dev\/\.\.\. \} or a rule/],
    ['an apply to no such partition', (p) => (p.apply[0].partition = 'rooot'), /^apply\[0\]\.partition: expected the name of a partition or logical volume \(VG\/LV\) of target\.layout \(ESP, bios-boot, root\)/],
    ['target.grow with an explicit layout', (p) => (p.target.grow = 'root'), /^target\.grow: only with layout: from-image; an explicit layout gives every size itself/],
    ['an apply to the ESP', (p) => (p.apply[0].partition = 'ESP'), /^apply\[0\]\.partition: expected a partition formatted ext4, xfs, btrfs or ntfs/],
    ['no apply', (p) => (p.apply = []), /^apply: expected at least one image to apply/],
    ['an unknown hostname token', (p) => (p.specialize = { hostname: 'pc-{foo}' }), /^specialize\.hostname: expected only the tokens \{serial\} \{mac\} \{uuid\} \{random\}/],
    ['a relative file path', (p) => (p.specialize = { files: [{ path: 'etc/motd', content: 'x' }] }), /^specialize\.files\[0\]\.path: expected an absolute path/],
    ['a file with content and base64', (p) => (p.specialize = { files: [{ path: '/a', content: 'x', base64: 'eA==' }] }), /^specialize\.files\[0\]: expected exactly one of content or base64/],
    ['a non-octal mode', (p) => (p.specialize = { files: [{ path: '/a', content: 'x', mode: '0999' }] }), /^specialize\.files\[0\]\.mode: expected an octal mode/],
    ['unattend without an NTFS target', (p) => (p.specialize = { unattend: { xml: '<unattend/>' } }), /^specialize\.unattend: expected an apply entry to an ntfs partition/],
    ['uefi without an ESP', (p) => p.target.layout.partitions.splice(0, 1), /^bootloader\.firmware: both needs an esp partition/],
    ['bios on GPT without bios-boot', (p) => p.target.layout.partitions.splice(1, 1), /^bootloader\.firmware: both on GPT needs a bios-boot partition/],
    ['an unknown after', (p) => (p.after = 'dance'), /^after: .*reboot.*poweroff.*shell/],
  ])('names the field for %s', (_what, change, pattern) => {
    const found = problems(withChange(change));
    expect(found.some((p) => pattern.test(p))).toBe(true);
  });

  it('reads JSON plans too', () => {
    expect(parsePlanText(JSON.stringify(good), 'plan.json').apply[0]?.partition).toBe('root');
    expect(() => parsePlanText('{"source":', 'plan.json')).toThrow(/\(file\): not valid JSON/);
  });

  it('reports bad YAML as such', () => {
    expect(() => parsePlanText('source: [unclosed', 'x.yaml')).toThrow(/x\.yaml is not a valid plan:\n {2}- \(file\): not valid YAML/);
  });

  it('publishes a JSON Schema that is up to date (regenerate: imagepe plan schema > docs/schema/plan.schema.json)', async () => {
    const published = JSON.parse(await readFile('docs/schema/plan.schema.json', 'utf8')) as unknown;
    expect(published).toEqual(planJsonSchema());
  });
});

describe('plan printing', () => {
  it('never shows the password', async () => {
    const { redact } = await import('../../cli/commands/plan.js');
    const p = parsePlan(withChange((x) => (x.source.credentials = { username: 'deploy', password: 's3cret' })));
    expect(JSON.stringify(redact(p))).not.toContain('s3cret');
    expect(p.source.credentials).toEqual({ username: 'deploy', password: 's3cret' });
  });
});

describe('layout: from-image', () => {
  const fromImage = (change: (p: Record<string, any>) => void = () => {}) =>
    withChange((p) => {
      p.target.layout = 'from-image';
      delete p.apply;
      change(p);
    });

  it('may leave out apply, and is checked against the layout only at deploy time', () => {
    const p = parsePlan(fromImage());
    expect(p.target.layout).toBe('from-image');
    expect(p.apply).toEqual([]);
    // Partition names cannot be known yet: an apply entry is kept as written.
    expect(parsePlan(fromImage((x) => (x.apply = [{ partition: 'anything', index: 2 }]))).apply).toEqual([{ partition: 'anything', index: 2, mode: 'auto' }]);
  });

  it('says kind: deploy, optionally', () => {
    expect(parsePlan(withChange((p) => (p.kind = 'deploy'))).kind).toBe('deploy');
    expect(problems(withChange((p) => (p.kind = 'capture')))).toEqual([expect.stringMatching(/^kind: /)]);
  });

  it.each<[string, (p: Record<string, any>) => void, RegExp]>([
    ['an explicit layout without apply', (p) => delete p.apply, /^apply: required with an explicit target\.layout/],
    ['a misspelt from-image', (p) => (p.target.layout = 'from-imag'), /^target\.layout: expected a layout \(\{ table, partitions \}\) or "from-image"/],
    ['a layout without a table', (p) => delete p.target.layout.table, /^target\.layout\.table: /],
    ['a partition without a name', (p) => delete p.target.layout.partitions[0].name, /^target\.layout\.partitions\[0\]\.name: required/],
  ])('names the field for %s', (_what, change, pattern) => {
    const found = problems(withChange(change));
    expect(found.some((p) => pattern.test(p))).toBe(true);
  });

  it('runs the same layout checks the schema runs, with the layout named', async () => {
    const { layoutProblems } = await import('./index.js');
    const p = parsePlan(good);
    const layout = { ...p.target.layout as Exclude<typeof p.target.layout, string | undefined>, partitions: [{ name: 'p1', size: 'rest', type: 'linux', format: 'ext4' as const, flags: [] }] };
    expect(layoutProblems(layout, p, 'the recorded layout')).toEqual([
      { path: ['apply', 0, 'partition'], message: 'expected the name of a partition or logical volume (VG/LV) of the recorded layout (p1)' },
      { path: ['bootloader', 'type'], message: 'grub needs a partition or logical volume with mount: / in the recorded layout' },
      { path: ['bootloader', 'firmware'], message: 'both needs an esp partition formatted vfat in the recorded layout' },
      { path: ['bootloader', 'firmware'], message: 'both on GPT needs a bios-boot partition in the recorded layout' },
    ]);
  });
});

describe('a raw disk image as the source', () => {
  const raw: DeployPlanInput = { source: { url: 'http://10.0.0.5/images', image: 'debian-12.img.zst' }, target: { wipe: true }, specialize: { hostname: 'web-{mac}' } };

  it.each([
    ['debian.img', true],
    ['debian.raw', true],
    ['debian.img.zst', true],
    ['cloud.qcow2', true],
    ['disk.raw.xz', true],
    ['appliance.bin.gz', true],
    ['base.wim', false],
    ['base.swm', false],
    ['base.esd', false],
  ])('takes %s as raw: %s (format: auto)', async (image, isRaw) => {
    const { isRawSource } = await import('./index.js');
    expect(isRawSource({ image, format: 'auto' })).toBe(isRaw);
    expect(isRawSource({ image, format: 'raw' })).toBe(true);
    expect(isRawSource({ image, format: 'wim' })).toBe(false);
  });

  it('needs no layout and no apply entries: the image brings its own table', () => {
    const p = parsePlan(raw);
    expect(p.target.layout).toBeUndefined();
    expect(p.apply).toEqual([]);
    expect(parsePlan({ ...raw, target: { wipe: true, grow: 'root' } }).target.grow).toBe('root');
  });

  it.each([
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    ['a layout', (p: any) => (p.target.layout = good.target.layout), /^target\.layout: a raw image is written whole, partition table included/],
    ['apply entries', (p: any) => (p.apply = [{ partition: 'root' }]), /^apply: a raw image is written whole: expected no apply entries/],
    ['minSwap', (p: any) => (p.target.minSwap = '512MiB'), /^target\.minSwap: a raw image keeps its partitions' sizes/],
    ['an answer file', (p: any) => (p.specialize.unattend = { xml: '<unattend/>' }), /^specialize\.unattend: not for a raw image/],
  ])('refuses %s, naming the field', (_what, change, pattern) => {
    const found = problemsOf(parsePlan, changed(raw, change));
    expect(found.some((p) => pattern.test(p))).toBe(true);
  });

  it('still requires a layout for a WIM', () => {
    const found = problemsOf(parsePlan, changed(good, (p) => delete p.target.layout));
    expect(found).toContainEqual(expect.stringMatching(/^target\.layout: required \(expected a layout/));
  });
});
