import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../builder/index.js';
import { startVm } from '../qemu-tests/index.js';

// The package as a user gets it: `npm pack` (its prepack step included) from a copy of the
// checkout, so the build it runs cannot disturb the dist/ other test files import; `npm install -g`
// of the tarball into an empty prefix, which brings no development dependency; then the installed
// `imagepe build` makes an ISO, and the ISO boots in QEMU to the agent's ready event.
const BOOT_TIMEOUT_MS = 90_000;

describe('the npm package', () => {
  let work: string;
  let prefix: string;
  let tarball: string;
  const imagepe = () => join(prefix, 'bin', 'imagepe');
  const installed = () => join(prefix, 'lib', 'node_modules', 'imagepe');
  // A home of its own, so the build cache is the installed package's default (~/.cache/imagepe).
  const env = () => ({ HOME: join(work, 'home'), IMAGEPE_CACHE_DIR: undefined, XDG_CACHE_HOME: undefined, npm_config_cache: join(work, 'npm-cache') });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'imagepe-package-'));
    prefix = join(work, 'prefix');
    const root = projectRoot();
    const copy = join(work, 'checkout');
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const f of files) {
      if (!existsSync(join(root, f))) continue; // deleted in the working tree, not yet committed
      await mkdir(dirname(join(copy, f)), { recursive: true });
      await cp(join(root, f), join(copy, f));
    }
    await symlink(join(root, 'node_modules'), join(copy, 'node_modules'));
    await mkdir(join(work, 'pack'));
    await mkdir(join(work, 'home'));
    await execa('npm', ['pack', '--pack-destination', join(work, 'pack')], { cwd: copy, env: env(), timeout: 240_000 });
    tarball = join(work, 'pack', (await readdir(join(work, 'pack'))).find((n) => n.endsWith('.tgz'))!);
    await execa('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', tarball], { env: env(), timeout: 300_000 });
  }, 600_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('ships the built agent, the templates and the schemas, and no development dependency', async () => {
    const listing = (await execa('tar', ['tzf', tarball])).stdout.split('\n');
    expect(listing).toEqual(expect.arrayContaining(['package/dist/pe-agent/agent.cjs', 'package/dist/cli/main.js', 'package/templates/init', 'package/docs/schema/plan.schema.json', 'package/LICENSE']));
    // Sources and tests stay in the checkout.
    expect(listing.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(listing.filter((f) => /test-support|\.test\./.test(f))).toEqual([]);
    const bundle = await readFile(join(installed(), 'dist', 'pe-agent', 'agent.cjs'), 'utf8');
    expect(bundle.startsWith('// imagepe agent (bundled)')).toBe(true);
    expect(existsSync(join(installed(), 'node_modules', 'esbuild'))).toBe(false);
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'esbuild'))).toBe(false);
  });

  it('knows its packages: setup --dry-run and doctor find everything on this machine', async () => {
    const setup = await execa(imagepe(), ['setup', '--dry-run', '--json'], { env: env(), timeout: 60_000 });
    expect(JSON.parse(setup.stdout)).toMatchObject({ operation: 'setup', dryRun: true, missing: [] });
    const doctor = await execa(imagepe(), ['doctor', '--json'], { env: env(), timeout: 60_000 });
    expect(JSON.parse(doctor.stdout)).toMatchObject({ operation: 'doctor', missing: 0 });
  }, 120_000);

  it('builds an ISO with the installed imagepe, and the ISO boots to the agent', async () => {
    const out = join(work, 'out');
    const build = await execa(imagepe(), ['build', '-o', out, '--json'], { env: env(), timeout: 600_000 });
    const result = JSON.parse(build.stdout.trim().split('\n').pop()!) as { iso: string; cached: boolean; kernel: { version: string } };
    expect(result.iso).toBe(join(out, 'imagepe.iso'));
    expect(result.cached).toBe(false);
    // The installed package caches under its user's home, not in its own folder.
    expect(existsSync(join(work, 'home', '.cache', 'imagepe'))).toBe(true);
    expect(existsSync(join(installed(), '.cache'))).toBe(false);

    const vm = await startVm({ iso: result.iso, disks: [{ path: join(work, 'target.qcow2'), size: '2GiB' }], workDir: join(work, 'vm'), lifetimeMs: BOOT_TIMEOUT_MS + 30_000 });
    let ok = false;
    try {
      const ready = await vm.waitForEvent('ready', BOOT_TIMEOUT_MS);
      expect(ready.mode).toBe('deploy');
      expect(ready.kernel).toBe(result.kernel.version);
      expect(ready.codeCache).toBe('accepted');
      expect(ready.disks.map((d) => d.path)).toEqual(['/dev/vda']);
      process.stdout.write(`installed package: ISO booted to ready in ${vm.elapsedSeconds().toFixed(1)} s\n`);
      ok = true;
    } finally {
      await vm.stop();
      if (!ok) process.stderr.write(`package boot: serial log kept at ${vm.logPath}\n`);
    }
  }, 900_000);
});
