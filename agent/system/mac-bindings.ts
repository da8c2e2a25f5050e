import { readFile, rm, writeFile } from 'node:fs/promises';
import { parseDocument, isMap, isScalar, type YAMLMap } from 'yaml';
import { filesInside, pathInside } from './paths.js';

/**
 * Network configuration that names the reference machine's network card by its MAC address
 * binds the copy to hardware it will never have: the deployed machine comes up without a
 * network. These make such configuration generic (any Ethernet interface) or drop it. Pure:
 * text in, text out, with what changed in words.
 */

/** Interface names a generic match uses: predictable (en*) and classic (eth*) Ethernet names. */
export const ETHERNET_NAMES = 'en* eth*';

export interface MacBindingEdit {
  /** The file's new text, or null when the file should be removed. */
  text: string | null;
  changes: string[];
}

/** netplan YAML: `match: {macaddress: …}` under ethernets becomes a match on Ethernet names; a `set-name` that needed the MAC goes too. */
export function unbindNetplan(text: string): MacBindingEdit {
  const doc = parseDocument(text);
  const changes: string[] = [];
  const ethernets = doc.getIn(['network', 'ethernets']);
  if (!isMap(ethernets)) return { text, changes };
  for (const item of (ethernets as YAMLMap).items) {
    const id = isScalar(item.key) ? String(item.key.value) : String(item.key);
    const conf = item.value;
    if (!isMap(conf)) continue;
    const match = conf.get('match', true);
    if (!isMap(match) || !match.has('macaddress')) continue;
    const mac = String(match.get('macaddress'));
    match.delete('macaddress');
    if (match.items.length === 0) match.set('name', 'e*');
    if (conf.has('set-name')) {
      conf.delete('set-name');
      changes.push(`ethernets.${id}: no longer matched by MAC ${mac} or renamed; matches any e* interface`);
    } else changes.push(`ethernets.${id}: no longer matched by MAC ${mac}`);
  }
  return { text: changes.length ? doc.toString() : text, changes };
}

/** A NetworkManager keyfile: `mac-address=` in [ethernet] (or [wifi]) binds the connection to one card; it goes. */
export function unbindNetworkManager(text: string): MacBindingEdit {
  const changes: string[] = [];
  let section = '';
  const lines = text.split('\n').filter((line) => {
    const s = /^\s*\[([^\]]+)\]/.exec(line);
    if (s) section = s[1]!.trim();
    const m = /^\s*mac-address\s*=\s*(.*)$/.exec(line);
    if (m && (section === 'ethernet' || section === '802-3-ethernet' || section === 'wifi' || section === '802-11-wireless')) {
      changes.push(`[${section}] mac-address=${m[1]!.trim()} removed`);
      return false;
    }
    return true;
  });
  return { text: changes.length ? lines.join('\n') : text, changes };
}

/**
 * A systemd .network or .link file. A .link that matches by MAC renames or configures that one
 * card: it is removed. A .network's [Match] MACAddress= lines go, and a [Match] left with
 * nothing else matches Ethernet names instead.
 */
export function unbindSystemdNetwork(text: string, kind: 'network' | 'link'): MacBindingEdit {
  let section = '';
  let first = -1;
  let otherMatch = false;
  const macs: string[] = [];
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const s = /^\s*\[([^\]]+)\]/.exec(line);
    if (s) section = s[1]!.trim();
    else if (section === 'Match') {
      const m = /^\s*(?:Permanent)?MACAddress\s*=\s*(.*)$/.exec(line);
      if (m) {
        macs.push(m[1]!.trim());
        if (first < 0) first = out.length;
        continue;
      }
      if (/^\s*[A-Za-z]+\s*=/.test(line)) otherMatch = true;
    }
    out.push(line);
  }
  if (macs.length === 0) return { text, changes: [] };
  if (kind === 'link') return { text: null, changes: [`matched the card with MAC ${macs.join(', ')}; removed`] };
  if (!otherMatch) out.splice(first, 0, `Name=${ETHERNET_NAMES}`);
  return { text: out.join('\n'), changes: [`[Match] MACAddress=${macs.join(' ')} ${otherMatch ? 'removed' : `replaced by Name=${ETHERNET_NAMES}`}`] };
}

/** One file changed or removed to free the system from the reference's network cards. */
export interface MacBindingChange {
  file: string;
  removed: boolean;
  changes: string[];
}

const NETWORK_FILES: readonly { dir: string; suffix: string; edit: (text: string) => MacBindingEdit }[] = [
  { dir: '/etc/netplan', suffix: '.yaml', edit: unbindNetplan },
  { dir: '/etc/NetworkManager/system-connections', suffix: '', edit: unbindNetworkManager },
  { dir: '/etc/systemd/network', suffix: '.network', edit: (t) => unbindSystemdNetwork(t, 'network') },
  { dir: '/etc/systemd/network', suffix: '.link', edit: (t) => unbindSystemdNetwork(t, 'link') },
];

/**
 * Frees the system at `root` from the reference's network cards: netplan, NetworkManager and
 * systemd-networkd configuration matched by MAC address is made generic, .link files bound to
 * one card and udev's persistent-net rules are removed. Returns what it did, file by file.
 */
export async function unbindMacAddresses(root: string): Promise<MacBindingChange[]> {
  const out: MacBindingChange[] = [];
  for (const f of NETWORK_FILES) {
    for (const file of await filesInside(root, f.dir, f.suffix)) {
      const host = await pathInside(root, file);
      const text = await readFile(host, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      const edit = f.edit(text);
      if (edit.changes.length === 0) continue;
      if (edit.text === null) await rm(host, { force: true });
      else await writeFile(host, edit.text);
      out.push({ file, removed: edit.text === null, changes: edit.changes });
    }
  }
  const rules = '/etc/udev/rules.d/70-persistent-net.rules';
  const host = await pathInside(root, rules);
  if ((await readFile(host, 'utf8').catch(() => undefined)) !== undefined) {
    await rm(host, { force: true });
    out.push({ file: rules, removed: true, changes: ['interface names of the reference hardware; removed'] });
  }
  return out;
}
