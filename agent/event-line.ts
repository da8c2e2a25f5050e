/**
 * The event line format without the zod schemas, so code that only writes events (the agent's
 * entry point) does not pay for loading zod; agent/events.ts holds the schemas.
 */
export const EVENT_SCHEMA_VERSION = 1;

/** What the PE was booted to do (imagepe.mode=). */
export const MODES = ['deploy', 'capture', 'shell'] as const;
export type Mode = (typeof MODES)[number];

/** An event as the caller gives it: everything but the version and the time. */
export type EventBody<E> = E extends unknown ? Omit<E, 'imagepe' | 'time'> : never;

/** Adds the version and the time, keys in the order every line starts with. */
export function stampEvent<B extends { type: string }>(body: B, now: Date = new Date()): { imagepe: 1; type: B['type']; time: string } & Omit<B, 'type'> {
  const { type, ...rest } = body;
  return { imagepe: EVENT_SCHEMA_VERSION, type, time: now.toISOString(), ...rest };
}

export function formatEventLine(event: { imagepe: number; type: string }): string {
  return JSON.stringify(event);
}
