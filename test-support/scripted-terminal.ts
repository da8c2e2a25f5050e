import { ConsoleClosedError, type Terminal } from '../agent/console/terminal.js';

/** One turn of a conversation: the prompt expected last on screen, and what the technician types. */
export type Turn = readonly [expect: string | RegExp, answer: string];

/**
 * A Terminal over strings, for driving the technician console in tests: each read checks that
 * the text written since the previous answer holds the expected prompt, then answers from the
 * script. Answers are echoed into the transcript as a terminal would show them, except secrets.
 * A read at an unexpected prompt fails with the recent screen; a read past the end of the script
 * fails as a console that went away does (ConsoleClosedError), with the last prompt in `lastPrompt`.
 */
export class ScriptedTerminal implements Terminal {
  private screen = '';
  private sinceAnswer = '';
  private readonly turns: Turn[];
  readonly answered: string[] = [];
  /** What was on screen when the script ran out. */
  lastPrompt = '';

  constructor(
    turns: readonly Turn[],
    readonly name = '/dev/ttyS0',
    readonly progress: 'redraw' | 'lines' = 'lines',
  ) {
    this.turns = [...turns];
  }

  /** Everything the program wrote, with the echoed answers. */
  get transcript(): string {
    return this.screen;
  }

  get remaining(): number {
    return this.turns.length;
  }

  write(text: string): void {
    this.screen += text;
    this.sinceAnswer += text;
  }

  readLine(): Promise<string> {
    return this.next(false);
  }

  readSecret(prompt: string): Promise<string> {
    this.write(prompt);
    return this.next(true);
  }

  close(): void {}

  private next(secret: boolean): Promise<string> {
    const turn = this.turns.shift();
    const recent = this.sinceAnswer.slice(-600);
    if (!turn) {
      this.lastPrompt = recent;
      return Promise.reject(new ConsoleClosedError(this.name));
    }
    const [expected, answer] = turn;
    const seen = typeof expected === 'string' ? this.sinceAnswer.includes(expected) : expected.test(this.sinceAnswer);
    if (!seen) return Promise.reject(new Error(`expected the prompt ${String(expected)} before answering "${secret ? '(secret)' : answer}", but the screen shows:\n${recent}`));
    this.answered.push(secret ? '(secret)' : answer);
    this.screen += secret ? '\n' : `${answer}\n`;
    this.sinceAnswer = '';
    return Promise.resolve(answer);
  }
}
