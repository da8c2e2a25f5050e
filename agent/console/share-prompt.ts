import { CommandFailedError, ImagepeError } from '../../core/index.js';
import { SOURCE_URL_PATTERN } from '../plan/index.js';
import { parseSourceUrl, smbUrlFromUnc, type MappedShare, type ShareCredentials } from '../share/index.js';
import type { SessionEnv, ShareAnswer } from './env.js';
import { ask, GoBack, InvalidAnswer, say } from './prompts.js';
import { QUESTIONS } from './questions.js';
import type { Terminal } from './terminal.js';

const SHARE_FORMS = 'smb://server/share[/folder], \\\\server\\share[\\folder], nfs://server/export[/folder] or file:///folder';

/** How long mapping a share for the listing may take: a wrong server must not leave the technician waiting in silence. */
export const MAP_LIMIT_MS = 45_000;
/** How often a mapping that takes long says it is still trying. */
export const MAP_TICK_MS = 5_000;
/** How long the network may take to come up before a share is mapped (the agent's own wait). */
export const NETWORK_LIMIT_MS = 90_000;

/**
 * A share the console takes, as a URL: one it can map and list (http has no listing, media: no
 * writes). \\server\share\folder and //server/share/folder, as Windows people write a share,
 * become smb:// URLs.
 */
export function parseShareUrl(answer: string): string {
  const url = smbUrlFromUnc(answer) ?? answer.trim();
  const kind = parseSourceUrl(url).kind;
  if ((kind !== 'smb' && kind !== 'nfs' && kind !== 'file') || !SOURCE_URL_PATTERN.test(url)) {
    throw new InvalidAnswer(`Expected ${SHARE_FORMS}.`);
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
 * Waits for `work`, saying every `tickMs` that it still does, with the time so far and the
 * limit, so a wait on a server that does not answer is not silence. Only the waiting is
 * reported; the work bounds itself.
 */
export async function withTicks<T>(term: Terminal, limitMs: number, work: Promise<T>, tickMs = MAP_TICK_MS): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => {
    say(term, `  still trying: ${Math.round((Date.now() - started) / 1000)} s of at most ${Math.max(1, Math.round(limitMs / 1000))} s ...`);
  }, tickMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/** Maps the share within MAP_LIMIT_MS; a server that does not answer by then is said to be one. */
async function mapWithin(term: Terminal, env: SessionEnv, url: string, credentials: ShareCredentials | undefined): Promise<MappedShare> {
  const { limitMs, tickMs } = env.mapWait ?? { limitMs: MAP_LIMIT_MS, tickMs: MAP_TICK_MS };
  const limit = AbortSignal.timeout(limitMs);
  const seconds = Math.max(1, Math.round(limitMs / 1000));
  say(term, `Mapping ${url} (at most ${seconds} s) ...`);
  try {
    return await withTicks(term, limitMs, env.mapShare({ url, image: '', ...(credentials ? { credentials } : {}) }, { signal: limit }), tickMs);
  } catch (e) {
    if (!limit.aborted) throw e;
    const loc = parseSourceUrl(url);
    const server = loc.kind === 'smb' || loc.kind === 'nfs' ? loc.server : url;
    throw new ImagepeError('COMMAND_TIMEOUT', `${server} did not answer within ${seconds} s`, {
      hint: 'Check the server name or address, that it is on, and that this machine has a route to it.',
      cause: e,
    });
  }
}

/** Waits for the network, and says so only when that takes more than a moment. */
async function networkUp(term: Terminal, wait: () => Promise<unknown>): Promise<void> {
  const notice = setTimeout(() => say(term, `Waiting for a network address by DHCP (at most ${NETWORK_LIMIT_MS / 1000} s) ...`), 1_000);
  try {
    await withTicks(term, NETWORK_LIMIT_MS, wait(), 10_000);
  } finally {
    clearTimeout(notice);
  }
}

/**
 * Asks for the share and maps it. A share that refuses guest access (or the credentials given)
 * leads to the user name and password questions ("q" at the user name goes back to the share);
 * any other failure is shown and the share asked again. The last share named, with its
 * credentials, is the default next time.
 */
export async function connectShare(term: Terminal, env: SessionEnv, last: ShareAnswer | undefined): Promise<{ share: ShareAnswer; mapped: MappedShare }> {
  say(term, `The share holds the images: ${SHARE_FORMS}.`);
  for (;;) {
    const def = last?.url ?? env.defaultShare;
    const typed = await ask(term, QUESTIONS.share, { ...(def ? { default: def } : {}), parse: (a) => ({ url: parseShareUrl(a), unc: smbUrlFromUnc(a) !== undefined }) });
    const url = typed.url;
    // Said back in the form the rest of the session (and a plan file) uses.
    if (typed.unc) say(term, `  That is ${url}.`);
    const kind = parseSourceUrl(url).kind;
    let credentials = last?.url === url ? last.credentials : undefined;
    if ((kind === 'smb' || kind === 'nfs') && env.waitForNetwork) {
      try {
        await networkUp(term, env.waitForNetwork);
      } catch (e) {
        showError(term, 'The network is not up', e);
        continue;
      }
    }
    for (;;) {
      try {
        const mapped = await mapWithin(term, env, url, credentials);
        return { share: { url, credentials }, mapped };
      } catch (e) {
        if (kind === 'smb' && isPermissionError(e)) {
          say(term, credentials ? 'The share refused these credentials.' : 'The share refused guest access: it needs a user name and password.');
          try {
            credentials = await askCredentials(term, credentials);
          } catch (back) {
            if (!(back instanceof GoBack)) throw back;
            last = { url, credentials };
            break;
          }
          continue;
        }
        showError(term, `${url} could not be mapped`, e);
        last = { url, credentials };
        break;
      }
    }
  }
}
