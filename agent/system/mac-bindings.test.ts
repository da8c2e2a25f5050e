import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { removeDir, tempDir } from '../../test-support/tree.js';
import { unbindMacAddresses, unbindNetplan, unbindNetworkManager, unbindSystemdNetwork } from './mac-bindings.js';

const MAC = '52:54:00:12:34:56';

describe('network configuration bound to the reference card', () => {
  it('netplan: a match on the MAC becomes a match on Ethernet names, and the rename by MAC goes; comments stay', () => {
    const text = `# written by the installer\nnetwork:\n  version: 2\n  ethernets:\n    lan:\n      match:\n        macaddress: "${MAC}"\n      set-name: lan0\n      dhcp4: true\n    other:\n      dhcp4: true\n`;
    const r = unbindNetplan(text);
    expect(r.changes).toEqual([`ethernets.lan: no longer matched by MAC ${MAC} or renamed; matches any e* interface`]);
    expect(r.text).toContain('# written by the installer');
    expect(parse(r.text!)).toEqual({ network: { version: 2, ethernets: { lan: { match: { name: 'e*' }, dhcp4: true }, other: { dhcp4: true } } } });
    expect(unbindNetplan('network:\n  ethernets:\n    eth0:\n      dhcp4: true\n')).toEqual({ text: 'network:\n  ethernets:\n    eth0:\n      dhcp4: true\n', changes: [] });
  });

  it('NetworkManager: mac-address= of the [ethernet] section goes, nothing else', () => {
    const text = `[connection]\nid=Wired\ntype=ethernet\n\n[ethernet]\nmac-address=${MAC}\n\n[ipv4]\nmethod=auto\n`;
    const r = unbindNetworkManager(text);
    expect(r.text).toBe('[connection]\nid=Wired\ntype=ethernet\n\n[ethernet]\n\n[ipv4]\nmethod=auto\n');
    expect(r.changes).toEqual([`[ethernet] mac-address=${MAC} removed`]);
  });

  it('systemd-networkd: a .network matched by MAC matches Ethernet names, a .link bound to a card is removed', () => {
    const net = unbindSystemdNetwork(`[Match]\nMACAddress=${MAC}\n\n[Network]\nDHCP=yes\n`, 'network');
    expect(net.text).toBe('[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n');
    const both = unbindSystemdNetwork(`[Match]\nName=enp1s0\nMACAddress=${MAC}\n[Network]\nDHCP=yes\n`, 'network');
    expect(both.text).toBe('[Match]\nName=enp1s0\n[Network]\nDHCP=yes\n');
    expect(unbindSystemdNetwork(`[Match]\nMACAddress=${MAC}\n[Link]\nName=lan0\n`, 'link')).toEqual({ text: null, changes: [`matched the card with MAC ${MAC}; removed`] });
    expect(unbindSystemdNetwork('[Match]\nName=en*\n', 'link').changes).toEqual([]);
  });

  it('finds the files in a system tree, edits or removes them, and leaves unbound ones alone', async () => {
    const root = await tempDir('mac-bindings');
    try {
      const put = async (p: string, t: string) => {
        await mkdir(join(root, p, '..'), { recursive: true });
        await writeFile(join(root, p), t);
      };
      await put('etc/netplan/01-lan.yaml', `network:\n  ethernets:\n    e:\n      match: {macaddress: "${MAC}"}\n`);
      await put('etc/NetworkManager/system-connections/Wired.nmconnection', `[ethernet]\nmac-address=${MAC}\n`);
      await put('etc/systemd/network/10-lan.link', `[Match]\nMACAddress=${MAC}\n[Link]\nName=lan0\n`);
      await put('etc/systemd/network/20-lan.network', `[Match]\nName=lan0\n[Network]\nDHCP=yes\n`);
      await put('etc/udev/rules.d/70-persistent-net.rules', `SUBSYSTEM=="net", ATTR{address}=="${MAC}", NAME="eth0"\n`);
      const changes = await unbindMacAddresses(root);
      expect(changes.map((c) => [c.file, c.removed])).toEqual([
        ['/etc/netplan/01-lan.yaml', false],
        ['/etc/NetworkManager/system-connections/Wired.nmconnection', false],
        ['/etc/systemd/network/10-lan.link', true],
        ['/etc/udev/rules.d/70-persistent-net.rules', true],
      ]);
      expect(await readdir(join(root, 'etc/systemd/network'))).toEqual(['20-lan.network']);
      expect(await readFile(join(root, 'etc/netplan/01-lan.yaml'), 'utf8')).not.toContain(MAC);
      expect(await readFile(join(root, 'etc/NetworkManager/system-connections/Wired.nmconnection'), 'utf8')).not.toContain(MAC);
    } finally {
      await removeDir(root);
    }
  });
});
