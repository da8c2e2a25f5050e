import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Service } from '../core/index.js';
import type { PxeRun } from './testing/pxe-client.js';
import { makeDeploymentNetwork, type DeploymentNetwork } from '../test-support/deployment-network.js';

/**
 * The real DHCP path, with no packet leaving the host: three network namespaces on a bridge
 * (made here, removed in afterAll): the server's, with `imagepe serve` (the built CLI) and so its
 * dnsmasq; the site's, with a second dnsmasq as the network's plain DHCP server; and a client's,
 * where serve/testing/pxe-client.ts plays a PXE ROM, iPXE, or UEFI HTTP boot firmware.
 */
const exec = promisify(execFile);
const MAIN = resolve('dist/cli/main.js');
const CLIENT = resolve('dist/serve/testing/pxe-client.js');
const NET = '10.231.7';
const PORT = 8080;
const UNDIONLY = readFileSync('/usr/lib/ipxe/undionly.kpxe');
const SNPONLY = readFileSync('/usr/lib/ipxe/snponly.efi');
// Each test waits on DHCP exchanges of a few seconds; jest's default 5 s is too short.
jest.setTimeout(60_000);

let work: string;
let network: DeploymentNetwork;
let NS: { server: string; site: string; client: string };
let SERVER_IP: string;
let SITE_IP: string;
let site: Service | undefined;
let serve: Service | undefined;
let serveLines: string[] = [];
const t0 = Date.now();

async function ns(name: string, ...args: string[]): Promise<string> {
  return network.exec(name, args[0]!, args.slice(1), 20_000);
}

/** One PXE exchange from the client namespace. */
async function pxe(...args: string[]): Promise<PxeRun> {
  return JSON.parse(await ns(NS.client, 'node', CLIENT, '--iface', 'eth0', '--wait', '5000', ...args)) as PxeRun;
}

/** A TFTP GET from the client namespace (curl's TFTP client), as bytes. */
async function tftpGet(file: string): Promise<Buffer> {
  const out = join(work, `tftp-${Math.random().toString(16).slice(2)}`);
  await ns(NS.client, 'curl', '-sS', '--max-time', '15', `tftp://${SERVER_IP}/${file}`, '-o', out);
  return readFile(out);
}

async function httpGet(path: string): Promise<Buffer> {
  const out = join(work, `http-${Math.random().toString(16).slice(2)}`);
  await ns(NS.client, 'curl', '-sS', '--fail', '--max-time', '15', `http://${SERVER_IP}:${PORT}/${path}`, '-o', out);
  return readFile(out);
}

/** `imagepe serve` inside the server namespace, started once it prints that it serves. */
async function startServe(...args: string[]): Promise<Service> {
  serveLines = [];
  return network.startServe(join(work, 'served'), args, (l) => serveLines.push(l));
}

beforeAll(async () => {
  expect(existsSync(MAIN)).toBe(true);
  expect(existsSync(CLIENT)).toBe(true);
  work = await mkdtemp(join(tmpdir(), 'imagepe-serve-ns-'));
  const served = join(work, 'served');
  await mkdir(join(served, 'pxe', 'grub'), { recursive: true });
  await mkdir(join(served, 'plans'));
  await mkdir(join(served, 'images'));
  await writeFile(join(served, 'pxe', 'boot.ipxe'), '#!ipxe\nkernel vmlinuz initrd=initrd.img imagepe.mode=deploy\ninitrd initrd.img\nboot\n');
  await writeFile(join(served, 'pxe', 'vmlinuz'), 'a kernel');
  await writeFile(join(served, 'pxe', 'initrd.img'), 'an initrd');
  // Stand-ins for the signed chain: TFTP serves whatever bytes the bundle holds.
  await writeFile(join(served, 'pxe', 'bootx64.efi'), 'shim bytes');
  await writeFile(join(served, 'pxe', 'grubx64.efi'), 'grub bytes');
  await writeFile(join(served, 'pxe', 'grub', 'grub.cfg'), "menuentry 'imagepe: deploy' --id deploy {\n  linux $imagepe_dir/vmlinuz imagepe.mode=deploy\n  initrd $imagepe_dir/initrd.img\n}\n");

  network = await makeDeploymentNetwork('int', { net: NET });
  NS = { ...network.ns, client: await network.addClient(`ipe-cli-${process.pid % 100000}`) };
  SERVER_IP = network.serverIp;
  SITE_IP = network.siteIp;
  site = await network.startSiteDhcp(work);
}, 60_000);

