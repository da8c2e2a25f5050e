// The main job end to end (scripts/demo runs this after scripts/setup): build the PE ISO, make
// a small Linux reference system, generalize and capture it onto a share, boot the ISO in QEMU
// against a blank disk so the agent deploys it from a plan on the share, then boot the
// deployed disk on its own and show what it says about itself.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startVm } from '../qemu-tests/index.js';
import { makeReferenceSystem, referencePlan } from '../test-support/reference-system.js';

const CLI = resolve('dist/cli/main.js');
const uefi = !process.argv.includes('--bios');

function say(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

function imagepe(...args: string[]): void {
  process.stdout.write(`$ imagepe ${args.join(' ')}\n`);
  execFileSync('node', [CLI, ...args], { stdio: 'inherit' });
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'imagepe-demo-'));
  const share = join(work, 'share');
  let keep = false;
  try {
    say('1. Build the PE: kernel, initramfs with busybox, Node.js, the agent and the disk tools, as a hybrid ISO');
    await writeFile(
      join(work, 'imagepe.yaml'),
      '# Every boot entry reads its plan from the SMB share QEMU serves to the guest.\nkernelArgs: [quiet, loglevel=3, panic=10, "imagepe.plan=smb://10.0.2.4/qemu/plan.yaml"]\n',
    );
    imagepe('build', '-c', join(work, 'imagepe.yaml'), '-o', join(work, 'out'));

    say('2. A reference system (busybox, the distribution kernel, an initramfs), generalized and captured to the share');
    const ref = await makeReferenceSystem(join(work, 'reference'));
    imagepe('generalize', ref.root);
    await mkdir(join(share, 'images'), { recursive: true });
    imagepe('capture', ref.root, join(share, 'images/reference.wim'), 'reference', 'demo reference system', '--compress', 'xpress', '--check');
    imagepe('info', join(share, 'images/reference.wim'));

    say('3. The deploy plan, on the share');
    const plan = referencePlan({ hostname: 'demo-{mac}' });
    await writeFile(join(share, 'plan.yaml'), plan);
    process.stdout.write(plan);
    imagepe('plan', 'validate', join(share, 'plan.yaml'));

    say(`4. Boot the PE ISO in QEMU (${uefi ? 'UEFI' : 'BIOS'}) against a blank 2 GiB disk; the agent deploys from the plan`);
    const disk = join(work, 'target.qcow2');
    const pe = await startVm({
      iso: join(work, 'out/imagepe.iso'),
      uefi,
      disks: [{ path: disk, size: 2 * 1024 ** 3 }],
      share,
      workDir: join(work, 'pe-vm'),
      lifetimeMs: 600_000,
      onEvent: (e) => {
        if (e.type === 'ready') process.stdout.write(`  ready: node ${e.node}, kernel ${e.kernel}, disks ${e.disks.map((d) => d.path).join(' ')}\n`);
        if (e.type === 'step' && e.status === 'done') process.stdout.write(`  ${e.step.padEnd(10)} ${e.detail ?? ''}\n`);
        if (e.type === 'failed') process.stdout.write(`  FAILED at ${e.step}: ${e.message}\n`);
      },
    });
    try {
      await pe.waitForEvent('deployed', 480_000);
      await pe.waitForExit(60_000);
      process.stdout.write(`  deployed in ${pe.elapsedSeconds().toFixed(0)} s (QEMU start to power-off, ${pe.accel.accel})\n`);
    } catch (e) {
      keep = true;
      throw e;
    } finally {
      await pe.stop();
    }

    say('5. Boot the deployed disk on its own');
    const booted = await startVm({ uefi, disks: [{ path: disk }], workDir: join(work, 'disk-vm'), lifetimeMs: 300_000 });
    try {
      const line = await booted.waitForLine(/DEPLOYED hostname=\S+ machine-id=\S* marker=\w+/, 240_000);
      process.stdout.write(`  ${line.trim()}\n  booted in ${booted.elapsedSeconds().toFixed(0)} s\n`);
      const m = /hostname=(\S+) machine-id=(\S*)/.exec(line)!;
      if (m[2] === ref.machineId || !/^[0-9a-f]{32}$/.test(m[2]!)) throw new Error(`the deployed machine-id ${m[2]} is not a fresh one`);
      process.stdout.write(`\nDemo OK: ${m[1]} booted from the deployed disk with a machine-id of its own.\n`);
    } catch (e) {
      keep = true;
      throw e;
    } finally {
      await booted.stop();
    }
  } finally {
    if (keep) process.stderr.write(`demo: kept ${work} (serial logs in pe-vm/ and disk-vm/)\n`);
    else await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
