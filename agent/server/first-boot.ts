import { mkdir, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ImagepeError } from '../../core/index.js';
import { pathInside } from '../system/paths.js';

/** The unit's name in the deployed system; it removes itself once it has reported. */
export const FIRST_BOOT_UNIT = 'imagepe-first-boot.service';
export const FIRST_BOOT_SCRIPT = '/usr/local/lib/imagepe/first-boot-report';

/**
 * The systemd unit that reports a deployed system's first boot. Type=simple, not oneshot: a
 * oneshot job would be part of the boot transaction, so `systemctl is-system-running --wait`
 * inside it would wait for itself. As a simple service it counts as started at once, boot
 * finishes, and the script then sees the state the machine really reached.
 */
export function firstBootUnit(): string {
  return [
    '# Written by imagepe when this system was deployed: tells the deployment server that it came up,',
    '# then removes itself.',
    '[Unit]',
    'Description=Report the first boot to the imagepe deployment server',
    'After=multi-user.target network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=/bin/sh ${FIRST_BOOT_SCRIPT}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/**
 * The report script: waits for boot to finish, then POSTs {hostname, machineId, state} as JSON
 * to `reportUrl` with curl or wget when the system has one, else (http only) through bash's
 * /dev/tcp, which a minimal Debian has; retries for about ten minutes while the network comes
 * up, then disables and deletes itself whether or not the server answered.
 * Throws INVALID_INPUT for a URL other than http(s).
 */
export function firstBootScript(reportUrl: URL): string {
  if (reportUrl.protocol !== 'http:' && reportUrl.protocol !== 'https:') throw new ImagepeError('INVALID_INPUT', `the first-boot report url ${reportUrl.href} is not http(s)`);
  const host = reportUrl.hostname;
  const port = reportUrl.port || (reportUrl.protocol === 'https:' ? '443' : '80');
  const path = `${reportUrl.pathname}${reportUrl.search}`;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh
# imagepe first-boot report (see ${FIRST_BOOT_UNIT}).
url=${q(reportUrl.href)}
host=${q(host)}
port=${q(port)}
path=${q(path)}
# Waits until the boot transaction is done; prints running, degraded, maintenance, ...
state=$(systemctl is-system-running --wait 2>/dev/null)
hostname=$(cat /proc/sys/kernel/hostname)
machine_id=$(cat /etc/machine-id 2>/dev/null)
failed=$(systemctl list-units --state=failed --plain --no-legend 2>/dev/null | awk '{print $1}' | tr '\\n' ' ' | tr -d '\\\\"')
body=$(printf '{"hostname":"%s","machineId":"%s","state":"%s","failedUnits":"%s"}' "$hostname" "$machine_id" "$state" "$failed")
post() {
  if command -v curl >/dev/null; then
    curl -fsS -m 20 -H 'Content-Type: application/json' --data-binary "$body" "$url" >/dev/null
  elif command -v wget >/dev/null; then
    wget -q -T 20 -O /dev/null --header='Content-Type: application/json' --post-data="$body" "$url"
  elif [ -x /bin/bash ] && [ "\${url#http:}" != "$url" ]; then
    BODY="$body" HOST="$host" PORT="$port" REQ_PATH="$path" timeout 20 /bin/bash -c '
      exec 3<>"/dev/tcp/$HOST/$PORT" || exit 1
      printf "POST %s HTTP/1.0\\r\\nHost: %s\\r\\nContent-Type: application/json\\r\\nContent-Length: %s\\r\\n\\r\\n%s" "$REQ_PATH" "$HOST" "\${#BODY}" "$BODY" >&3
      read -r _ code _ <&3
      case "$code" in 2??) exit 0 ;; *) exit 1 ;; esac'
  else
    return 1
  fi
}
n=0
until post; do
  n=$((n + 1))
  [ "$n" -ge 60 ] && { echo "imagepe: the deployment server at $url did not take the first-boot report" >&2; break; }
  sleep 10
done
systemctl disable ${FIRST_BOOT_UNIT} >/dev/null 2>&1
rm -f /etc/systemd/system/${FIRST_BOOT_UNIT} "$0"
rmdir /usr/local/lib/imagepe 2>/dev/null
exit 0
`;
}

/**
 * Installs the first-boot report into the applied system at `root`: the unit, the script and the
 * multi-user.target.wants link `systemctl enable` would make. Returns the paths written (inside
 * the system). Paths are resolved inside root, so a symlink in the image cannot lead them out.
 */
export async function installFirstBootReport(root: string, reportUrl: URL): Promise<string[]> {
  const unitPath = `/etc/systemd/system/${FIRST_BOOT_UNIT}`;
  const wantsPath = `/etc/systemd/system/multi-user.target.wants/${FIRST_BOOT_UNIT}`;
  const files: [string, string, number][] = [
    [unitPath, firstBootUnit(), 0o644],
    [FIRST_BOOT_SCRIPT, firstBootScript(reportUrl), 0o755],
  ];
  for (const [path, text, mode] of files) {
    const host = await pathInside(root, path);
    await mkdir(dirname(host), { recursive: true });
    await rm(host, { force: true });
    await writeFile(host, text, { mode });
    await chmod(host, mode);
  }
  const link = await pathInside(root, wantsPath);
  await mkdir(dirname(link), { recursive: true });
  await rm(link, { force: true });
  await symlink(unitPath, link);
  return [unitPath, FIRST_BOOT_SCRIPT, wantsPath];
}