afterAll(async () => {
  await serve?.stop().catch(() => undefined);
  await site?.stop().catch(() => undefined);
  await network?.remove();
  if (work) await rm(work, { recursive: true, force: true });
  // How long the whole namespace run took, for docs/serve.md.
  process.stderr.write(`serve namespace test: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}, 60_000);

describe('imagepe serve on a network of namespaces', () => {
  describe('as proxyDHCP beside the site DHCP server', () => {
    beforeAll(async () => {
      serve = await startServe();
    }, 60_000);
    afterAll(async () => {
      const serving = JSON.parse(serveLines.find((l) => l.includes('"type":"serving"'))!) as { workDir: string };
      expect(existsSync(join(serving.workDir, 'tftp', 'undionly.kpxe'))).toBe(true);
      const exit = await serve?.stop();
      serve = undefined;
      // SIGTERM is a clean stop: the CLI stops dnsmasq and removes its work directory.
      expect(exit?.exitCode).toBe(0);
      expect(existsSync(serving.workDir)).toBe(false);
    }, 30_000);

    it('sends a BIOS PXE client (arch 0) on to undionly.kpxe through its boot server, and serves it over TFTP', async () => {
      const run = await pxe('--arch', '0');
      const proxy = run.offers.find((o) => o.from === `${SERVER_IP}:67`);
      const siteOffer = run.offers.find((o) => o.from === `${SITE_IP}:67`);
      expect(siteOffer?.yiaddr).toMatch(new RegExp(`^${NET.replace(/\./g, '\\.')}\\.1[0-5]\\d$`));
      // The proxy offer gives no address, a PXE menu (option 43) and no file: the ROM asks port 4011.
      expect(proxy).toMatchObject({ yiaddr: '0.0.0.0', vendorClass: 'PXEClient', file: '' });
      expect(proxy?.vendorOptions).toBeTruthy();
      expect(run.boot).toMatchObject({ from: `${SERVER_IP}:4011`, file: 'undionly.kpxe', siaddr: SERVER_IP });
      expect((await tftpGet('undionly.kpxe')).equals(UNDIONLY)).toBe(true);
    });

    it.each([7, 9])('sends a UEFI PXE client (arch %i) to port 4011 and on to snponly.efi', async (arch) => {
      const run = await pxe('--arch', String(arch));
      const proxy = run.offers.find((o) => o.from === `${SERVER_IP}:67`);
      expect(proxy).toMatchObject({ yiaddr: '0.0.0.0', siaddr: SERVER_IP, file: '' });
      expect(run.boot).toMatchObject({ from: `${SERVER_IP}:4011`, file: 'snponly.efi' });
      expect((await tftpGet('snponly.efi')).equals(SNPONLY)).toBe(true);
    });

    it.each([0, 7])('gives a client already running iPXE (arch %i) the boot script over HTTP, with its MAC in the URL', async (arch) => {
      const run = await pxe('--arch', String(arch), '--ipxe');
      const proxy = run.offers.find((o) => o.from === `${SERVER_IP}:67`);
      expect(proxy?.file).toBe(`http://${SERVER_IP}:${PORT}/boot.ipxe?mac=\${netX/mac:hexhyp}`);
      // iPXE takes a ProxyDHCP reply only with a next-server (seen with QEMU's iPXE ROM).
      expect(proxy?.siaddr).toBe(SERVER_IP);
      const mac = (await ns(NS.client, 'cat', '/sys/class/net/eth0/address')).trim();
      const script = (await httpGet(`boot.ipxe?mac=${mac.replace(/:/g, '-')}`)).toString();
      expect(script).toContain(`kernel vmlinuz initrd=initrd.img imagepe.mode=deploy imagepe.server=http://${SERVER_IP}:${PORT}/ BOOTIF=01-\${netX/mac:hexhyp}`);
    });

    it('gives a UEFI HTTP boot client the URL of iPXE for UEFI, with option 60 HTTPClient', async () => {
      const run = await pxe('--arch', '16', '--vendor', 'HTTPClient:Arch:00016:UNDI:003001');
      const proxy = run.offers.find((o) => o.from === `${SERVER_IP}:67`);
      expect(proxy).toMatchObject({ vendorClass: 'HTTPClient', file: `http://${SERVER_IP}:${PORT}/ipxe/snponly.efi` });
      expect((await httpGet('ipxe/snponly.efi')).equals(SNPONLY)).toBe(true);
    });

    it('shows the client in the machine table: architecture, what it was offered and fetched', async () => {
      const mac = (await ns(NS.client, 'cat', '/sys/class/net/eth0/address')).trim();
      const table = JSON.parse((await httpGet('api/machines')).toString()) as { machines: { mac: string; state: string; archName: string; ipxe: boolean; fetched: { file: string; via: string }[] }[] };
      const m = table.machines.find((x) => x.mac === mac);
      expect(m).toMatchObject({ state: 'booting', archName: 'UEFI x64 HTTP', ipxe: true });
      expect(m?.fetched).toEqual(expect.arrayContaining([expect.objectContaining({ file: 'snponly.efi', via: 'tftp' }), expect.objectContaining({ file: 'boot.ipxe', via: 'http' })]));
      expect(serveLines.some((l) => l.includes('"type":"machine"') && l.includes(mac))).toBe(true);
    });

    it('refuses to become the DHCP server while the site one answers', async () => {
      const r = await exec('ip', ['netns', 'exec', NS.server, 'node', MAIN, 'serve', join(work, 'served'), '--interface', 'br0', '--dhcp-range', `${NET}.160,${NET}.170`, '--port', '8081'], { timeout: 60_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(r.code).toBe(4);
      expect(r.stderr).toContain(`another DHCP server already answers on br0: ${SITE_IP}`);
    }, 60_000);
  });

  describe('as the DHCP server, with Secure Boot', () => {
    beforeAll(async () => {
      await site?.stop();
      site = undefined;
      serve = await startServe('--dhcp-range', `${NET}.160,${NET}.170,10m`, '--secure-boot');
    }, 60_000);

    it('hands out an address and the signed shim to a UEFI PXE client, and serves the chain over TFTP', async () => {
      const run = await pxe('--arch', '7');
      expect(run.offers).toHaveLength(1);
      expect(run.offers[0]).toMatchObject({ from: `${SERVER_IP}:67`, siaddr: SERVER_IP, file: 'bootx64.efi' });
      expect(run.offers[0]!.yiaddr).toMatch(new RegExp(`^${NET.replace(/\./g, '\\.')}\\.1[67]\\d$`));
      await ns(NS.client, 'ip', 'addr', 'replace', `${run.offers[0]!.yiaddr}/24`, 'dev', 'eth0');
      expect((await tftpGet('bootx64.efi')).toString()).toBe('shim bytes');
      expect((await tftpGet('grubx64.efi')).toString()).toBe('grub bytes');
      expect((await tftpGet('grub/grub.cfg')).toString()).toContain(`linux $imagepe_dir/vmlinuz imagepe.mode=deploy imagepe.server=http://${SERVER_IP}:${PORT}/`);
      expect((await tftpGet('vmlinuz')).toString()).toBe('a kernel');
    });

    it('still gives BIOS clients iPXE, and iPXE its script', async () => {
      expect((await pxe('--arch', '0')).offers[0]).toMatchObject({ file: 'undionly.kpxe' });
      expect((await pxe('--arch', '0', '--ipxe')).offers[0]?.file).toBe(`http://${SERVER_IP}:${PORT}/boot.ipxe?mac=\${netX/mac:hexhyp}`);
    });

    it('stops, and says why, when dnsmasq dies under it', async () => {
      const serving = JSON.parse(serveLines.find((l) => l.includes('"type":"serving"'))!) as { workDir: string };
      const { stdout } = await exec('pgrep', ['-f', `conf-file=${serving.workDir}/dnsmasq.conf`]);
      process.kill(Number(stdout.trim().split('\n')[0]), 'SIGKILL');
      const exit = await Promise.race([serve!.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('imagepe serve kept running')), 20_000))]);
      // COMMAND_FAILED, with dnsmasq's end in the message; its work directory is gone all the same.
      expect(exit.exitCode).toBe(8);
      expect(serveLines.join('\n')).toMatch(/"code":"COMMAND_FAILED".*dnsmasq.*was killed by SIGKILL/);
      expect(existsSync(serving.workDir)).toBe(false);
    });
  });
});
