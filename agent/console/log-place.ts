import { parseSourceUrl, uncOfUrl } from '../share/index.js';

// The run reaches the share through a mount of its own, made by mapShare under the temp
// directory: a path that means nothing to anyone outside the PE.
const MOUNT_DIR = /\/imagepe-(?:smb|nfs)-[^/]+(?:\/(.*))?$/;
const MOUNT_PATHS = /\/\S*\/imagepe-(?:smb|nfs)-[A-Za-z0-9]+(?:\/\S*)?/g;

/** Text with the run's mount paths ("share done: /tmp/imagepe-smb-x") said as places on the share. */
export function sharePlaces(text: string, shareUrl: string): string {
  return text.replace(MOUNT_PATHS, (path) => placeOnShare(shareUrl, path).url);
}

const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

/**
 * Where a run's log is, as someone looking at the share sees it: its URL, and for SMB the
 * \\server\share\... form Windows Explorer takes. `logFile` is the path the run wrote to
 * (inside its own mount of the share, or on the share itself for file://, or relative to it).
 */
export function placeOnShare(shareUrl: string, logFile: string): { url: string; unc: string | undefined } {
  const loc = parseSourceUrl(shareUrl);
  const mount = MOUNT_DIR.exec(logFile);
  const below = mount ? (mount[1] ?? '') : undefined;
  let url: string;
  const under = below ? `/${encodePath(below)}` : '';
  if (below !== undefined && loc.kind === 'smb') url = `smb://${loc.server}${loc.port ? `:${loc.port}` : ''}/${encodeURIComponent(loc.share)}${under}`;
  else if (below !== undefined && loc.kind === 'nfs') url = `nfs://${loc.server}${encodePath(loc.export)}${under}`;
  else if (logFile.startsWith('/')) url = loc.kind === 'file' ? `file://${logFile}` : logFile;
  else url = `${shareUrl.replace(/\/+$/, '')}/${logFile}`;
  return { url, unc: url.startsWith('smb://') ? uncOfUrl(url) : undefined };
}

/** The summary's lines for the log: none when the run wrote none. */
export function logLines(shareUrl: string, logFile: string | undefined): string[] {
  if (!logFile) return [];
  const { url, unc } = placeOnShare(shareUrl, logFile);
  // On lines of their own: a log's name alone is half a line, and the place is copied from here.
  return ['  Log on the share:', `    ${url}`, ...(unc ? [`    ${unc}`] : [])];
}
