import { readFile } from 'node:fs/promises';
import { capturePlanJsonSchema, loadCapturePlan, parseAnyPlanText, parseCapturePlan, parseCapturePlanText, type CapturePlanInput } from './index.js';
import { changed, problemsOf } from '../../test-support/plans.js';

const good: CapturePlanInput = {
  kind: 'capture',
  destination: { url: 'smb://10.0.2.4/qemu/images', file: 'images/reference.wim', name: 'reference' },
};

const problems = (value: unknown) => problemsOf(parseCapturePlan, value);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const withChange = (change: (p: Record<string, any>) => void) => changed(good, change);

describe('capture plan schema', () => {
  it('accepts a minimal plan and fills in the defaults', () => {
    expect(parseCapturePlan(good)).toEqual({
      kind: 'capture',
      source: { partition: 'root' },
      generalize: true,
      destination: { url: 'smb://10.0.2.4/qemu/images', file: 'images/reference.wim', name: 'reference', description: '', compression: 'lzx', append: false, integrity: true, pipable: false },
      after: 'poweroff',
      logs: true,
    });
  });

  it('accepts every source and destination form', () => {
    for (const url of ['smb://server/share', 'nfs://server/export/images', 'file:///srv/images']) {
      expect(parseCapturePlan(withChange((p) => (p.destination.url = url))).destination.url).toBe(url);
    }
    expect(parseCapturePlan(withChange((p) => (p.source = { partition: { label: 'rootfs' } }))).source).toEqual({ partition: { label: 'rootfs' } });
    expect(parseCapturePlan(withChange((p) => (p.source = { disk: { path: '/dev/sda' }, partition: { number: 2 } }))).source).toEqual({ disk: { path: '/dev/sda' }, partition: { number: 2 } });
    expect(parseCapturePlan(withChange((p) => (p.source = { disk: { pick: 'largest' } }))).source).toEqual({ disk: { pick: 'largest', allowRemovable: false }, partition: 'root' });
    expect(parseCapturePlan(withChange((p) => (p.destination.credentials = { username: 'cap', password: 'pw' }))).destination.credentials).toEqual({ username: 'cap', password: 'pw' });
  });

  it.each<[string, (p: Record<string, any>) => void, RegExp]>([
    ['a missing kind', (p) => delete p.kind, /^kind: /],
    ['a deploy kind', (p) => (p.kind = 'deploy'), /^kind: /],
    ['an http destination (not writable)', (p) => (p.destination.url = 'http://host/images'), /^destination\.url: expected smb:\/\/.*file:\/\/\//],
    ['credentials in the url', (p) => (p.destination.url = 'smb://cap:pw@server/share'), /^destination\.url: expected no user or password in the URL/],
    ['a media destination', (p) => (p.destination.url = 'media:/images'), /^destination\.url: expected smb:\/\//],
    ['a file out of the share', (p) => (p.destination.file = 'a/../../etc/x.wim'), /^destination\.file: expected a path inside the share, without "\.\."/],
    ['an absolute file', (p) => (p.destination.file = '/srv/x.wim'), /^destination\.file: expected a path relative to the url/],
    ['a missing name', (p) => delete p.destination.name, /^destination\.name: required/],
    ['an empty name', (p) => (p.destination.name = ''), /^destination\.name: /],
    ['an unknown compression', (p) => (p.destination.compression = 'zstd'), /^destination\.compression: .*lzx/],
    ['bad credentials', (p) => (p.destination.credentials = { password: 'x' }), /^destination\.credentials: expected \{ file: PATH \} or \{ username, password \}/],
    ['a partition given as a word', (p) => (p.source = { partition: 'boot' }), /^source\.partition: expected "root", \{ label: FILESYSTEM_LABEL \} or \{ number: N \}/],
    ['partition number 0', (p) => (p.source = { partition: { number: 0 } }), /^source\.partition/],
    ['a bad disk', (p) => (p.source = { disk: { pick: 'fastest' } }), /^source\.disk: expected \{ path: \/dev\/\.\.\. \} or a rule/],
    ['an unknown field', (p) => (p.destination.index = 2), /^destination: unknown field index/],
    ['an unknown after', (p) => (p.after = 'dance'), /^after: .*reboot.*poweroff.*shell/],
    ['a missing destination', (p) => delete p.destination, /^destination: required/],
  ])('names the field for %s', (_what, change, pattern) => {
    const found = problems(withChange(change));
    expect(found.some((p) => pattern.test(p))).toBe(true);
  });

  it('reads YAML and JSON, and validates the shipped template', async () => {
    expect(parseCapturePlanText(JSON.stringify(good), 'c.json').destination.name).toBe('reference');
    expect(parseCapturePlanText('kind: capture\ndestination: { url: "file:///srv", file: r.wim, name: r }\n', 'c.yaml').destination.url).toBe('file:///srv');
    expect(() => parseCapturePlanText('kind: [', 'c.yaml')).toThrow(/c\.yaml is not a valid plan:\n {2}- \(file\): not valid YAML/);
    const t = await loadCapturePlan('templates/plans/capture-linux.yaml');
    expect(t.destination).toMatchObject({ url: 'smb://10.0.2.4/qemu/images', file: 'reference.wim', append: false });
  });

  it('publishes a JSON Schema that is up to date (regenerate: imagepe plan schema --kind capture > docs/schema/capture-plan.schema.json)', async () => {
    const published = JSON.parse(await readFile('docs/schema/capture-plan.schema.json', 'utf8')) as unknown;
    expect(published).toEqual(capturePlanJsonSchema());
  });
});

describe('plans of either kind', () => {
  const deploy = 'source: { url: "file:///srv", image: r.wim }\ntarget: { layout: from-image }\n';

  it('tells them apart by kind; no kind is a deploy plan', () => {
    expect(parseAnyPlanText(deploy, 'd.yaml').kind).toBe('deploy');
    expect(parseAnyPlanText(`kind: deploy\n${deploy}`, 'd.yaml').kind).toBe('deploy');
    const c = parseAnyPlanText(JSON.stringify(good), 'c.json');
    expect(c.kind).toBe('capture');
    expect(c.kind === 'capture' && c.plan.destination.file).toBe('images/reference.wim');
  });

  it('names the fields of the kind the plan says it is', () => {
    expect(() => parseAnyPlanText('kind: capture\nsource: { url: "file:///srv" }\n', 'c.yaml')).toThrow(/destination: required/);
    expect(() => parseAnyPlanText('kind: deploy\ndestination: {}\n', 'd.yaml')).toThrow(/source: required/);
    expect(() => parseAnyPlanText('kind: backup\n', 'x.yaml')).toThrow(/kind: expected deploy or capture, not "backup"/);
  });
});
