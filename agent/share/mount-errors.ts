import type { ErrorCode } from '../../core/index.js';

export interface MountProblem {
  code: ErrorCode;
  /** What went wrong, in the words a technician acts on. */
  reason: string;
  hint: string;
}

/**
 * mount.cifs reports failures as "mount error(N): <strerror>", which says little to someone at
 * a console ("Permission denied" is the server refusing the password). This names the problem
 * and what to check; undefined when the text holds no error number it knows.
 */
export function explainCifsMountError(stderr: string): MountProblem | undefined {
  const n = Number(/mount error\((\d+)\)/.exec(stderr)?.[1]);
  switch (n) {
    case 13:
    case 1:
      return { code: 'REFUSED', reason: 'the server refused the user name or password', hint: 'Check source.credentials (user name, password and, for a domain account, domain); without credentials the share must allow guests.' };
    case 2:
      return { code: 'NOT_FOUND', reason: 'the server has no such share or folder', hint: 'Check the share name and the folder after it in the URL (smb://server/share/folder).' };
    case 110:
    case 111:
    case 112:
    case 113:
    case 101:
      return { code: 'NOT_FOUND', reason: 'the server cannot be reached', hint: 'Check the server name or address, that it is on, and that the network gives this machine a route to it (SMB uses TCP port 445).' };
    case 95:
      return { code: 'REFUSED', reason: 'the server does not offer what the PE asked for (SMB 3.0, or the requested security)', hint: 'Enable SMB 3 on the server (Samba: server min protocol at most SMB3_00).' };
    default:
      return undefined;
  }
}

// Errors that say the server or the path to it was not ready, not that the request was wrong:
// EIO, EAGAIN, ENETUNREACH, ECONNRESET, ETIMEDOUT, ECONNREFUSED, EHOSTDOWN, EHOSTUNREACH,
// EINPROGRESS, EREMOTEIO.
const TRANSIENT = new Set([5, 11, 101, 104, 110, 111, 112, 113, 115, 121]);

/** Whether a mount.cifs failure is worth another try. */
export function isTransientCifsMountError(stderr: string): boolean {
  return TRANSIENT.has(Number(/mount error\((\d+)\)/.exec(stderr)?.[1]));
}
