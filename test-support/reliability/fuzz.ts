import fc from 'fast-check';
import { ImagepeError } from '../../core/index.js';
import { LayoutError, LayoutSchema, resolveLayout as planLayout, type Disk, type LayoutInput } from '../../partition/index.js';
import { parsePlan, parsePlanText, PlanError } from '../../agent/plan/index.js';

// Broken deploy plans, made from one valid plan by a single mutation each, so that every
// rejection can be held to a precise standard: the problem must name the field that was broken
// (or the object or union holding it) and say what form was expected. A mutation that leaves
// the plan valid would be a bug in this generator, not a finding; each kind below only ever
// produces values the documented format forbids.

export type Path = readonly (string | number)[];

export const PLAN_MUTATIONS = ['wrong-type', 'unknown-key', 'missing-field', 'bad-size', 'bad-url', 'bad-index', 'bad-value', 'bad-reference', 'bad-text'] as const;
export type PlanMutation = (typeof PLAN_MUTATIONS)[number];

export interface BrokenPlan {
  kind: PlanMutation;
  /** Where the plan was broken; the rejection must name this path or one that holds it. */
  path: Path;
  /** What was done, for a failing property's report. */
  change: string;
  /** The plan as an object, or as YAML/JSON text for bad-text. */
  value: unknown;
  /** For bad-text: the file name parsePlanText is given (its extension picks the parser). */
  textSource?: string;
  /** For unknown-key: the key that was added, which the problem must name. */
  key?: string;
}

/** A plan that uses every section, so each field can be broken. */
export function validPlanInput(): Record<string, unknown> {
  return {
    source: {
      url: 'smb://10.0.2.4/images/linux',
      image: 'debian/ref.wim',
      index: 1,
      sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
      credentials: { username: 'deploy', password: 'not-a-real-secret', domain: 'LAB' },
    },
    target: {
      disk: { pick: 'smallest', minSize: '2GiB', maxSize: '4TiB', model: 'QEMU', allowRemovable: false },
      wipe: false,
      layout: {
        table: 'gpt',
        partitions: [
          { name: 'ESP', size: '256MiB', type: 'esp', format: 'vfat', label: 'ESP', mount: '/boot/efi' },
          { name: 'bios-boot', size: 1048576, type: 'bios-boot' },
          { name: 'swap', size: '5%', type: 'linux-swap', format: 'swap', mount: 'swap' },
          { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root', mount: '/', partuuid: '0fc63daf-8483-4772-8e79-3d69d8477de4' },
        ],
      },
    },
    apply: [{ partition: 'root', index: 'reference', mode: 'auto' }],
    specialize: {
      hostname: 'node-{mac}',
      machineId: 'new',
      removeSshHostKeys: true,
      files: [
        { path: '/etc/motd', content: 'hello\n', mode: '0644' },
        { path: '/root/.ssh/authorized_keys', base64: 'c3NoLWVkMjU1MTkg', mode: 384 },
      ],
    },
    bootloader: { type: 'grub', firmware: 'both', kernelArgs: 'quiet' },
    after: 'poweroff',
    logs: true,
  };
}

// Every key the plan schema knows, in any object: an added key from this set might be valid
// where it lands, so unknown-key mutations never use one.
const KNOWN_KEYS = new Set([
  'source', 'url', 'image', 'index', 'sha256', 'credentials', 'file', 'username', 'password', 'domain',
  'target', 'disk', 'path', 'pick', 'minSize', 'maxSize', 'model', 'serial', 'wwn', 'allowRemovable', 'wipe', 'layout',
  'table', 'firmware', 'id', 'partitions', 'name', 'size', 'type', 'format', 'label', 'uuid', 'partuuid', 'mount', 'flags',
  'apply', 'partition', 'mode', 'specialize', 'hostname', 'machineId', 'removeSshHostKeys', 'files', 'content', 'base64', 'unattend', 'xml',
  'bootloader', 'kernelArgs', 'after', 'logs',
]);

// Fields that take a number or a string; elsewhere a field takes exactly one JSON type.
const NUMBER_OR_STRING = new Set(['index', 'size', 'mode', 'minSize', 'maxSize']);

// Fields without a default that a plan must have, relative to the base plan.
const REQUIRED: Path[] = [
  ['source'], ['source', 'url'], ['source', 'image'],
  ['target'], ['target', 'layout'], ['target', 'layout', 'table'], ['target', 'layout', 'partitions'],
  ['target', 'layout', 'partitions', 0, 'name'], ['target', 'layout', 'partitions', 3, 'size'], ['target', 'layout', 'partitions', 1, 'type'],
  ['target', 'disk', 'pick'],
  ['apply'], ['apply', 0, 'partition'],
  ['specialize', 'files', 0, 'path'],
  ['source', 'credentials', 'username'],
];

type Kind = 'string' | 'number' | 'boolean' | 'null' | 'array' | 'object';

function kindOf(v: unknown): Kind {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v as Kind;
}

/** Every path of a JSON value below its root, objects and arrays included. */
export function allPaths(value: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [];
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push([...prefix, i], ...allPaths(v, [...prefix, i]));
    });
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) out.push([...prefix, k], ...allPaths(v, [...prefix, k]));
  }
  return out;
}

