/**
 * The event line format without the zod schemas, so code that only writes events (the agent's
 * entry point, the step runner) does not pay for loading zod; ./schema.ts holds the schemas.
 * Every line starts with {"imagepe":1,"type":...,"time":...} so a reader can pick it out of
 * kernel and shell noise on a serial console.
 */
export const EVENT_SCHEMA_VERSION = 1;

/** What the PE was booted to do (imagepe.mode=). */
export const MODES = ['deploy', 'capture', 'shell'] as const;
export type Mode = (typeof MODES)[number];

/** An event as the caller gives it: everything but the version and the time. */
export type EventBody<E> = E extends unknown ? Omit<E, 'imagepe' | 'time'> : never;

/** An event body with the version and the time added. */
export type Stamped<B> = B extends unknown ? { imagepe: typeof EVENT_SCHEMA_VERSION; time: string } & B : never;

/** Adds the version and the time, keys in the order every line starts with. */
export function stampEvent<B extends { type: string }>(body: B, now: Date = new Date()): { imagepe: 1; type: B['type']; time: string } & Omit<B, 'type'> {
  const { type, ...rest } = body;
  return { imagepe: EVENT_SCHEMA_VERSION, type, time: now.toISOString(), ...rest };
}

/** The line for an event (no trailing newline). */
export function formatEventLine(event: { imagepe: number; type: string }): string {
  return JSON.stringify(event);
}

const MARKER = `{"imagepe":${EVENT_SCHEMA_VERSION},`;

/**
 * The JSON object of an event in one line of console output, or undefined. The serial console
 * mixes kernel messages, carriage returns and escape sequences into the same stream, so the
 * event may not start the line. The value is not checked against a schema here.
 */
export function eventJsonIn(line: string): unknown {
  const start = line.indexOf(MARKER);
  if (start < 0) return undefined;
  const end = line.lastIndexOf('}');
  if (end < start) return undefined;
  try {
    return JSON.parse(line.slice(start, end + 1));
  } catch {
    return undefined;
  }
}
