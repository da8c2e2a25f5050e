/**
 * How a resource is let go of. Strict: a failure throws (the run reports it). Lenient (after a
 * failure or a cancel, when the run is already lost): try what else there is, such as a lazy
 * unmount, and say through `warn` what was left behind and how to undo it.
 */
export type Releaser = (how: { strict: boolean; warn: (text: string) => void }) => Promise<void>;

export interface ResourceOptions {
  /**
   * The run's log is written here when the run ends (a mapped share), so it is released only
   * after that, whatever was made later.
   */
  holdsLog?: boolean;
}

/** A registered resource: released by the stack when the run ends, or earlier by the step that made it. */
export interface Resource {
  readonly label: string;
  /** Releases it now, strictly; on failure it stays on the stack for the run's final, lenient pass. */
  release(): Promise<void>;
  /** Takes it off the stack without releasing it: it became the run's result (a temporary file renamed into place). */
  forget(): void;
}

interface Entry {
  label: string;
  release: Releaser;
  holdsLog: boolean;
}

/**
 * The resources a run holds, released in reverse order of their making on success, on failure
 * and on cancel. Releasing never takes the run's abort signal: cleanup runs after a cancel too.
 */
export class CleanupStack {
  private readonly entries: Entry[] = [];

  constructor(private readonly warn: (text: string) => void) {}

  get size(): number {
    return this.entries.length;
  }

  /** Labels of what is still held, the most recent last. */
  held(): string[] {
    return this.entries.map((e) => e.label);
  }

  add(label: string, release: Releaser, options: ResourceOptions = {}): Resource {
    const entry: Entry = { label, release, holdsLog: options.holdsLog ?? false };
    this.entries.push(entry);
    return {
      label,
      release: async () => {
        if (!this.entries.includes(entry)) return;
        await entry.release({ strict: true, warn: this.warn });
        this.remove(entry);
      },
      forget: () => this.remove(entry),
    };
  }

  /**
   * Releases, most recent first, everything but what holds the log (or everything, with
   * `includeLog`). Strict stops at the first failure and throws it, leaving that entry and the
   * older ones held; lenient goes through them all.
   */
  async unwind(options: { strict: boolean; includeLog?: boolean }): Promise<void> {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i]!;
      if (entry.holdsLog && !options.includeLog) continue;
      if (options.strict) {
        await entry.release({ strict: true, warn: this.warn });
      } else {
        try {
          await entry.release({ strict: false, warn: this.warn });
        } catch (e) {
          this.warn(`could not ${entry.label}: ${(e as Error).message}`);
        }
      }
      this.remove(entry);
    }
  }

  private remove(entry: Entry): void {
    const at = this.entries.indexOf(entry);
    if (at >= 0) this.entries.splice(at, 1);
  }
}