function getAt(root: unknown, path: Path): unknown {
  let cur = root;
  for (const p of path) cur = (cur as Record<string | number, unknown>)[p];
  return cur;
}

/** A copy of `root` with the value at `path` replaced; `undefined` removes the key. */
export function setAt(root: unknown, path: Path, value: unknown): unknown {
  const copy = structuredClone(root);
  if (path.length === 0) return value;
  const parent = getAt(copy, path.slice(0, -1)) as Record<string | number, unknown>;
  const key = path[path.length - 1]!;
  if (value === undefined) delete parent[key];
  // defineProperty, not assignment: "__proto__" must become an own key, as JSON.parse makes it.
  else Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

const BASE = validPlanInput();
const BASE_PATHS = allPaths(BASE);
const OBJECT_PATHS: Path[] = [[], ...BASE_PATHS.filter((p) => kindOf(getAt(BASE, p)) === 'object')];

const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxLength: 3 }),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxKeys: 3 }),
);

function acceptedKinds(path: Path): Set<Kind> {
  const own = kindOf(getAt(BASE, path));
  const key = path[path.length - 1];
  return typeof key === 'string' && NUMBER_OR_STRING.has(key) ? new Set<Kind>(['number', 'string']) : new Set<Kind>([own]);
}

const wrongType: fc.Arbitrary<BrokenPlan> = fc
  .constantFrom(...BASE_PATHS)
  .chain((path) => anyJson.filter((v) => !acceptedKinds(path).has(kindOf(v))).map((v) => ({ path, v })))
  .map(({ path, v }) => ({ kind: 'wrong-type', path, change: `${show(path)} = ${JSON.stringify(v)} (was ${kindOf(getAt(BASE, path))})`, value: setAt(BASE, path, v) }));

const typos = fc.constantFrom('Wipe', 'wipe ', 'partiton', 'sha265', 'fileSystem', 'disk_path', 'indexx', 'passwd', 'kernel_args', '__proto__', 'constructor', 'toString', '');
const unknownKey: fc.Arbitrary<BrokenPlan> = fc
  .tuple(fc.constantFrom(...OBJECT_PATHS), fc.oneof(typos, fc.stringMatching(/^[A-Za-z_$][\w$-]{0,15}$/)).filter((k) => !KNOWN_KEYS.has(k)), anyJson)
  .map(([path, key, v]) => ({ kind: 'unknown-key', path, key, change: `${show([...path, key])} added`, value: setAt(BASE, [...path, key], v) }));

const missingField: fc.Arbitrary<BrokenPlan> = fc
  .constantFrom(...REQUIRED)
  .map((path) => ({ kind: 'missing-field', path, change: `${show(path)} removed`, value: setAt(BASE, path, undefined) }));

