/** The longest answer kept; a stuck key or line noise on a serial port must not grow without end. */
export const MAX_LINE = 1024;

/**
 * Line editing for a console in raw mode, where the program and not the kernel echoes and
 * handles Backspace: printable characters are echoed (not while a secret is typed), Backspace
 * and Delete erase one, Ctrl-U and Ctrl-C erase the line, escape sequences (arrow and function
 * keys) are dropped. A line ends at CR or LF; CR LF counts once, so a terminal that sends either
 * or both works.
 */
export class LineEditor {
  private line = '';
  private escape: 'none' | 'esc' | 'csi' | 'ss3' = 'none';
  private afterCR = false;

  constructor(private readonly echo: ((text: string) => void) | undefined) {}

  /**
   * Consumes characters until the first line is complete. Returns that line (undefined if more
   * input is needed) and how many characters were used; the rest belongs to later lines.
   */
  take(input: string, secret = false): { line: string | undefined; used: number } {
    const show = (text: string) => this.echo?.(text);
    for (let i = 0; i < input.length; i++) {
      const ch = input[i]!;
      const code = ch.charCodeAt(0);
      if (this.afterCR) {
        this.afterCR = false;
        if (ch === '\n') continue;
      }
      if (this.escape === 'esc') {
        this.escape = ch === '[' ? 'csi' : ch === 'O' ? 'ss3' : 'none';
        continue;
      }
      if (this.escape === 'csi') {
        if (code >= 0x40 && code <= 0x7e) this.escape = 'none';
        continue;
      }
      if (this.escape === 'ss3') {
        this.escape = 'none';
        continue;
      }
      if (ch === '\r' || ch === '\n') {
        this.afterCR = ch === '\r';
        show('\r\n');
        const line = this.line;
        this.line = '';
        return { line, used: i + 1 };
      }
      if (ch === '\x1b') this.escape = 'esc';
      else if (ch === '\x7f' || ch === '\b') {
        if (this.line.length > 0) {
          this.line = this.line.slice(0, -1);
          if (!secret) show('\b \b');
        }
      } else if (ch === '\x15' || ch === '\x03') {
        if (!secret) show('\b \b'.repeat(this.line.length));
        this.line = '';
      } else if (code >= 0x20 && this.line.length < MAX_LINE) {
        this.line += ch;
        if (!secret) show(code < 0x7f ? ch : '?');
      }
    }
    return { line: undefined, used: input.length };
  }
}
