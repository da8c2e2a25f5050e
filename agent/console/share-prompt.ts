import { CommandFailedError, ImagepeError } from '../../core/index.js';
import { SOURCE_URL_PATTERN } from '../plan/index.js';
import { parseSourceUrl, type MappedShare, type ShareCredentials } from '../share/index.js';
import type { SessionEnv, ShareAnswer } from './env.js';
import { ask, InvalidAnswer, say } from './prompts.js';
import { QUESTIONS } from './questions.js';
import type { Terminal } from './terminal.js';

/** A share URL the console takes: one it can map and list (http has no listing, media: no writes). */
export function parseShareUrl(answer: string): string {
  const url = answer.trim();
  const kind = parseSourceUrl(url).kind;
  if ((kind !== 'smb' && kind !== 'nfs' && kind !== 'file') || !SOURCE_URL_PATTERN.test(url)) {
    throw new InvalidAnswer('Expected smb://server/share[/folder], nfs://server/export[/folder] or file:///folder.');
  }
  // A trailing slash would only end up in the plan and the messages; the root keeps its own.
  return url.replace(/(:\/\/[^/]*\/.*[^/])\/+$/, '$1');
}

/** DOMAIN\user or user: the two forms Windows people type. */
export function parseUserName(answer: string): { username: string; domain?: string } {
  const m = /^([^\\\s]+)\\([^\\\s]+)$/.exec(answer);
  if (m) return { domain: m[1]!, username: m[2]! };
  if (/[\\\s]/.test(answer)) throw new InvalidAnswer('Expected a user name, or DOMAIN\\user, without spaces.');
  return { username: answer };
}

/** Whether a mount failed because the server refused who we are, so credentials could help. */
export function isPermissionError(e: unknown): boolean {
  const errno = (e as NodeJS.ErrnoException).code;
  if (errno === 'EACCES' || errno === 'EPERM') return true;
  const text = `${e instanceof Error ? e.message : String(e)}\n${e instanceof CommandFailedError ? e.stderrTail : ''}`;
  return /permission denied|error\(13\)|NT_STATUS_(ACCESS_DENIED|LOGON_FAILURE)|STATUS_LOGON_FAILURE/i.test(text);
}

/** Writes an error in a few lines of the width: what went wrong, and the hint if it has one. */
export function showError(term: Terminal, heading: string, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  say(term, `${heading}:`);
  const lines = message.split('\n').slice(0, 12);
  for (const l of lines) say(term, `  ${l}`, '    ');
  if (e instanceof ImagepeError && e.hint) say(term, `  ${e.hint}`, '    ');
}

async function askCredentials(term: Terminal, previous: ShareCredentials | undefined): Promise<ShareCredentials> {
  const shown = previous ? (previous.domain ? `${previous.domain}\\${previous.username}` : previous.username) : undefined;
  const user = await ask(term, QUESTIONS.user, { ...(shown ? { default: shown } : {}), parse: parseUserName });
  // The password is never echoed, never written back, and never "q": a password may be anything.
  const password = await term.readSecret(`${QUESTIONS.password} `);
  return { username: user.username, password, ...(user.domain ? { domain: user.domain } : {}) };
}

/**
 * Asks for the share and maps it. A share that refuses guest access (or the credentials given)
 * leads to the user name and password questions; any other failure is shown and the URL asked
 * again. The last share that worked, with its credentials, is the default next time.
 */
export async function connectShare(term: Terminal, env: SessionEnv, last: ShareAnswer | undefined): Promise<{ share: ShareAnswer; mapped: MappedShare }> {
  say(term, 'The share holds the images: smb://server/share[/folder], nfs://server/export[/folder] or file:///folder.');
  for (;;) {
    const def = last?.url ?? env.defaultShare;
    const url = await ask(term, QUESTIONS.share, { ...(def ? { default: def } : {}), parse: parseShareUrl });
    const kind = parseSourceUrl(url).kind;
    let credentials = last?.url === url ? last.credentials : undefined;
    if ((kind === 'smb' || kind === 'nfs') && env.waitForNetwork) {
      try {
        await env.waitForNetwork();
      } catch (e) {
        showError(term, 'The network is not up', e);
        continue;
      }
    }
    for (;;) {
      say(term, `Mapping ${url} ...`);
      try {
        const mapped = await env.mapShare({ url, image: '', ...(credentials ? { credentials } : {}) });
        return { share: { url, credentials }, mapped };
      } catch (e) {
        if (kind === 'smb' && isPermissionError(e)) {
          say(term, credentials ? 'The share refused these credentials.' : 'The share refused guest access: it needs a user name and password.');
          credentials = await askCredentials(term, credentials);
          continue;
        }
        showError(term, `${url} could not be mapped`, e);
        break;
      }
    }
  }
}