/** Sizes that are not a byte count, a percentage or "rest", built from the ways people get them wrong. */
export const brokenSize: fc.Arbitrary<string | number> = fc.oneof(
  fc.constantFrom('', ' ', 'rest ', 'REST', 'remaining', '%', '-5MiB', '5 MiB MiB', '1.2.3GiB', '5Mi', '5XB', '2 GB of disk', '0x400', '1e9', '∞', '12 parsecs', '50 %', '1,5GiB', '0.5B', '1.0000001KiB', '99999999999999PiB'),
  fc.tuple(fc.integer({ min: 1, max: 4096 }), fc.constantFrom('Mo', 'GiBs', 'kk', 'iB', 'MiBB', 'MiB!', 'Gi', 'Ti')).map(([n, u]) => `${n}${u}`),
  fc.integer({ min: 1, max: 100 }).map((n) => `-${n}GiB`),
  fc.constantFrom(0, -1, -1048576, 1.5, 2 ** 60),
);
const SIZE_PATHS: Path[] = [
  ...[0, 1, 2, 3].map((i) => ['target', 'layout', 'partitions', i, 'size'] as Path),
  ['target', 'disk', 'minSize'],
  ['target', 'disk', 'maxSize'],
];
const badSize: fc.Arbitrary<BrokenPlan> = fc
  .tuple(fc.constantFrom(...SIZE_PATHS), brokenSize)
  // A percentage or "rest" is a partition size, never a disk rule's bound; 0 is a valid minSize.
  .filter(([path, s]) => !(path[1] === 'disk' && s === 0))
  .map(([path, s]) => ({ kind: 'bad-size', path, change: `${show(path)} = ${JSON.stringify(s)}`, value: setAt(BASE, path, s) }));

/** Source URLs the plan format forbids: other schemes, no scheme, hosts where none belongs, credentials in the URL. */
export const brokenUrl: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', ' ', 'images', '/srv/images', '\\\\server\\share', 'smb:/server/share', 'smb://', 'smb:///share', 'http://', 'https:// host/x', 'file://host/srv', 'file:/srv', 'file:srv', 'media:images', 'media', 'smb://my server/share', 'ftp://host/x', 'cifs://host/share', 'HTTP://host/x'),
  fc.tuple(fc.constantFrom('ftp', 'tftp', 'gopher', 'smbs', 'cifs', 'ws', 'sftp', 'nfs4', 'iscsi'), fc.domain()).map(([s, h]) => `${s}://${h}/images`),
  fc.tuple(fc.constantFrom('smb', 'nfs', 'http', 'https'), fc.stringMatching(/^[a-z]{1,8}$/), fc.stringMatching(/^[!-~]{1,8}$/), fc.domain()).map(([s, u, pw, h]) => `${s}://${u}:${encodeURIComponent(pw)}@${h}/share`),
  fc.tuple(fc.constantFrom('smb', 'https'), fc.stringMatching(/^[a-z]{1,8}$/), fc.domain()).map(([s, u, h]) => `${s}://${u}@${h}/share`),
);
const badUrl: fc.Arbitrary<BrokenPlan> = brokenUrl.map((u) => ({ kind: 'bad-url', path: ['source', 'url'], change: `source.url = ${JSON.stringify(u)}`, value: setAt(BASE, ['source', 'url'], u) }));

const INDEX_PATHS: Path[] = [['source', 'index'], ['apply', 0, 'index']];
const badIndex: fc.Arbitrary<BrokenPlan> = fc
  .tuple(fc.constantFrom(...INDEX_PATHS), fc.oneof(fc.integer({ min: -1000, max: 0 }), fc.double({ min: 0.01, max: 99.99, noNaN: true }).filter((d) => !Number.isInteger(d)), fc.constantFrom('', null, true, [], {}, Number.NaN, Infinity)))
  .map(([path, v]) => ({ kind: 'bad-index', path, change: `${show(path)} = ${String(v)}`, value: setAt(BASE, path, v) }));

