import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../core/index.js';
import { renderDnsmasqConfig, type DnsmasqConfigOptions } from './dnsmasq-config.js';
import { subnetOf } from './ipv4.js';

// dnsmasq's own syntax check of every mode the server renders (--test reads the file and exits).
describe('dnsmasq accepts the configuration', () => {
  let dir: string;
  beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), 'imagepe-dnsmasq-conf-'))));
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const base: DnsmasqConfigOptions = {
    interface: 'br0',
    mode: 'proxy',
    subnet: subnetOf('10.77.0.1', 24),
    tftpRoot: '/tmp',
    bootScriptUrl: 'http://10.77.0.1:8080/boot.ipxe?mac=${netX/mac:hexhyp}',
    httpBootUrl: 'http://10.77.0.1:8080/ipxe/snponly.efi',
    serverAddress: '10.77.0.1',
    secureBoot: false,
  };
  it.each<[string, Partial<DnsmasqConfigOptions>]>([
    ['proxy', {}],
    ['proxy with Secure Boot', { secureBoot: true }],
    ['dhcp', { mode: 'dhcp', range: { start: '10.77.0.100', end: '10.77.0.200', netmask: '255.255.255.0', lease: '10m' }, leaseFile: '/tmp/x.leases' }],
    ['off', { mode: 'off' }],
  ])('%s', async (_name, extra) => {
    const file = join(dir, 'dnsmasq.conf');
    await writeFile(file, renderDnsmasqConfig({ ...base, ...extra }));
    const r = await run('dnsmasq', ['--test', `--conf-file=${file}`], { timeoutMs: 10_000 });
    expect(r.stderr.trim()).toBe('dnsmasq: syntax check OK.');
  });
});