// Values of the right JSON type that the field's form forbids.
const BAD_VALUES: [Path, unknown[]][] = [
  [['target', 'layout', 'table'], ['GPT', 'msdos', 'dos', '']],
  [['target', 'layout', 'partitions', 3, 'format'], ['ext5', 'EXT4', 'fat32', 'zfs', '']],
  [['target', 'layout', 'partitions', 3, 'type'], ['linux-root', '0x1ff', 'not-a-guid', '', '0fc63daf-8483-4772-8e79-3d69d8477de']],
  [['target', 'layout', 'partitions', 3, 'name'], ['', 'x'.repeat(37)]],
  [['target', 'layout', 'partitions', 3, 'partuuid'], ['xyz', '0fc63daf84834772']],
  [['target', 'layout', 'partitions', 3, 'flags'], [['active'], ['bootable', 'hidden']]],
  [['target', 'disk', 'pick'], ['first', 'Smallest']],
  [['source', 'sha256'], ['9f86d0', 'g'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), '']],
  [['source', 'image'], ['', '../ref.wim', 'images/../../etc/shadow']],
  [['source', 'credentials'], [{}, { file: '' }, { username: '' }, { file: '/etc/c', username: 'u' }, { password: 'x' }]],
  [['specialize', 'files', 0, 'path'], ['etc/motd', '/etc/../shadow', '']],
  [['specialize', 'files', 0, 'mode'], ['0999', 'rwxr-xr-x', 8192, -1, '12345']],
  [['specialize', 'files', 1, 'base64'], ['not base64!', '***']],
  [['specialize', 'hostname'], ['', 'pc-{hostname}', '{serial}-{ip}']],
  [['specialize', 'machineId'], ['random', 'NEW']],
  [['specialize', 'unattend'], [{}, { file: '' }, { xml: '' }]],
  [['bootloader', 'type'], ['syslinux', 'GRUB']],
  [['bootloader', 'firmware'], ['efi', 'legacy']],
  [['apply', 0, 'mode'], ['windows', 'ext4']],
  [['apply'], [[]]],
  [['target', 'layout', 'partitions'], [[]]],
  [['after'], ['halt', 'exit', '']],
];
const badValue: fc.Arbitrary<BrokenPlan> = fc
  .constantFrom(...BAD_VALUES.flatMap(([path, values]) => values.map((v) => [path, v] as const)))
  .map(([path, v]) => ({ kind: 'bad-value', path, change: `${show(path)} = ${JSON.stringify(v)}`, value: setAt(BASE, path, v) }));

// Fields that are valid alone but contradict another part of the plan.
const BAD_REFERENCES: { path: Path; change: string; apply: (p: any) => void }[] = [
  { path: ['apply', 0, 'partition'], change: 'apply names a partition the layout lacks', apply: (p) => (p.apply[0].partition = 'data') },
  { path: ['apply', 0, 'partition'], change: 'apply targets the vfat ESP', apply: (p) => (p.apply[0].partition = 'ESP') },
  { path: ['apply', 0, 'partition'], change: 'apply targets swap', apply: (p) => (p.apply[0].partition = 'swap') },
  { path: ['apply', 0, 'mode'], change: 'ntfs mode on ext4', apply: (p) => (p.apply[0].mode = 'ntfs') },
  { path: ['bootloader', 'type'], change: 'grub without a root mount', apply: (p) => (p.target.layout.partitions[3].mount = '/srv') },
  { path: ['bootloader', 'firmware'], change: 'uefi without an ESP', apply: (p) => p.target.layout.partitions.splice(0, 1) },
  { path: ['bootloader', 'firmware'], change: 'bios on GPT without bios-boot', apply: (p) => p.target.layout.partitions.splice(1, 1) },
  { path: ['specialize', 'unattend'], change: 'unattend without an ntfs apply', apply: (p) => (p.specialize.unattend = { xml: '<unattend/>' }) },
];
const badReference: fc.Arbitrary<BrokenPlan> = fc.constantFrom(...BAD_REFERENCES).map((r) => {
  const value = structuredClone(BASE) as any;
  r.apply(value);
  return { kind: 'bad-reference', path: r.path, change: r.change, value };
});

// The plan as a file that is cut short or mangled: a half-copied plan must not half-work.
const badText: fc.Arbitrary<BrokenPlan> = fc
  .tuple(fc.constantFrom('plan.json', 'plan.yaml'), fc.double({ min: 0, max: 0.999, noNaN: true }), fc.constantFrom('cut', 'tab', 'garbage'))
  .map(([source, at, how]) => {
    const full = source.endsWith('.json') ? JSON.stringify(BASE, null, 2) : yamlOf(BASE);
    const cut = Math.floor(full.length * at);
    const text = how === 'cut' ? full.slice(0, cut) : how === 'tab' ? `${full.slice(0, cut)}\n\t- :\n${full.slice(cut)}` : `${full.slice(0, cut)}}]{\u0000"${full.slice(cut)}`;
    return { kind: 'bad-text', path: [], change: `${source} ${how} at ${cut} of ${full.length}`, value: text, textSource: source };
  });

const BY_KIND: Record<PlanMutation, fc.Arbitrary<BrokenPlan>> = {
  'wrong-type': wrongType,
  'unknown-key': unknownKey,
  'missing-field': missingField,
  'bad-size': badSize,
  'bad-url': badUrl,
  'bad-index': badIndex,
  'bad-value': badValue,
  'bad-reference': badReference,
  'bad-text': badText,
};

/** Broken plans of one kind, or of every kind. */
export function brokenPlan(kind?: PlanMutation): fc.Arbitrary<BrokenPlan> {
  return kind ? BY_KIND[kind] : fc.oneof(...PLAN_MUTATIONS.map((k) => BY_KIND[k]));
}

export interface Verdict {
  /** rejected: the expected error; accepted: the broken input passed (a bug); crashed: another exception. */
  outcome: 'rejected' | 'accepted' | 'crashed';
  problems: string[];
  /** What is wrong with the rejection itself: problems without a path or an expected form, the broken field not named. */
  faults: string[];
  error?: unknown;
}

const PROBLEM = /^(\(top level\)|\(file\)|[^\s:[.]+(?:\.[^\s:[.]+|\[\d+\])*): (.+)$/s;
// "not valid JSON/YAML" names the form a plan file must have; the rest say it of one field.
const SAYS_FORM = /\bexpected\b|\brequired\b|\bunknown fields?\b|\bneeds\b|^not valid (JSON|YAML)\b/i;

/** Runs parsePlan (or parsePlanText) on a broken plan and judges the result. */
export function checkBrokenPlan(b: BrokenPlan): Verdict {
  let problems: string[];
  try {
    if (b.kind === 'bad-text') parsePlanText(b.value as string, b.textSource);
    else parsePlan(b.value, 'fuzz plan');
    return { outcome: 'accepted', problems: [], faults: [`accepted: ${b.change}`] };
  } catch (e) {
    if (!(e instanceof PlanError)) return { outcome: 'crashed', problems: [], faults: [`${b.change}: ${(e as Error)?.constructor?.name ?? typeof e}: ${(e as Error)?.message}`], error: e };
    problems = e.problems;
  }
  const faults: string[] = [];
  if (problems.length === 0) faults.push('a PlanError with no problems');
  if (new Set(problems).size !== problems.length) faults.push(`the same problem more than once: ${JSON.stringify(problems)}`);
  for (const p of problems) {
    const m = PROBLEM.exec(p);
    if (!m) faults.push(`no field path at the start: ${JSON.stringify(p)}`);
    else if (!SAYS_FORM.test(m[2]!)) faults.push(`does not say the expected form: ${JSON.stringify(p)}`);
  }
  if (b.kind !== 'bad-text') {
    const named = problems.some((p) => namesPathOrParent(p, b.path) && (b.key === undefined || p.includes(b.key === '' ? 'unknown field ' : b.key)));
    if (!named) faults.push(`no problem names ${show(b.path)}${b.key !== undefined ? ` and the key ${JSON.stringify(b.key)}` : ''}: ${JSON.stringify(problems)}`);
  }
  return { outcome: 'rejected', problems, faults };
}

// A union (credentials, disk target) or the object holding the field may be what is named, and
// so may a field inside a value that was replaced whole, as long as the problem points at that
// branch of the plan, not elsewhere.
function namesPathOrParent(problem: string, path: Path): boolean {
  if (path.length === 0) return problem.startsWith('(top level): ');
  const at = show(path);
  if (problem.startsWith(`${at}.`) || problem.startsWith(`${at}[`)) return true;
  for (let n = path.length; n >= 1; n--) if (problem.startsWith(`${show(path.slice(0, n))}: `)) return true;
  return false;
}

export function show(path: Path): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${p}`)).join('');
}

// A small YAML writer for the base plan (plain JSON data, no anchors): block style, strings quoted.
function yamlOf(v: unknown, indent = ''): string {
  if (Array.isArray(v)) return v.map((x) => `${indent}- ${yamlOf(x, `${indent}  `).trimStart()}`).join('\n');
  if (v && typeof v === 'object') {
    return Object.entries(v)
      .map(([k, x]) => (x && typeof x === 'object' ? `${indent}${k}:\n${yamlOf(x, `${indent}  `)}` : `${indent}${k}: ${JSON.stringify(x)}`))
      .join('\n');
  }
  return JSON.stringify(v);
}

// Layouts that pass the schema but cannot be placed on the disk: caught by the planner, before
// anything is written.
export const LAYOUT_MUTATIONS = ['two-rest', 'too-large'] as const;
export type LayoutMutation = (typeof LAYOUT_MUTATIONS)[number];

export interface BrokenLayout {
  kind: LayoutMutation;
  layout: LayoutInput;
  disk: Disk;
  /** Indexes of the partitions with size "rest" (two-rest). */
  rest: number[];
}

const MiB = 1024 * 1024;
const diskArb = fc.record({
  sectorSize: fc.constantFrom(512, 4096),
  sizeMiB: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 64, max: 4 * 1024 * 1024 })),
});
const plainPart = (i: number, size: string | number) => ({ name: `p${i}`, size, type: 'linux', format: 'none' as const });

const twoRest: fc.Arbitrary<BrokenLayout> = fc
  .tuple(diskArb, fc.constantFrom('gpt', 'mbr'), fc.array(fc.oneof(fc.constant('rest'), fc.integer({ min: 1, max: 64 }).map((n) => `${n}MiB`)), { minLength: 2, maxLength: 7 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 6 }))
  .map(([d, table, sizes, a, b]) => {
    const s = [...sizes];
    const i = a % s.length;
    const j = (i + (b % (s.length - 1)) + 1) % s.length;
    s[i] = 'rest';
    s[j] = 'rest';
    return {
      kind: 'two-rest',
      layout: { table, firmware: 'uefi', partitions: s.map((size, k) => plainPart(k, size)) },
      disk: { path: '/dev/fuzz-disk', sizeBytes: d.sizeMiB * MiB, sectorSize: d.sectorSize },
      rest: s.flatMap((x, k) => (x === 'rest' ? [k] : [])),
    } satisfies BrokenLayout;
  });

const tooLarge: fc.Arbitrary<BrokenLayout> = fc
  .tuple(diskArb, fc.constantFrom('gpt', 'mbr'), fc.constantFrom('one-larger', 'sum-larger', 'percent', 'bytes', 'rest-after'))
  .map(([d, table, how]) => {
    const size = d.sizeMiB * MiB;
    const sizes: (string | number)[] =
      how === 'one-larger' ? [`${d.sizeMiB + 1}MiB`]
      : how === 'sum-larger' ? [`${Math.ceil(d.sizeMiB / 2)}MiB`, `${Math.ceil(d.sizeMiB / 2)}MiB`, '1MiB']
      // Percentages are floored to whole MiB, so 110% of a few MiB can still fit.
      : how === 'percent' ? (d.sizeMiB >= 20 ? ['60%', '50%'] : [`${d.sizeMiB + 1}MiB`])
      : how === 'bytes' ? [size]
      : [`${d.sizeMiB}MiB`, 'rest'];
    return {
      kind: 'too-large',
      layout: { table, firmware: 'uefi', partitions: sizes.map((s, k) => plainPart(k, s)) },
      disk: { path: '/dev/fuzz-disk', sizeBytes: size, sectorSize: d.sectorSize },
      rest: [],
    } satisfies BrokenLayout;
  });

export function brokenLayout(kind?: LayoutMutation): fc.Arbitrary<BrokenLayout> {
  return kind === 'two-rest' ? twoRest : kind === 'too-large' ? tooLarge : fc.oneof(twoRest, tooLarge);
}

/** Plans a broken layout on its disk and judges the refusal. */
export function checkBrokenLayout(b: BrokenLayout): Verdict {
  let problems: string[];
  try {
    planLayout(LayoutSchema.parse(b.layout), b.disk);
    return { outcome: 'accepted', problems: [], faults: [`planned: ${JSON.stringify(b)}`] };
  } catch (e) {
    if (!(e instanceof ImagepeError)) return { outcome: 'crashed', problems: [], faults: [`${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`], error: e };
    if (!(e instanceof LayoutError)) return { outcome: 'rejected', problems: [e.message], faults: [`an ImagepeError that lists no problems: ${e.message}`], error: e };
    problems = e.problems;
    const faults: string[] = [];
    if (!e.message.includes(b.disk.path)) faults.push(`the message does not name ${b.disk.path}`);
    if (b.kind === 'two-rest') {
      const named = b.rest.map((i) => `partitions[${i}] (p${i})`);
      if (!problems.some((p) => /only one partition may have size "rest"/.test(p) && named.every((n) => p.includes(n)))) faults.push(`no problem names the "rest" partitions ${named.join(', ')}: ${JSON.stringify(problems)}`);
    } else if (!problems.some((p) => /does not fit|only the first|less than 1 MiB|too large/.test(p))) {
      faults.push(`no problem says the layout is larger than the disk: ${JSON.stringify(problems)}`);
    }
    return { outcome: 'rejected', problems, faults, error: e };
  }
}

export interface FuzzFigures {
  /** Broken plans and layouts generated and checked. */
  tried: number;
  /** Refused with the expected error naming the problem. */
  rejected: number;
  /** Broken input that was accepted: must be 0. */
  accepted: number;
  /** Another exception than the validation error: must be 0. */
  crashed: number;
  /** Refused, but the message lacks the path, the expected form or the disk: should be 0. */
  unclear: number;
  byKind: Record<string, number>;
  /** The first few faults found, for the report. */
  examples: string[];
}

/** Runs `perKind` generated cases of every plan and layout mutation and counts the outcomes. */
export function runFuzz(perKind: number, seed = 8): FuzzFigures {
  const f: FuzzFigures = { tried: 0, rejected: 0, accepted: 0, crashed: 0, unclear: 0, byKind: {}, examples: [] };
  const count = (kind: string, v: Verdict) => {
    f.tried++;
    f.byKind[kind] = (f.byKind[kind] ?? 0) + 1;
    if (v.outcome === 'accepted') f.accepted++;
    else if (v.outcome === 'crashed') f.crashed++;
    else if (v.faults.length > 0) f.unclear++;
    else f.rejected++;
    if (v.faults.length > 0 && f.examples.length < 5) f.examples.push(`${kind}: ${v.faults[0]}`);
  };
  for (const kind of PLAN_MUTATIONS) for (const b of fc.sample(brokenPlan(kind), { numRuns: perKind, seed })) count(kind, checkBrokenPlan(b));
  for (const kind of LAYOUT_MUTATIONS) for (const b of fc.sample(brokenLayout(kind), { numRuns: perKind, seed })) count(kind, checkBrokenLayout(b));
  return f;
}
